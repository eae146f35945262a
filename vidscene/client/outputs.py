"""Download every output of a scene: each saved iteration of each output type the metadata says exists.

Files are named ``<type>-<iteration><extension>`` (the extension the server's catalogue gives for the scene's
training mode), written to a ``.part`` file and renamed once whole, so an interrupted run never leaves a
truncated file under the final name; a file already there with the right size is not fetched again.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from vidscene.client.errors import ApiError, raise_for_error

# Names from the server become file names: only plain ones (no separators, no "..") are accepted.
_NAME = re.compile(r"[a-z0-9_]{1,64}")
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,16}){0,3}")


def download_one(http: httpx.Client, url: str, target: Path, size: int) -> Path:
    if target.is_file() and target.stat().st_size == size:
        return target
    part = target.with_name(target.name + ".part")
    with http.stream("GET", url) as answer:
        if not answer.is_success:
            answer.read()
            raise_for_error(answer)
        with part.open("wb") as f:
            for block in answer.iter_bytes(1024 * 1024):
                f.write(block)
    part.replace(target)
    return target


def download_all(http: httpx.Client, scene_id: str, out_dir: Path,
                 extensions: dict[str, dict[str, str]]) -> list[Path]:
    """``extensions``: output type -> training mode -> file extension (the options' ``output_types``)."""
    answer = http.get(f"/user/scene/metadata/{scene_id}")
    raise_for_error(answer)
    metadata = answer.json()
    mode = metadata.get("training_mode", "gaussian")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for output_type, iterations in sorted(metadata["resources"].items()):
        extension = extensions.get(output_type, {}).get(mode, "")
        if not _NAME.fullmatch(output_type) or not _EXTENSION.fullmatch(extension):
            raise ApiError(502, f"The server named an output {output_type!r} ({extension!r}) this client will "
                                "not use as a file name.")
        for iteration, info in sorted(iterations.items(), key=lambda item: int(item[0])):
            if not info["exists"]:
                continue
            target = out_dir / f"{output_type}-{int(iteration)}{extension}"
            url = f"/user/scene/output/{output_type}/{scene_id}?iteration={int(iteration)}"
            written.append(download_one(http, url, target, int(info["size"])))
    return written
