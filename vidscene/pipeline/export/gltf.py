"""Gaussians as a binary glTF (``.glb``) with the Khronos ``KHR_gaussian_splatting`` extension.

Written against the extension's Release Candidate text in KhronosGroup/glTF (``extensions/2.0/Khronos/
KHR_gaussian_splatting``, editorial review of 2026-04-15, commit 63770cc). One node, one mesh, one primitive in
``POINTS`` mode whose attributes are, per gaussian, all ``FLOAT`` accessors in their own buffer views:

- ``POSITION`` (VEC3, with the ``min``/``max`` glTF requires);
- ``KHR_gaussian_splatting:ROTATION`` (VEC4): the unit quaternion in glTF's x, y, z, w order;
- ``KHR_gaussian_splatting:SCALE`` (VEC3): linear scales (``exp`` of the log scales);
- ``KHR_gaussian_splatting:OPACITY`` (SCALAR): ``sigmoid`` of the logit, in 0..1;
- ``KHR_gaussian_splatting:SH_DEGREE_0_COEF_0`` and, per band kept, ``SH_DEGREE_l_COEF_n`` (VEC3, R G B): the
  3DGS coefficients, whose order within a band (m = -l .. l) is the extension's;
- ``COLOR_0`` (VEC4): the fallback for viewers without the extension, which draw a coloured point cloud: the
  diffuse colour decoded from sRGB to linear (glTF colours are linear) and the opacity.

The extension object says ``kernel: "ellipse"``, ``colorSpace: "srgb_rec709_display"`` (what 3DGS training
fits: display-referred sRGB), ``projection: "perspective"``, ``sortingMethod: "cameraDistance"``. The extension
is listed as used, not required, so any glTF viewer opens the file.

Axes: glTF is right-handed with ``+y`` up (and ``+z`` the asset's front); the pipeline's world has ``-y`` up
(OpenCV axes). Everything is turned half a turn about ``x``: positions ``(x, -y, -z)``, rotations
premultiplied by that turn, and the SH coefficients changed to match (a half turn about ``x`` only flips the
sign of the basis functions odd in ``y`` and ``z`` together: ``SH_SIGNS``), so the supporting plane the
pipeline levelled (``pipeline/upright.py``) is horizontal with ``+y`` up, as Blender, three.js and Babylon
expect.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.export import atomic_write_path

F32 = NDArray[np.float32]
EXTENSION = "KHR_gaussian_splatting"
SH_C0 = 0.28209479177387814
MAX_SH_DEGREE = 3
FLOAT = 5126
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
POINTS = 0
# Per SH coefficient in 3DGS order (DC, then y z x, then xy yz (3z^2-1) xz (x^2-y^2), then the seven cubics): the
# sign its basis function takes under (x, y, z) -> (x, -y, -z).
SH_SIGNS = np.array([1, -1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=np.float32)
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


def to_y_up(means: NDArray[np.floating], quats: NDArray[np.floating],
            sh: NDArray[np.floating]) -> tuple[F32, F32, F32]:
    """The pipeline's ``-y``-up gaussians turned half a turn about ``x``: positions, unit w-x-y-z quaternions
    (zero or broken ones become the identity) and SH coefficients in glTF's ``+y``-up frame."""
    p = np.asarray(means, dtype=np.float32) * np.array([1.0, -1.0, -1.0], dtype=np.float32)
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    q = np.where(ok, q / np.where(ok, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    w, x, y, z = q.T
    turned = np.stack([-x, w, -z, y], axis=1)  # (0, 1, 0, 0) * q, Hamilton product
    s = np.asarray(sh, dtype=np.float32) * SH_SIGNS[: sh.shape[1], None]
    return p, turned.astype(np.float32), s.astype(np.float32)


def _srgb_to_linear(c: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), dtype=np.float64)


class GlbBuffer:
    """The binary chunk, and the accessors and buffer views pointing into it (``FLOAT`` attributes, or
    ``UNSIGNED_INT`` triangle indices with ``indices=True``)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.length = 0
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, values: NDArray[Any], kind: str, *, bounds: bool = False, indices: bool = False) -> int:
        data = np.ascontiguousarray(values, dtype="<u4" if indices else "<f4").tobytes()
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data),
                                "target": ELEMENT_ARRAY_BUFFER if indices else ARRAY_BUFFER}
        self.views.append(view)
        pad = -len(data) % 4
        self.parts.append(data + b"\0" * pad)
        self.length += len(data) + pad
        accessor: dict[str, Any] = {"bufferView": len(self.views) - 1,
                                    "componentType": UNSIGNED_INT if indices else FLOAT,
                                    "count": int(values.size if indices else values.shape[0]), "type": kind}
        if bounds:
            accessor["min"] = values.min(axis=0).astype(float).tolist()
            accessor["max"] = values.max(axis=0).astype(float).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def gltf_document(means: NDArray[np.floating], log_scales: NDArray[np.floating], quats: NDArray[np.floating],
                  opacity_logits: NDArray[np.floating], sh: NDArray[np.floating],
                  sh_degree: int) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON and its binary buffer for N gaussians in the pipeline's frame (see the module doc)."""
    n = means.shape[0]
    p, q, s = to_y_up(np.nan_to_num(np.asarray(means, np.float64)), quats, sh[:, : (sh_degree + 1) ** 2])
    logit = np.nan_to_num(np.asarray(opacity_logits, dtype=np.float64).reshape(n), nan=-np.inf)
    opacity = np.exp(-np.logaddexp(0.0, -logit))
    buf = GlbBuffer()
    attributes = {"POSITION": buf.add(p, "VEC3", bounds=True),
                  f"{EXTENSION}:ROTATION": buf.add(q[:, [1, 2, 3, 0]], "VEC4"),
                  f"{EXTENSION}:SCALE": buf.add(np.exp(np.asarray(log_scales, np.float64)).astype(np.float32), "VEC3"),
                  f"{EXTENSION}:OPACITY": buf.add(opacity.astype(np.float32), "SCALAR")}
    k = 0
    for degree in range(sh_degree + 1):
        for coef in range(2 * degree + 1):
            attributes[f"{EXTENSION}:SH_DEGREE_{degree}_COEF_{coef}"] = buf.add(s[:, k, :], "VEC3")
            k += 1
    diffuse = _srgb_to_linear(np.clip(0.5 + SH_C0 * np.asarray(s[:, 0, :], np.float64), 0.0, 1.0))
    attributes["COLOR_0"] = buf.add(np.column_stack([diffuse, opacity]).astype(np.float32), "VEC4")
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "vidscene"},
        "extensionsUsed": [EXTENSION],
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": "gaussians"}],
        "meshes": [{"primitives": [{"attributes": attributes, "mode": POINTS, "extensions": {EXTENSION: {
            "kernel": "ellipse", "colorSpace": "srgb_rec709_display", "projection": "perspective",
            "sortingMethod": "cameraDistance"}}}]}],
        "buffers": [{"byteLength": buf.length}], "bufferViews": buf.views, "accessors": buf.accessors,
    }
    return doc, b"".join(buf.parts)


