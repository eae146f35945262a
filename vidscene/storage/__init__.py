"""Where a scene's files live. Local directory layout by default."""

from vidscene.storage.local import SceneFiles, Storage, is_disk_full, publish

__all__ = ["SceneFiles", "Storage", "is_disk_full", "publish"]
