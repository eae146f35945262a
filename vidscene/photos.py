"""Photo archives: a zip of JPEG, PNG or HEIC photos is a capture too (as Polycam and KIRI take them).

An archive is judged before anything is extracted, from its central directory alone, and refused when it is
unsafe or unusable: names that leave the archive (absolute, ``..``), links, encrypted entries, more entries
or more uncompressed bytes than the limits, an entry that inflates more than ``MAX_RATIO`` times (a zip
bomb), or too few photos. Nothing is ever written under a name taken from the archive: the frames stage reads
each photo from the archive by its entry into memory (``read_photo``).

Photos are taken in the order of their names (cameras number them in shooting order), with the EXIF
orientation applied. Files that are not photos (a ``__MACOSX`` folder, a JSON sidecar) are ignored.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from vidscene.probe import Media, NotAVideoError, VideoInfo

if TYPE_CHECKING:
    from PIL import Image

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif")
MIN_PHOTOS = 8
MAX_ENTRIES = 5000
MAX_UNCOMPRESSED = 16 * 1024**3
MAX_PHOTO_BYTES = 200 * 1024**2
MAX_RATIO = 200  # JPEG, PNG and HEIC barely compress: an entry inflating 200x is built to exhaust memory
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def looks_like_archive(head: bytes) -> bool:
    """Whether the first bytes of an upload are a zip archive's."""
    return head.startswith(ZIP_MAGIC)


def _zip_source(path: Media) -> Path | IO[bytes]:
    """What ``zipfile`` reads: the path, or a remote upload's ranged reader (``probe.RemoteMedia``)."""
    return path if isinstance(path, Path) else path.open("rb")


def is_archive(path: Media) -> bool:
    """Whether the file at ``path`` is a zip archive (by its first bytes, never its name)."""
    with path.open("rb") as f:
        return looks_like_archive(f.read(4))


@dataclass(frozen=True)
class PhotoEntry:
    name: str  # the entry's name in the archive (only ever used to read the entry, never as a path)
    size: int


def photo_entries(path: Media) -> list[PhotoEntry]:
    """The archive's photos in name order; ``NotAVideoError`` (a sentence for the user) when it is unsafe,
    damaged, or holds fewer than ``MIN_PHOTOS`` photos."""
    try:
        with zipfile.ZipFile(_zip_source(path)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise NotAVideoError("The zip archive is damaged and cannot be read.") from exc
    if len(infos) > MAX_ENTRIES:
        raise NotAVideoError(f"The archive has {len(infos)} files; at most {MAX_ENTRIES} are accepted.")
    if sum(i.file_size for i in infos) > MAX_UNCOMPRESSED:
        raise NotAVideoError(f"The archive unpacks to more than {MAX_UNCOMPRESSED // 1024**3} GiB.")
    photos = [PhotoEntry(i.filename, i.file_size) for i in infos if _checked(i)]
    if len(photos) < MIN_PHOTOS:
        raise NotAVideoError(f"The archive holds {len(photos)} photo{'s' if len(photos) != 1 else ''} (JPEG, PNG or "
                             f"HEIC); at least {MIN_PHOTOS} are needed, taken while walking around the subject.")
    return sorted(photos, key=lambda p: _natural_key(p.name))


def _checked(info: zipfile.ZipInfo) -> bool:
    """Whether the entry is a photo to use; raises for an entry that makes the whole archive unsafe."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
        raise NotAVideoError(f"The archive contains a file outside itself ({name!r}); it was refused.")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise NotAVideoError(f"The archive contains a link ({name!r}); it was refused.")
    if info.is_dir() or parts[0] == "__MACOSX" or PurePosixPath(name).name.startswith("."):
        return False
    if not name.lower().endswith(PHOTO_SUFFIXES):
        return False
    if info.flag_bits & 0x1:
        raise NotAVideoError(f"The archive's photo {name!r} is encrypted; upload an archive without a password.")
    if info.file_size > MAX_PHOTO_BYTES or info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise NotAVideoError(f"The archive's entry {name!r} unpacks to {info.file_size} bytes from "
                             f"{info.compress_size}: not a photo; the archive was refused.")
    return True


def _natural_key(name: str) -> list[object]:
    """``IMG_2.jpg`` before ``IMG_10.jpg``."""
    key: list[object] = []
    number = ""
    for ch in name.lower():
        if ch.isdigit():
            number += ch
            continue
        if number:
            key.append(int(number))
            number = ""
        key.append(ch)
    if number:
        key.append(int(number))
    return [(0, k) if isinstance(k, int) else (1, k) for k in key]


@cache
def heic_support() -> bool:
    """Registers HEIC (the iPhone's default) with Pillow, once; False when the package is missing, and such
    photos are then refused by name. Done on the first photo read, not at import: the API imports this module
    at start, and Pillow with its HEIC plugin would be resident in every API process that never sees a photo
    (tests/api/test_start_imports.py)."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - the package is a dependency
        return False
    pillow_heif.register_heif_opener()
    return True


def read_photo(archive: zipfile.ZipFile, entry: PhotoEntry) -> Image.Image:
    """The photo upright (EXIF orientation applied) in RGB; ``NotAVideoError`` when it cannot be decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    heic = heic_support()
    with archive.open(entry.name) as stream:
        data = stream.read(MAX_PHOTO_BYTES + 1)
    try:
        with Image.open(io.BytesIO(data)) as img:
            return ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        kind = "HEIC support is missing" if entry.name.lower().endswith((".heic", ".heif")) and not heic else \
            "it is damaged or not a photo"
        raise NotAVideoError(f"The photo {entry.name!r} in the archive cannot be read: {kind}.") from exc


def probe_archive(path: Media) -> VideoInfo:
    """What an upload of photos is, in the shape of a video's probe: ``frame_count`` photos, the first one's
    upright size; ``NotAVideoError`` as ``photo_entries`` and ``read_photo`` raise it."""
    photos = photo_entries(path)
    with zipfile.ZipFile(_zip_source(path)) as archive:
        first = read_photo(archive, photos[0])
    return VideoInfo(container="zip", codec="photos", width=first.width, height=first.height, rotation=0,
                     fps=0.0, duration_s=0.0, frame_count=len(photos))
