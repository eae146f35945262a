"""The first capture camera, as a viewer needs it to open the 3D view from the person's own viewpoint.

Written once per scene at export time (``<scene>/outputs/initial_view.json``) and served by the API as the
metadata's ``initial_view``. Everything is in the frame of the exported splats and point clouds: the
pipeline's normalised world (``cameras.py``: OpenCV axes, world ``-y`` up), which the exporters write as is.

A camera there looks along its ``+z`` axis with ``+y`` pointing down the image; a three.js camera looks down
its ``-z`` with ``+y`` up. So the camera is described without any axis convention: ``position`` (the centre),
``forward`` (the unit viewing direction through the image centre), ``up`` (the unit direction of the image's
top, orthogonal to ``forward``), ``fov_y_degrees`` (the full vertical field of view) and ``aspect`` (width over
height). A three.js viewer sets ``camera.up = up``, places the camera at ``position`` and looks at
``position + forward`` (after whatever transform it applies to the splats); ``test_initial_view`` projects
known points both ways and checks they land on the same pixels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.export import atomic_write_path

FILENAME = "initial_view.json"


def initial_view(camera: Camera) -> dict[str, Any]:
    """The viewer's description of ``camera`` (see the module docstring). The principal point is taken to be
    the image centre, as a viewer's symmetric frustum has it (SfM's undistorted frames are within a pixel
    or two of it)."""
    to_world = camera.R.T  # columns: the camera's x (right), y (down), z (forward) axes in world coordinates
    forward = to_world[:, 2] / np.linalg.norm(to_world[:, 2])
    up = -to_world[:, 1] / np.linalg.norm(to_world[:, 1])
    fov_y = 2.0 * math.degrees(math.atan(camera.height / (2.0 * camera.fy)))
    return {
        "position": [round(float(v), 6) for v in camera.center],
        "forward": [round(float(v), 6) for v in forward],
        "up": [round(float(v), 6) for v in up],
        "fov_y_degrees": round(fov_y, 4),
        "aspect": round(camera.width / camera.height, 6),
        "image_size": [camera.width, camera.height],
        "image_name": camera.image_name,
        "frame": "splat",  # the coordinates of the exported .splat/.ply/.spz
    }


def write_initial_view(path: Path, cameras: list[Camera]) -> Path | None:
    """Write the first (earliest registered) camera's view to ``path`` atomically; None without cameras."""
    if not cameras:
        return None
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(initial_view(cameras[0])))
    return path