def glb_bytes(doc: dict[str, Any], binary: bytes) -> bytes:
    """The GLB container: 12-byte header, the JSON chunk padded with spaces, the binary chunk with zeros."""
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<III", _GLB_MAGIC, 2, total) + struct.pack("<II", len(text), _JSON_CHUNK) + text
            + struct.pack("<II", len(binary), _BIN_CHUNK) + binary)


def write_gltf(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
               quats: NDArray[np.floating], opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], *,
               sh_degree: int | None = None) -> None:
    """Write N gaussians (raw training parameters, ``sh`` (N, K, 3) DC first) as a ``.glb``, atomically.

    ``sh_degree`` (default: all of ``sh``, at most 3) is how many SH bands to keep. Raises ``ValueError`` for no
    gaussians or an impossible degree, ``StorageFullError`` when the disk is (or would be) full.
    """
    most = min(round(float(np.sqrt(sh.shape[1]))) - 1, MAX_SH_DEGREE)
    degree = most if sh_degree is None else sh_degree
    if not 0 <= degree <= most:
        raise ValueError(f"a glTF of these gaussians can hold SH degree 0 to {most}, not {degree}")
    if means.shape[0] == 0:
        raise ValueError("a glTF of gaussians needs at least one gaussian")
    data = glb_bytes(*gltf_document(means, log_scales, quats, opacity_logits, sh, degree))
    with atomic_write_path(path, expected_bytes=len(data)) as tmp:
        tmp.write_bytes(data)
