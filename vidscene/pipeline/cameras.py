"""Cameras and the reconstructed scene handed from structure from motion to training and export.

Conventions (used everywhere in the pipeline):
- pinhole intrinsics in pixels (``fx, fy, cx, cy``), images already undistorted;
- OpenCV camera axes: x right, y down, z forward (looking direction);
- ``R, t`` map world to camera: ``x_cam = R @ x_world + t``;
- after normalisation the world is centred on the cameras, scaled so the cameras lie within radius ~1, and
  world ``-y`` is "up" (the normal of the floor or table the subject stands on, ``upright.find_up``, else the
  cameras' up), matching the camera's y-down convention: the supporting plane is ``y = const``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    R: F64  # (3, 3) world -> camera rotation
    t: F64  # (3,) world -> camera translation
    image_name: str = ""

    @property
    def K(self) -> F64:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def viewmat(self) -> F64:
        """4x4 world -> camera matrix."""
        m = np.eye(4)
        m[:3, :3] = self.R
        m[:3, 3] = self.t
        return m

    @property
    def center(self) -> F64:
        """Camera position in world coordinates."""
        return np.asarray(-self.R.T @ self.t, dtype=np.float64)

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera rendering at another resolution (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
                       cx=self.cx * sx, cy=self.cy * sy)

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy, "cx": self.cx,
                "cy": self.cy, "R": self.R.tolist(), "t": self.t.tolist(), "image_name": self.image_name}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Camera:
        return cls(width=int(d["width"]), height=int(d["height"]), fx=float(d["fx"]), fy=float(d["fy"]),
                   cx=float(d["cx"]), cy=float(d["cy"]), R=np.asarray(d["R"], dtype=np.float64),
                   t=np.asarray(d["t"], dtype=np.float64), image_name=str(d.get("image_name", "")))


@dataclass
class SceneData:
    """What training needs: posed undistorted images (time order) and a sparse coloured point cloud."""

    cameras: list[Camera]
    images_dir: Path
    points: F32  # (N, 3) world coordinates
    colors: NDArray[np.uint8]  # (N, 3) RGB
    extras: dict[str, Any] = field(default_factory=dict)  # stats: registered counts, errors, timings

    CAMERAS_FILE = "cameras.json"
    POINTS_FILE = "points.npz"

    def save(self, directory: Path) -> None:
        """Write ``cameras.json`` and ``points.npz`` (atomic per file)."""
        directory.mkdir(parents=True, exist_ok=True)
        # Relative when the images live under ``directory``, so the data dir can be moved or mounted elsewhere.
        images_dir = self.images_dir.absolute()
        if images_dir.is_relative_to(directory.absolute()):
            images_dir = images_dir.relative_to(directory.absolute())
        doc = {"images_dir": str(images_dir), "cameras": [c.to_json() for c in self.cameras],
               "extras": self.extras}
        tmp = directory / (self.CAMERAS_FILE + ".part")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp_points = directory / "points.part.npz"
        np.savez(tmp_points, points=self.points.astype(np.float32), colors=self.colors.astype(np.uint8))
        tmp_points.replace(directory / self.POINTS_FILE)
        tmp.replace(directory / self.CAMERAS_FILE)

    @classmethod
    def load(cls, directory: Path) -> SceneData:
        doc = json.loads((directory / cls.CAMERAS_FILE).read_text())
        with np.load(directory / cls.POINTS_FILE) as z:
            points = z["points"].astype(np.float32)
            colors = z["colors"].astype(np.uint8)
        images_dir = Path(doc["images_dir"])
        if not images_dir.is_absolute():
            images_dir = directory / images_dir
        return cls(cameras=[Camera.from_json(c) for c in doc["cameras"]], images_dir=images_dir,
                   points=points, colors=colors, extras=doc.get("extras", {}))

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / cls.CAMERAS_FILE).is_file() and (directory / cls.POINTS_FILE).is_file()
