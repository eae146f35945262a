"""``s3://bucket/prefix`` through boto3: any S3-compatible service (AWS, R2, MinIO, Ceph RGW, GCS's S3 API).

boto3 reads the standard settings itself (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, profiles, instance roles), retries the errors S3 documents as
retryable, and its multipart and ranged ``GET`` calls are the whole API this needs. Connections time out
after a few seconds, so a store that is down turns into ``StoreUnavailableError`` (503 in the API, a retried
stage in a worker) instead of a request hanging.

The client is made lazily and again after a fork: a Celery worker forks its pool children, and a client's
connection pool must not be shared across processes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from vidscene.storage.objects import ObjectInfo, StoreUnavailableError

PART_BYTES = 8 * 1024**2  # S3's minimum is 5 MiB for every part but the last
COPY_OBJECT_LIMIT = 5 * 1024**3  # the largest object one CopyObject call may copy
# Codes that mean "this store will not serve us now", not "this object is missing".
_UNAVAILABLE_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "ExpiredToken",
    "InvalidToken", "ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout", "503", "500", "403",
})
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in ``/`` or empty) of ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _total_size(content_range: str | None) -> int | None:
    """The object's size from a ``Content-Range: bytes a-b/size`` answer header (None: no such header)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else None


class S3Store:
    """An ``ObjectStore`` (``storage.objects``) on one bucket under one prefix."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_pid = 0

    # ---- plumbing ------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                import boto3
                from botocore.config import Config

                # SigV4 everywhere: the only signature newer regions, R2 and MinIO take (presigned URLs included).
                config = Config(signature_version="s3v4", connect_timeout=3, read_timeout=60,
                                retries={"max_attempts": 3, "mode": "standard"},
                                max_pool_connections=32)
                self._client = boto3.session.Session().client("s3", config=config)
                self._client_pid = os.getpid()
            return self._client

    def _key(self, key: str) -> str:
        return self.prefix + key

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """botocore's connection and permission errors as ``StoreUnavailableError`` naming the store."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.exceptions import RetriesExceededError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _UNAVAILABLE_CODES:
                raise StoreUnavailableError(f"object store {self.url} refused {what}: {code}") from exc
            raise
        except (BotoCoreError, S3UploadFailedError, RetriesExceededError) as exc:
            # no connection, timeouts, no credentials; the managed transfers wrap the same in their own types
            raise StoreUnavailableError(f"object store {self.url} unreachable ({what}): {exc}") from exc

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES

    # ---- the ObjectStore protocol --------------------------------------------------------------------

    def check(self) -> None:
        """Raise ``StoreUnavailableError`` unless the bucket answers to these credentials."""
        from botocore.exceptions import ClientError

        try:
            with self._translated("a check of the bucket"):
                self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:  # head_bucket's 404 is a missing bucket, not a missing object
            raise StoreUnavailableError(f"object store {self.url}: bucket {self.bucket} not found") from exc

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with self._translated("a HEAD"):
                found = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return ObjectInfo(size=int(found["ContentLength"]), mtime=found["LastModified"].timestamp())

    def read_range(self, key: str, offset: int, size: int) -> bytes:
        if size <= 0:
            return b""
        with self._translated("a ranged GET"):
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                           Range=f"bytes={offset}-{offset + size - 1}")
            return bytes(found["Body"].read())

    def stream_range(self, key: str, offset: int, size: int, chunk: int) -> Generator[bytes]:
        with self._translated("a ranged GET"):
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                           Range=f"bytes={offset}-{offset + size - 1}")
        body = found["Body"]
        try:
            sent = 0
            while sent < size:
                with self._translated("a ranged GET"):
                    data = body.read(min(chunk, size - sent))
                if not data:
                    raise RuntimeError(f"Object {key} is shorter than expected.")
                sent += len(data)
                yield data
        finally:
            body.close()

    def read_first(self, key: str, offset: int, size: int) -> tuple[ObjectInfo, bytes] | None:
        """One ranged GET answering for a HEAD too: the total size is in its ``Content-Range``. A range
        past the end (416) takes a HEAD after all; a server that ignores ``Range`` and sends more than was
        asked has its answer dropped unread for a HEAD, so no whole object is ever read into memory here."""
        from botocore.exceptions import ClientError

        try:
            with self._translated("a ranged GET"):
                found = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                               Range=f"bytes={offset}-{offset + max(size, 1) - 1}")
        except ClientError as exc:
            if self._missing(exc):
                return None
            if str(exc.response.get("Error", {}).get("Code", "")) not in ("InvalidRange", "416"):
                raise
            return self._info_only(key)
        total = _total_size(found.get("ContentRange"))
        if total is None or int(found["ContentLength"]) > size:
            found["Body"].close()
            return self._info_only(key)
        with self._translated("a ranged GET"):
            data = bytes(found["Body"].read())
        return ObjectInfo(size=total, mtime=found["LastModified"].timestamp()), data

    def _info_only(self, key: str) -> tuple[ObjectInfo, bytes] | None:
        """``read_first``'s answer from a HEAD, with no bytes: the ranged GET could not say the size."""
        info = self.stat(key)
        return None if info is None else (info, b"")

    def read_bytes(self, key: str) -> bytes | None:
        try:
            with self._translated("a GET"):
                found = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                return bytes(found["Body"].read())
        except Exception as exc:
            if self._missing(exc):
                return None
            raise

    def listing(self, prefix: str) -> dict[str, ObjectInfo]:
        """Every object under ``prefix``, by key relative to it."""
        out: dict[str, ObjectInfo] = {}
        full = self._key(prefix)
        with self._translated("a listing"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    out[item["Key"][len(full):]] = ObjectInfo(size=int(item["Size"]),
                                                              mtime=item["LastModified"].timestamp())
        return out

    def put_file(self, key: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        with self._translated("an upload"):
            self.client.upload_file(str(path), self.bucket, self._key(key),
                                    Config=TransferConfig(multipart_chunksize=PART_BYTES, use_threads=False))

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._translated("a PUT"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_file(self, key: str, path: Path) -> None:
        """Download to a ``.part`` name and rename: a killed download leaves no file that looks whole."""
        from boto3.s3.transfer import TransferConfig

        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        with self._translated("a download"):
            self.client.download_file(self.bucket, self._key(key), str(part),
                                      Config=TransferConfig(multipart_chunksize=PART_BYTES, use_threads=False))
        os.replace(part, path)

    def copy(self, source: str, target: str) -> None:
        """A server-side copy: one CopyObject up to S3's 5 GiB limit (a multipart copy re-reads the source
        once per part on some servers), the managed multipart copy above it."""
        found = self.stat(source)
        if found is None:
            raise FileNotFoundError(f"object {source} is missing")
        origin = {"Bucket": self.bucket, "Key": self._key(source)}
        with self._translated("a copy"):
            if found.size <= COPY_OBJECT_LIMIT:
                self.client.copy_object(CopySource=origin, Bucket=self.bucket, Key=self._key(target))
            else:
                self.client.copy(origin, self.bucket, self._key(target))

    def delete(self, keys: Iterable[str]) -> None:
        batch = [{"Key": self._key(key)} for key in keys]
        with self._translated("a delete"):
            for start in range(0, len(batch), 1000):  # DeleteObjects takes at most 1000 keys
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch[start:start + 1000],
                                                                       "Quiet": True})

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (which must end in ``/``); returns how many there were."""
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix to delete must end in '/': {prefix!r}")
        keys = [prefix + rest for rest in self.listing(prefix)]
        self.delete(keys)
        return len(keys)

    def start_upload(self, key: str) -> S3Upload:
        return S3Upload(self, key)

    def presigned_url(self, key: str, seconds: int, filename: str | None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = f"attachment; filename*=utf-8''{quote(filename)}"
        with self._translated("a presigned URL"):
            return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))


class S3Upload:
    """One multipart upload, fed in pieces of any size and sent in ``PART_BYTES`` parts: the memory it holds
    is one part, whatever the object's size. Nothing is visible under ``key`` before ``complete``; ``abort``
    removes the parts already sent.

    Pieces are copied into one part-sized buffer, made at the first write and reused for every part (sending
    is synchronous, so the buffer is free again when ``upload_part`` returns). A growing ``bytearray`` sliced
    into a new ``bytes`` per part held about three parts at each send, and each new 8 MiB block, freed on a
    different worker thread each time, stayed resident in that thread's malloc arena: the API grew by ~30 MiB
    over a 1 GiB upload (``bench/s3_upload.py``; RESULTS, "The API's memory during a 1 GiB upload")."""

    def __init__(self, store: S3Store, key: str) -> None:
        self.store = store
        self.key = key
        self._part: bytearray | None = None
        self._pending = 0
        self._parts: list[dict[str, Any]] = []
        with store._translated("the start of an upload"):
            self._id = str(store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key(key))["UploadId"])

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._part is None:
            self._part = bytearray(PART_BYTES)
        while view:
            count = min(len(view), PART_BYTES - self._pending)
            self._part[self._pending:self._pending + count] = view[:count]
            self._pending += count
            view = view[count:]
            if self._pending == PART_BYTES:
                self._send(self._part)
                self._pending = 0

    def _send(self, body: bytearray) -> None:
        number = len(self._parts) + 1
        with self.store._translated("a part of an upload"):
            sent = self.store.client.upload_part(Bucket=self.store.bucket, Key=self.store._key(self.key),
                                                 UploadId=self._id, PartNumber=number, Body=body)
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self._pending or not self._parts:
            last = self._part or bytearray()
            del last[self._pending:]  # the buffer is not written to again
            self._send(last)
            self._part, self._pending = None, 0
        with self.store._translated("the end of an upload"):
            self.store.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.store._key(self.key),
                                                        UploadId=self._id, MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        self._part, self._pending = None, 0
        try:
            with self.store._translated("an abort of an upload"):
                self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.store._key(self.key),
                                                         UploadId=self._id)
        except StoreUnavailableError:
            pass  # the bucket's lifecycle rule for incomplete uploads is the operator's backstop (README)
