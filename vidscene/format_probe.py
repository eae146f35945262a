"""Which demuxer FFmpeg will pick for a file, found from its first bytes without opening it as media.

``avformat_open_input`` chooses a demuxer by probing the file's first bytes (``av_probe_input_buffer2``:
2 KiB, then twice as many each round while no demuxer scores above 25, and at 1 MiB, or at the end of a
shorter file, any score wins) and only then checks the format whitelist (``vidscene.probe``): a refused file
fails with "format not on whitelist", never saying what it was. Here the same public libavformat function
(``av_probe_input_format3``, through ctypes, in the library PyAV itself loaded) scores the same bytes in the
same rounds, so the answer is FFmpeg's own, and it is known as soon as the bytes of the deciding round have
arrived: at the latest after 1 MiB of an upload. Nothing is opened and no demuxer runs: a probe function only
reads the buffer it is handed (an HLS or concat demuxer opens other files in its ``read_header``, which is
never called here).

Where libavformat cannot be called (another packaging of PyAV), ``detect`` answers ``None``: the whitelist
still refuses what it refused, only without naming it, and uploads are judged at their end.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import av

logger = logging.getLogger(__name__)

PROBE_BUF_MIN = 2048  # libavformat's PROBE_BUF_MIN: the first round
PROBE_BUF_MAX = 1 << 20  # libavformat's PROBE_BUF_MAX, the default ``formatprobesize``: the last round
SCORE_RETRY = 25  # AVPROBE_SCORE_RETRY: below the last round a demuxer needs more than this
_PADDING = 64  # AVPROBE_PADDING_SIZE is 32: probe functions may read that far past the buffer


@dataclass(frozen=True)
class Detection:
    """``demuxer`` is what FFmpeg picks (``None``: none matches, so opening fails); ``score`` its probe score
    (above 25 is confident, FFmpeg warns of a possible misdetection below)."""

    demuxer: str | None
    score: int


class _ProbeData(ctypes.Structure):
    """``AVProbeData`` (libavformat/avformat.h), unchanged since FFmpeg 2.2."""

    _fields_ = [("filename", ctypes.c_char_p), ("buf", ctypes.c_void_p), ("buf_size", ctypes.c_int),
                ("mime_type", ctypes.c_char_p)]


def _candidates() -> list[Path]:
    """libavformat files PyAV may have loaded: the ones mapped into this process, then a wheel's own."""
    found: list[Path] = []
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and Path(fields[5]).name.startswith("libavformat"):
            found.append(Path(fields[5]))
    package = Path(av.__file__).resolve().parent
    for folder in (package.parent / "av.libs", package / ".dylibs", package.parent / "av.libs" / "lib"):
        found.extend(sorted(folder.glob("libavformat*")))
    return list(dict.fromkeys(path for path in found if path.is_file()))


@functools.cache
def probe_function() -> Any:
    """``av_probe_input_format3`` of the libavformat PyAV uses (its version must be PyAV's), or ``None``.

    Everything here calls it through this name, so that a test can run the fallback of a system where
    libavformat cannot be called by replacing it with one that returns ``None``."""
    wanted = tuple(av.library_versions.get("libavformat", ()))
    for path in _candidates():
        try:
            lib = ctypes.CDLL(str(path))
            version = lib.avformat_version
            version.restype = ctypes.c_uint
            version.argtypes = []
            number = int(version())
            if (number >> 16, (number >> 8) & 0xFF, number & 0xFF) != wanted:
                continue
            function = lib.av_probe_input_format3
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_void_p
        function.argtypes = [ctypes.POINTER(_ProbeData), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        return function
    logger.warning("libavformat's probe cannot be called: refused uploads are not named, and are judged at "
                   "their end only")
    return None


def available() -> bool:
    return probe_function() is not None


def _score(function: Any, data: bytes | None, filename: bytes, *, opened: bool) -> Detection:
    buffer = ctypes.create_string_buffer(data or b"", len(data or b"") + _PADDING)  # zero-padded
    probe = _ProbeData(filename, ctypes.cast(buffer, ctypes.c_void_p) if data is not None else None,
                       len(data or b""), None)
    score = ctypes.c_int(0)
    found = function(ctypes.byref(probe), 1 if opened else 0, ctypes.byref(score))
    if not found:
        return Detection(None, int(score.value))
    name = ctypes.cast(found, ctypes.POINTER(ctypes.c_char_p))[0]  # AVInputFormat.name comes first
    return Detection(name.decode("ascii", errors="replace") if name else None, int(score.value))


def detect(head: bytes, path: object, *, whole_file: bool) -> Detection | None:
    """The demuxer ``av.open(path)`` picks for a file starting with ``head``; ``None`` while undecided.

    ``whole_file``: ``head`` is all of the file (a shorter file is decided at its end). Otherwise the answer
    waits for the round that decides: a confident match in the bytes there are, or 1 MiB. ``path`` matters
    as FFmpeg's does: an extension adds a point, a pattern such as ``%d`` would pick image2. Also ``None``
    when libavformat cannot be called.
    """
    function = probe_function()
    if function is None:
        return None
    filename = os.fsencode(str(path))
    # init_input: formats that need no file (and image2) judged on the name alone, then the bytes in rounds.
    by_name = _score(function, None, filename, opened=False)
    if by_name.demuxer is not None and by_name.score > SCORE_RETRY:
        return by_name
    size = PROBE_BUF_MIN
    while True:
        last = size >= PROBE_BUF_MAX
        if len(head) < size and not whole_file:
            return None  # this round's bytes have not all arrived
        found = _score(function, head[:size], filename, opened=True)
        if found.demuxer is not None and found.score > (0 if last else SCORE_RETRY):
            return found
        if last:
            return Detection(None, found.score)
        if len(head) <= size:  # the whole file was read: FFmpeg's next read ends the file, any score wins
            found = _score(function, head, filename, opened=True)
            return found if found.demuxer is not None and found.score > 0 else Detection(None, found.score)
        size = min(size * 2, PROBE_BUF_MAX)


class Openable(Protocol):
    """A ``Path``, or an upload read from an object store (``probe.RemoteMedia``)."""

    def open(self, mode: str = "rb") -> IO[bytes]: ...


def read_head(path: Path | Openable) -> tuple[bytes, bool]:
    """The bytes of ``path`` that ``detect`` may need, and whether they are the whole file."""
    with path.open("rb") as handle:
        head = handle.read(PROBE_BUF_MAX)
        whole = len(head) < PROBE_BUF_MAX or not handle.read(1)
    return head, whole
