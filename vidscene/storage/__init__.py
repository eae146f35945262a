"""Where a scene's files live: the data dir (``file://``, the default) or an object store (``s3://``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from vidscene.storage.local import SceneFiles, Storage, is_disk_full, publish, scene_key
from vidscene.storage.objects import ObjectStore, Readable, StoreUnavailableError

__all__ = ["ObjectStore", "Readable", "SceneFiles", "Storage", "StoreUnavailableError", "is_disk_full",
           "open_storage", "publish", "scene_key"]


def open_storage(data_dir: Path, storage_url: str = "", *, presign_seconds: int | None = None) -> Storage:
    """The storage a ``VIDSCENE_STORAGE_URL`` names: empty or ``file://`` (the data dir), ``file:///some/dir``
    (``scenes/`` and ``tmp/`` there instead), or ``s3://bucket/prefix``. ``presign_seconds`` (s3 only) sends
    downloads to presigned URLs valid that long."""
    parts = urlsplit(storage_url or "file://")
    if parts.scheme == "file":
        return Storage(Path(parts.path) if parts.path else data_dir)
    if parts.scheme == "s3":
        from vidscene.storage.s3 import S3Store

        return Storage(data_dir, objects=S3Store(storage_url), presign_seconds=presign_seconds)
    raise ValueError(f"unsupported storage URL {storage_url!r}: use file://... or s3://bucket/prefix")
