"""One settings object for the whole service, read from ``VIDSCENE_*`` environment variables.

It is built once at the edge (CLI, app factory, worker start) and passed down; nothing deep inside reads the
environment, so tests can run several differently configured apps in one process.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidscene import catalogue

GiB = 1024**3


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDSCENE_", extra="ignore")

    data_dir: Path = Field(default=Path("vidscene-data"), description="Where the database, uploads and outputs live")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in the data dir")
    broker_url: str = Field(default="", description="Celery broker URL; empty means a SQLite broker in the data dir")
    host: str = "127.0.0.1"
    port: int = 5000

    jwt_secret: str = Field(default="", description="HS256 secret; empty means generated once and kept in the data dir")
    jwt_lifetime_seconds: int = 7 * 24 * 3600
    login_rate_limit: str = Field(default="10/minute",
                                  description="failed logins allowed per (username, client) and per client")
    login_username_rate_limit: str = Field(default="100/hour",
                                           description="failed logins per username from clients that never logged "
                                                       "in to it (a slower back-off against spread-out guessing)")
    register_rate_limit: str = Field(default="30/hour", description="registrations allowed per client")
    forwarded_allow_ips: str = Field(default="",
                                     description="reverse proxies (comma-separated addresses, or *) whose "
                                                 "X-Forwarded-For names the client; empty: none")
    rate_limit_storage: str = Field(default="memory://",
                                    description="where failed-login counters live; e.g. redis://host:6379/1 so "
                                                "that several API processes share them")
    max_upload_bytes: int = 4 * GiB
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=1,
                                       description="a resumable (tus) upload idle this long expires: its "
                                                   "bytes and row are removed and its URL answers 404")
    upload_sweep_seconds: float = Field(default=60.0, gt=0,
                                        description="how often the API removes expired resumable uploads")
    upload_chunk_bytes: int = Field(default=64 * 1024**2, ge=16 * 1024,
                                    description="size of each PATCH the web app sends for a resumable "
                                                "upload; lower it below a reverse proxy's body limit")
    user_max_queued: int = Field(default=0, ge=0,
                                 description="scenes one user may have waiting or processing at once; a new "
                                             "upload past it is refused with 429 before its body is read (0: "
                                             "no limit)")
    user_quota_bytes: int = Field(default=0, ge=0,
                                  description="bytes one user may keep (uploads and outputs); an upload that "
                                              "would pass it is refused with 413, before its body is read when "
                                              "its size is announced (0: no quota)")
    cors_origins: list[str] = ["*"]
    web_dist: Path | None = Field(default=None,
                                  description="the built web app to serve at /; unset: the package's own build "
                                              "(vidscene/web/dist), and a JSON note at / when there is none")
    otel: bool = Field(default=False,
                       description="FastAPI's native OpenTelemetry spans, metrics and logs, for where an OpenTelemetry "
                                   "SDK is configured (off: the per-request provider check costs ~5% of a request)")
    api_db_threads: int = Field(default=0, ge=0,
                                description="threads running the polled routes' queries; 0 means one per CPU "
                                            "(more only add lock contention in one process; raise it for a "
                                            "database far away on the network)")

    embedded_worker: bool = Field(default=True, description="`serve` starts a local worker (embedded default)")
    worker_concurrency: int = 1
    worker_queues: list[str] = ["cpu", "gpu"]
    lease_seconds: int = Field(default=60, description="a job whose heartbeat is older than this is re-delivered")
    heartbeat_seconds: int = 10
    reaper_interval_seconds: int = 15
    requeue_idle_seconds: int = Field(default=30, description="a waiting stage is sent again (its message was lost) "
                                                               "when no stage has run and no job changed for this "
                                                               "long")
    max_attempts: int = Field(default=3, description="deliveries of one stage before the job is failed")

    webhook_allow_private: bool = Field(default=False,
                                        description="let webhooks reach loopback, private, link-local and other "
                                                    "non-public addresses (a receiver on the same network); "
                                                    "off, such URLs are refused when created and when sent")
    webhook_poll_seconds: float = Field(default=2.0, gt=0,
                                        description="how often each worker looks for webhook deliveries to send")

    storage_url: str = Field(default="",
                             description="where scenes live: empty or file:// (the data dir), file:///dir, or "
                                         "s3://bucket/prefix (with the standard AWS_* settings: AWS_ENDPOINT_URL, "
                                         "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)")
    scratch_dir: Path | None = Field(default=None,
                                     description="with s3://, where a worker stages a stage's files (removed "
                                                 "after it); empty means <data dir>/scratch")
    s3_presigned_downloads: bool = Field(default=False,
                                         description="with s3://, answer downloads with a redirect to a "
                                                     "presigned URL instead of streaming through the API")
    s3_presign_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600,
                                    description="how long a presigned download URL is valid")
    storage_sync_seconds: float = Field(default=60.0, gt=0,
                                        description="with s3://, how often a running training stage sends its "
                                                    "new checkpoints to the store (what a resume can start from)")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    default_preset: str = Field(default=catalogue.DEFAULT_PRESET,
                                description="preset of uploads that name none (a name in vidscene.catalogue)")

    @field_validator("default_preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in catalogue.PRESETS:
            raise ValueError(f"unknown preset {value!r}; use one of {', '.join(catalogue.PRESETS)}")
        return value

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.scratch_dir is not None:
            self.scratch_dir = self.scratch_dir.expanduser().resolve()
        return self

    @property
    def resolved_scratch_dir(self) -> Path:
        return self.scratch_dir or self.data_dir / "scratch"

    @property
    def uses_object_store(self) -> bool:
        return self.storage_url.startswith("s3://")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vidscene.db'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.db'}"

    @property
    def is_embedded_broker(self) -> bool:
        return not self.broker_url

    def ensure_data_dir(self) -> None:
        """Create the data dir readable by its owner only: it holds the password hashes and people's videos.
        A data dir of ours left with wider permissions by an older version is tightened."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = self.data_dir.stat()
        if status.st_uid == os.geteuid() and status.st_mode & 0o077:
            self.data_dir.chmod(0o700)

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or one generated on first start and persisted with owner-only permissions.

        A constant default would let anyone forge tokens for every installation; a per-process random one would
        log everybody out on each restart and break multi-process deployments sharing the data dir.
        """
        if self.jwt_secret:
            return self.jwt_secret
        self.ensure_data_dir()
        path = self.data_dir / "jwt-secret"
        try:
            existing = path.read_text().strip()
            if existing:
                return existing
        except FileNotFoundError:
            pass
        secret = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(secret)
        try:
            # link() fails if another process won the race; then use theirs.
            path.hardlink_to(tmp)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()
