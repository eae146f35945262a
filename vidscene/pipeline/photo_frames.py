"""Frames stage for a zip of photos: the same frames, thumbnail and result as a video gives.

Photos are read one at a time from the archive (``vidscene.photos``: safety was judged at upload, and is
judged again here), upright, scaled to the preset's working size. When there are more photos than the
preset keeps, the sharpest of each run of consecutive photos is kept, as for a video's frames. Structure from
motion shares one camera between all frames, so photos of another shape than the first (a portrait among
landscapes, another aspect ratio) are left out and counted.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vidscene import photos
from vidscene.pipeline.config import FramesConfig
from vidscene.pipeline.errors import VideoError
from vidscene.pipeline.frames import (
    Candidate,
    FramesResult,
    FrameWriter,
    candidate_groups,
    publish_frames,
    sharpness,
    working_size,
)
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.probe import NotAVideoError

log = logging.getLogger(__name__)

ASPECT_TOLERANCE = 0.02


def extract_photo_frames(archive_path: Path, out_dir: Path, thumbnail: Path, config: FramesConfig,
                         progress: ProgressFn = no_progress) -> FramesResult:
    """``frames.extract_frames`` for a photo archive; ``VideoError`` for an unusable archive or too few
    photos of one shape. A photo's index (in name order) stands for its time: one second a photo."""
    started = time.perf_counter()
    try:
        entries = photos.photo_entries(archive_path)
    except NotAVideoError as exc:
        raise VideoError(str(exc)) from exc
    count = len(entries)
    groups = candidate_groups([float(i) for i in range(count)], config.target_count,
                              math.ceil(count / max(config.target_count, 1)))
    group_of = {idx: g for g, members in enumerate(groups) for idx in members}
    tmp_dir = out_dir.with_name(out_dir.name + ".part")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        writer = FrameWriter(tmp_dir)
        size, other_shape = _read_candidates(archive_path, entries, group_of, config, writer, progress)
        writer.flush()
        if len(writer.names) < config.min_frames:
            raise VideoError(f"Only {len(writer.names)} of the {count} photos could be used"
                             + (f" ({other_shape} have another shape than the first)" if other_shape else "")
                             + f"; at least {config.min_frames} are needed.")
        publish_frames(writer, tmp_dir, out_dir, thumbnail, config.thumbnail_size)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    stats: dict[str, Any] = {"input": "photos", "source_frames": count, "kept": len(writer.names),
                             "skipped_other_shape": other_shape, "skipped_featureless": writer.featureless,
                             "duration_s": float(count - 1), "seconds": round(time.perf_counter() - started, 3)}
    progress(count, count, f"Kept {len(writer.names)} photos")
    log.info("frames extracted", extra={"stage": "frames", "video": str(archive_path), **stats})
    return FramesResult(frames_dir=out_dir, frame_names=writer.names, thumbnail=thumbnail,
                        source_frame_indices=writer.source_indices, width=size[0], height=size[1], stats=stats)


def _read_candidates(archive_path: Path, entries: list[photos.PhotoEntry], group_of: dict[int, int],
                     config: FramesConfig, writer: FrameWriter, progress: ProgressFn) -> tuple[tuple[int, int], int]:
    """Hand every candidate photo to ``writer``; (working size, photos left out for their shape)."""
    size: tuple[int, int] | None = None
    aspect = 0.0
    other_shape = 0
    with zipfile.ZipFile(archive_path) as archive:
        for index, entry in enumerate(entries):
            progress(index, len(entries), "Reading the photos")
            if index not in group_of:
                continue
            try:
                img = photos.read_photo(archive, entry)
            except NotAVideoError as exc:
                raise VideoError(str(exc)) from exc
            if size is None:
                size, aspect = working_size(img.width, img.height, config.max_long_side), img.width / img.height
            elif abs(img.width / img.height - aspect) > ASPECT_TOLERANCE * aspect:
                other_shape += 1
                continue
            rgb = np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
            gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            writer.offer(Candidate(group_of[index], index, sharpness(gray), rgb))
    if size is None:
        raise VideoError("The archive holds no photo that could be read.")
    return size, other_shape
