"""Where a scene's files live. Local directory layout by default."""

from vidscene.storage.local import OUTPUT_EXTENSIONS, SceneFiles, Storage

__all__ = ["OUTPUT_EXTENSIONS", "SceneFiles", "Storage"]
