"""A triangle mesh with vertex colours from depth and colour images: TSDF fusion, marching cubes, simplification,
written as a binary glTF (``.glb``) that Blender, three.js and every glTF viewer open.

The views are what the model renders at the capture cameras (``gaussian/outputs.py``), so the mesh covers what
was filmed. Each view updates a truncated signed distance volume (Curless and Levoy 1996): a voxel in front of
a pixel's surface gets a positive distance, one just behind it a negative one, clipped to ``TRUNCATION_VOXELS``;
pixels the model leaves empty (opacity below ``EMPTY_ALPHA``) mark the voxels along their ray as empty, which
keeps floaters seen from one side only out of the mesh. Marching cubes (scikit-image) extracts the zero level
among the voxels some view observed; vertex clustering on a grid ``CLUSTER_VOXELS`` voxels wide then merges
nearby vertices (averaging positions and colours), which divides the vertex count by about four at no visible
cost at this resolution.

The ``.glb`` is in glTF's axes (``+y`` up: the pipeline's ``-y``-up world turned half a turn about ``x``, as
``export/gltf.py`` does for the splats), one primitive of ``TRIANGLES`` with ``POSITION``, ``NORMAL`` and
``COLOR_0`` (linear RGB: glTF vertex colours are linear) and ``UNSIGNED_INT`` indices, and no material: the
glTF default material shows the vertex colours (three.js, Blender's importer), and readers such as trimesh
keep them as vertex colours rather than a texture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.errors import PipelineError
from vidscene.pipeline.export import atomic_write_path
from vidscene.pipeline.export.gltf import GlbBuffer, glb_bytes

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

TRUNCATION_VOXELS = 3.0
SURFACE_ALPHA = 0.5  # a pixel at least this opaque has a surface at its rendered depth
EMPTY_ALPHA = 0.05  # ... at most this transparent sees nothing
CLUSTER_VOXELS = 2.0
TRIANGLES = 4
_Y_UP = np.array([1.0, -1.0, -1.0], dtype=np.float32)


class NoSurfaceError(PipelineError, ValueError):
    """Every view of the model is empty, so there is no surface to mesh: the model is too sparse, or an edit cut
    away all the capture cameras see. A user-facing failure (the job's message), not an internal error."""

    def __init__(self) -> None:
        super().__init__("No mesh could be made: no surface was seen, every view of the model from the capture "
                         "cameras is empty (an edit may have cut away what they saw).")


@dataclass(frozen=True)
class View:
    """One rendered view: ``depth`` (H, W) camera z, ``colour`` (H, W, 3) in 0..1, ``alpha`` (H, W)."""

    camera: Camera
    depth: F32
    colour: F32
    alpha: F32


@dataclass(frozen=True)
class Mesh:
    vertices: F32  # (V, 3) in the pipeline's world
    faces: NDArray[np.uint32]  # (F, 3)
    colours: F32  # (V, 3) in 0..1 (sRGB, as rendered)
    normals: F32  # (V, 3) unit


class Volume:
    """A TSDF voxel grid over ``[lo, lo + voxel * shape]`` with running weighted means of distance and colour."""

    def __init__(self, lo: NDArray[np.floating], hi: NDArray[np.floating], resolution: int) -> None:
        lo64, hi64 = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self.voxel = float((hi64 - lo64).max()) / resolution
        self.shape = tuple(int(v) for v in np.maximum(np.ceil((hi64 - lo64) / self.voxel), 2))
        self.lo = lo64
        self.tsdf = np.ones(self.shape, dtype=np.float32)
        self.weight = np.zeros(self.shape, dtype=np.float32)
        self.colour = np.zeros((*self.shape, 3), dtype=np.float32)
        axes = [self.lo[a] + (np.arange(self.shape[a], dtype=np.float64) + 0.5) * self.voxel for a in range(3)]
        grid = np.meshgrid(*axes, indexing="ij")
        self.centres = np.stack([g.ravel() for g in grid], axis=1).astype(np.float32)

    def integrate(self, view: View) -> None:
        """Fuse one view (module doc)."""
        cam = view.camera
        pc = self.centres @ cam.R.T.astype(np.float32) + cam.t.astype(np.float32)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.floor(pc[:, 0] / z * cam.fx + cam.cx).astype(np.int64)
            v = np.floor(pc[:, 1] / z * cam.fy + cam.cy).astype(np.int64)
        seen = (z > 1e-6) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        idx = np.nonzero(seen)[0]
        pix = v[idx] * cam.width + u[idx]
        alpha = view.alpha.ravel()[pix]
        depth = view.depth.ravel()[pix]
        trunc = TRUNCATION_VOXELS * self.voxel
        sdf = np.where(alpha >= SURFACE_ALPHA, depth - z[idx], np.where(alpha <= EMPTY_ALPHA, trunc, np.nan))
        use = np.isfinite(sdf) & (sdf > -trunc)
        idx, sdf, pix = idx[use], sdf[use], pix[use]
        d = np.clip(sdf / trunc, -1.0, 1.0).astype(np.float32)
        t, w = self.tsdf.reshape(-1), self.weight.reshape(-1)
        t[idx] = (t[idx] * w[idx] + d) / (w[idx] + 1.0)
        w[idx] += 1.0
        near = np.abs(sdf) < trunc  # only voxels near the surface take its colour
        ci = idx[near]
        c = self.colour.reshape(-1, 3)
        colours = view.colour.reshape(-1, 3)[pix[near]]
        c[ci] += (colours - c[ci]) / w[ci, None]

    def extract(self) -> Mesh:
        """Marching cubes at the zero level among observed voxels, vertex colours of the nearest voxel."""
        from skimage.measure import marching_cubes

        observed = self.weight > 0
        if not observed.any() or self.tsdf[observed].min() > 0 or self.tsdf[observed].max() < 0:
            raise NoSurfaceError()
        verts, faces, normals, _ = marching_cubes(self.tsdf, level=0.0, spacing=(self.voxel,) * 3, mask=observed)
        cell = np.clip(np.rint(verts / self.voxel).astype(np.int64), 0, np.array(self.shape) - 1)
        colours = self.colour[cell[:, 0], cell[:, 1], cell[:, 2]]
        world = (verts + self.lo + 0.5 * self.voxel).astype(np.float32)
        return Mesh(world, faces.astype(np.uint32), np.clip(colours, 0.0, 1.0).astype(np.float32),
                    normals.astype(np.float32))


def fuse(views: Iterable[View], lo: NDArray[np.floating], hi: NDArray[np.floating], resolution: int) -> Mesh:
    """The simplified mesh of ``views`` inside the box ``lo``..``hi``, ``resolution`` voxels on its long side."""
    volume = Volume(lo, hi, resolution)
    for view in views:
        volume.integrate(view)
    return simplify(volume.extract(), CLUSTER_VOXELS * volume.voxel)


def simplify(mesh: Mesh, cell: float) -> Mesh:
    """Vertex clustering: vertices in one ``cell``-sized grid cell become their mean; faces that collapse go."""
    keys = np.floor(mesh.vertices / cell).astype(np.int64)
    _, label, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    label = label.reshape(-1)

    def mean(values: F32) -> F32:
        out = np.zeros((len(counts), values.shape[1]), dtype=np.float64)
        np.add.at(out, label, values)
        return (out / counts[:, None]).astype(np.float32)

    faces = label[mesh.faces.astype(np.int64)]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = np.unique(faces[keep], axis=0)
    normals = mean(mesh.normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    # glTF wants unit normals: a cell whose normals cancel out (a thin sheet seen from both sides) gets "up".
    normals = np.where(length > 1e-6, normals / np.maximum(length, 1e-12), np.array([0.0, -1.0, 0.0]))
    return Mesh(mean(mesh.vertices), faces.astype(np.uint32), mean(mesh.colours), normals)


def _srgb_to_linear(c: F32) -> F32:
    return np.asarray(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), dtype=np.float32)


def mesh_document(mesh: Mesh) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON and binary buffer of ``mesh`` in glTF's ``+y``-up axes."""
    buf = GlbBuffer()
    attributes = {"POSITION": buf.add(mesh.vertices * _Y_UP, "VEC3", bounds=True),
                  "NORMAL": buf.add(mesh.normals * _Y_UP, "VEC3"),
                  "COLOR_0": buf.add(_srgb_to_linear(mesh.colours), "VEC3")}
    indices = buf.add(mesh.faces.reshape(-1), "SCALAR", indices=True)
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "vidscene"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": "surface"}],
        "meshes": [{"primitives": [{"attributes": attributes, "indices": indices, "mode": TRIANGLES}]}],
        "buffers": [{"byteLength": buf.length}], "bufferViews": buf.views, "accessors": buf.accessors,
    }
    return doc, b"".join(buf.parts)


def write_mesh_glb(path: Path, mesh: Mesh) -> None:
    """Write ``mesh`` as a ``.glb`` atomically; ``StorageFullError`` when the disk is (or would be) full."""
    data = glb_bytes(*mesh_document(mesh))
    with atomic_write_path(path, expected_bytes=len(data)) as tmp:
        tmp.write_bytes(data)
