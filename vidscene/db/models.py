"""Tables: users, scenes, jobs (the state machine of a scene's processing), outputs, and what automation
uses: personal API tokens, webhooks and their deliveries (an outbox).

Job state lives here and only here: Celery messages carry nothing but a job id, so a lost message, a
duplicate delivery or a killed worker can always be reconciled against these rows.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use vidscene.db.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class JobState(enum.StrEnum):
    queued = "queued"
    processing = "processing"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


# A job in one of these states is unfinished: in the queue, or on its way through the stages.
ACTIVE_STATES = (JobState.queued.value, JobState.processing.value)


class Stage(enum.StrEnum):
    """Pipeline stages in execution order; the public API groups them as sfm_list / nerf_list."""

    frames = "frames"
    sfm = "sfm"
    train = "train"
    export = "export"


STAGE_ORDER: tuple[Stage, ...] = (Stage.frames, Stage.sfm, Stage.train, Stage.export)
# The broker queue of each stage: training wants the GPU machines when the deployment has them, the rest runs
# anywhere. The job runner (oldest scene first on a queue) and the Celery adapter (routing) both read it.
STAGE_QUEUES: dict[Stage, str] = {Stage.frames: "cpu", Stage.sfm: "cpu", Stage.train: "gpu", Stage.export: "cpu"}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    # Bumped on password change; tokens carry it, so older tokens stop working at once.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    scenes: Mapped[list[Scene]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                               passive_deletes=True)


class Scene(Base):
    __tablename__ = "scenes"

    # token_urlsafe(16): 128 random bits, URL-safe and unguessable.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    training_mode: Mapped[str] = mapped_column(String(16), nullable=False)
    output_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    save_iterations: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    total_iterations: Mapped[int] = mapped_column(Integer, nullable=False)
    preset: Mapped[str] = mapped_column(String(16), nullable=False, default="preview")
    # Upload file name inside the scene's storage folder, and what probing it found (codec, size, frames...).
    video_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    video_info: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The edit (``SceneEdit.version``) whose outputs downloads, metadata and share links serve; 0: the original.
    edit_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    user: Mapped[User] = relationship(back_populates="scenes")
    job: Mapped[Job] = relationship(back_populates="scene", cascade="all, delete-orphan", uselist=False,
                                    passive_deletes=True)
    outputs: Mapped[list[Output]] = relationship(back_populates="scene", cascade="all, delete-orphan",
                                                 passive_deletes=True)
    shares: Mapped[list[Share]] = relationship(back_populates="scene", cascade="all, delete-orphan",
                                               passive_deletes=True)

    __table_args__ = (Index("ix_scenes_user_created", "user_id", "created_at"),)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), nullable=False, unique=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=JobState.queued.value, index=True)
    # Stage being run (or next to run while queued); None before the first claim.
    stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The last stage whose result is in storage: a re-delivered job resumes after it.
    stage_done: Mapped[str | None] = mapped_column(String(16), nullable=True)
    current_position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    current_size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    eta_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    error_code: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)

    scene: Mapped[Scene] = relationship(back_populates="job")


class Output(Base):
    """A finished output file; the file is moved into place before this row is written."""

    __tablename__ = "outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), nullable=False, index=True)
    output_type: Mapped[str] = mapped_column(String(16), nullable=False)
    iteration: Mapped[int] = mapped_column(Integer, nullable=False)
    relpath: Mapped[str] = mapped_column(String(255), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # 0: the original file; N: the file of edit version N (``SceneEdit``), served while the scene's
    # ``edit_version`` is N. Originals are never rewritten by an edit.
    edit_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    scene: Mapped[Scene] = relationship(back_populates="outputs")

    __table_args__ = (UniqueConstraint("scene_id", "output_type", "iteration", "edit_version", name="uq_output"),)


class SceneEdit(Base):
    """A scene's crop-and-clean edit list (``vidscene.edits``), at most one per scene.

    ``version`` counts every change (a ``PUT`` or a revert), so a derive job made for an older version can
    tell it is stale; ``operations`` empty means the original. ``state``: ``original``, ``preparing`` (a
    derive job is writing the edited files), ``ready`` (served: ``Scene.edit_version == version``) or
    ``failed`` (``message`` says why; the previous version is still served).
    """

    __tablename__ = "scene_edits"

    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="original")
    kept: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # gaussians left at the last iteration
    total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # gaussians before the edit
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class DeriveJob(Base):
    """Outputs made after a scene finished (``jobs.derive``): the edited files of an edit version, or an output
    type the upload did not ask for, at every iteration whose model is kept.

    A state machine of its own beside ``jobs`` (which has one row per scene for its stages): ``queued ->
    processing (lease) -> done | failed``, each move a conditional ``UPDATE``; the broker message carries
    only the id.
    """

    __tablename__ = "derive_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), nullable=False, index=True)
    edit_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=JobState.queued.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Share(Base):
    """A read-only public link to one scene: whoever has the token sees its viewer outputs, nothing else.

    Revoking deletes the row; deleting the scene deletes its shares (cascade), so a dead link is a 404.
    """

    __tablename__ = "shares"

    # token_urlsafe(24): 192 random bits, 32 URL-safe characters.
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    scene: Mapped[Scene] = relationship(back_populates="shares")


class TusUpload(Base):
    """A resumable (tus) upload on its way to becoming a scene: who sends it, how long it is, how much of it
    is on disk, and the scene's fields, validated when it was created.

    The bytes are a ``tus-<id>.part`` file in the data dir's tmp area; ``offset`` counts only bytes that were
    fsynced, so after a crash the file is cut back to it. Once complete, ``scene_id`` names the scene it
    became (the file has moved into the scene's folder) and the row stays until it expires, so a client
    whose last answer was lost can still learn the scene's id. Deleting the user or the scene deletes it.
    """

    __tablename__ = "tus_uploads"

    # token_urlsafe(16): 128 random bits; the upload URL is as unguessable as a scene id.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    length: Mapped[int] = mapped_column(BigInteger, nullable=False)
    offset: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    file_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fields: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    scene_id: Mapped[str | None] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class StageTiming(Base):
    """How long one stage of one finished job took, uninterrupted: what ``jobs.estimates`` learns from.

    No foreign key: the figures (mode, preset, size, seconds) say nothing about the scene or its owner and
    outlive a deleted scene, so the server's estimates keep what it measured.
    """

    __tablename__ = "stage_timings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(16), nullable=False)
    training_mode: Mapped[str] = mapped_column(String(16), nullable=False)
    preset: Mapped[str] = mapped_column(String(16), nullable=False)
    # The stage's step count (training: iterations; frames: frames read; export: saved iterations).
    units: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    seconds: Mapped[float] = mapped_column(Float, nullable=False)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_stage_timings_lookup", "stage", "training_mode", "preset", "finished_at"),)


class WorkerBeat(Base):
    """Workers seen alive, for ``vidscene status``."""

    __tablename__ = "worker_beats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    queues: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ApiToken(Base):
    """A personal API token: a long-lived bearer credential for scripts, limited to its ``scopes``.

    Only the SHA-256 of the secret is stored (``vidscene.api.security.hash_api_token``), so a copy of the
    database gives no usable token. Revoking deletes the row; deleting the user (cascade) or changing the
    password (``accounts.service.change_password``) deletes them all.
    """

    __tablename__ = "api_tokens"

    # token_urlsafe(12): the public handle used to list and revoke; it is not the secret.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)  # hex SHA-256
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Written at most once a minute per token (``vidscene.api.auth``), so polling costs no write per request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Webhook(Base):
    """A URL told about a user's scenes: which ``events`` it wants, and the secret its deliveries are signed
    with (HMAC-SHA256). The secret is stored as is because signing needs it; the API shows it once."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class DeliveryState(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # gave up after the retry window


class WebhookDelivery(Base):
    """One event for one webhook: the outbox row written in the transaction of the state change
    (``jobs.outbox``) and sent by the workers (``jobs.webhooks``).

    ``payload`` is the JSON body, fixed when the event happened (a cancelled scene's rows are gone by the
    time it is sent). ``next_attempt_at`` is when a worker may send it next; claiming a delivery pushes it
    forward, which is what keeps two workers from sending the same one. It is null once the delivery is
    delivered or given up.
    """

    __tablename__ = "webhook_deliveries"

    # token_urlsafe(16): also the payload's ``id``, which receivers dedupe on.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    scene_id: Mapped[str] = mapped_column(String(32), nullable=False)  # no key: the scene may be deleted
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=DeliveryState.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),)
