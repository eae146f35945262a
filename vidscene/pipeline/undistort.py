"""Undistortion of the registered frames to pure pinhole cameras of the same size (structure from motion's last step).

Done here rather than with pycolmap's undistorter: it keeps every frame the size it was, copies frames whose
distortion is negligible, and writes fast PNGs on a thread pool.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.colmap import pycolmap  # zlib first, SIGTERM kept: see colmap.py


def undistort_frames(model: pycolmap.Reconstruction, frames_dir: Path, out_dir: Path, threads: int,
                     done: Callable[[int, int], None]) -> list[Camera]:
    """Resample every registered frame to a pinhole camera; returns the cameras in time (name) order.

    ``done(n, total)`` is called as each of the ``total`` frames in turn is written (progress).

    The pinhole camera keeps the frame's size, principal point and focal length, zoomed in just enough that
    every output pixel comes from inside the frame (no smeared borders with pincushion distortion). This is
    cheaper than pycolmap's undistorter, keeps all frames the same size, and writes fast PNGs.
    """
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    images = sorted((im for im in model.images.values() if im.has_pose), key=lambda im: im.name)
    warps = {cid: undistortion_map(model.cameras[cid]) for cid in {im.camera_id for im in images}}

    def undistort_one(name: str, camera_id: int) -> None:
        _, map_x, map_y = warps[camera_id]
        if is_identity(map_x, map_y):
            # Distortion under 0.05 px everywhere: resampling would only blur the frame.
            shutil.copyfile(frames_dir / name, out_dir / name)
            return
        with Image.open(frames_dir / name) as im:
            src = np.asarray(im.convert("RGB"))
        Image.fromarray(remap_bilinear(src, map_x, map_y)).save(out_dir / name, compress_level=1)

    # numpy and Pillow release the GIL while they work, so threads use every core.
    with ThreadPoolExecutor(max_workers=threads if threads > 0 else (os.cpu_count() or 1)) as pool:
        jobs = [pool.submit(undistort_one, im.name, im.camera_id) for im in images]
        for n, job in enumerate(jobs):
            job.result()
            done(n + 1, len(images))
    cameras = []
    for image in images:
        pose = image.cam_from_world()
        cameras.append(replace(warps[image.camera_id][0], R=np.asarray(pose.rotation.matrix(), dtype=np.float64),
                               t=np.asarray(pose.translation, dtype=np.float64), image_name=image.name))
    return cameras


def undistortion_map(cam: pycolmap.Camera) -> tuple[Camera, NDArray[np.float32], NDArray[np.float32]]:
    """Pinhole intrinsics and, for each of its pixels, where to sample the distorted frame (array indices)."""
    w, h = int(cam.width), int(cam.height)
    f = float(cam.mean_focal_length())
    cx, cy = float(cam.principal_point_x), float(cam.principal_point_y)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
    border = np.zeros((h, w), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    zoom = 1.0
    for _ in range(40):
        fz = f * zoom
        rays = np.stack([(u[border] - cx) / fz, (v[border] - cy) / fz, np.ones(int(border.sum()))], axis=1)
        src = np.asarray(cam.img_from_cam(rays, check_cheirality=False))
        outside = (src[:, 0] < -0.01) | (src[:, 0] > w + 0.01) | (src[:, 1] < -0.01) | (src[:, 1] > h + 0.01)
        if not outside.any():
            break
        zoom *= 1.005
    fz = f * zoom
    rays = np.stack([((u - cx) / fz).ravel(), ((v - cy) / fz).ravel(), np.ones(w * h)], axis=1)
    src = np.asarray(cam.img_from_cam(rays, check_cheirality=False)).reshape(h, w, 2) - 0.5
    intrinsics = Camera(width=w, height=h, fx=fz, fy=fz, cx=cx, cy=cy, R=np.eye(3), t=np.zeros(3))
    return intrinsics, src[..., 0].astype(np.float32), src[..., 1].astype(np.float32)


def is_identity(map_x: NDArray[np.float32], map_y: NDArray[np.float32], tolerance_px: float = 0.05) -> bool:
    h, w = map_x.shape
    dx = np.abs(map_x - np.arange(w, dtype=np.float32)[None, :])
    dy = np.abs(map_y - np.arange(h, dtype=np.float32)[:, None])
    return float(max(dx.max(), dy.max())) < tolerance_px


def remap_bilinear(img: NDArray[np.uint8], map_x: NDArray[np.float32],
                    map_y: NDArray[np.float32]) -> NDArray[np.uint8]:
    h, w = img.shape[:2]
    x = np.clip(map_x, 0, w - 1)
    y = np.clip(map_y, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 2)
    y0 = np.minimum(y.astype(np.int64), h - 2)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    f = img.astype(np.float32)
    top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
    bottom = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
    return np.asarray(np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255), dtype=np.uint8)
