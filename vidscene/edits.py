"""Crop and clean: what an edit operation is, and which gaussians a list of them keeps.

An edit is a list of operations in the coordinates of the exported files (the positions a ``.ply`` or
``.splat`` holds), applied in order: ``keep_inside`` drops every gaussian outside its shape, ``delete_inside``
every gaussian inside it. Shapes are a box (``center``, ``half_size`` along its own axes, turned by
``rotation``, a unit quaternion ``[w, x, y, z]``) or a sphere (``center``, ``radius``).

Both the API (to refuse an edit that keeps nothing, from positions it reads cheaply) and the pipeline (to
write the edited files) need the same answer, so it lives here, below both. numpy is imported inside the
functions that compute, not at the top: the API imports this module at start for its parsing and constants,
and numpy's ~20 MiB resident would count against every API process before any edit is asked for
(tests/api/test_start_imports.py).
The API validates bodies with pydantic first; ``parse_operations`` is the one check for everything else
(stored rows, the command line), raising ``ValueError`` with a message that names the problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

OPS = ("keep_inside", "delete_inside")
SHAPES = ("box", "sphere")
MAX_OPERATIONS = 100
# Output types an edit leaves as they are: the checkpoint is the training state, not the exported scene; an
# edited scene serves their originals.
UNEDITED = ("model",)


@dataclass(frozen=True)
class Operation:
    op: str
    shape: str
    center: tuple[float, float, float]
    half_size: tuple[float, float, float] | None = None  # box
    radius: float | None = None  # sphere
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z (normalised)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "shape": self.shape, "center": list(self.center)}
        if self.shape == "box":
            out["half_size"] = list(self.half_size or ())
        else:
            out["radius"] = self.radius
        out["rotation"] = list(self.rotation)
        return out

    def inside(self, points: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Which of the (N, 3) ``points`` lie inside the shape (its surface included)."""
        import numpy as np

        local = np.asarray(points, dtype=np.float64) - np.asarray(self.center, dtype=np.float64)
        if self.shape == "sphere":
            radius = float(self.radius or 0.0)
            return np.asarray((local * local).sum(axis=1) <= radius * radius)
        # Into the box's own frame: the inverse rotation, R^T p, written as p @ R.
        local = local @ rotation_matrix(self.rotation)
        half = np.asarray(self.half_size, dtype=np.float64)
        return np.asarray(np.all(np.abs(local) <= half, axis=1))


def rotation_matrix(wxyz: Sequence[float]) -> NDArray[np.float64]:
    """The 3x3 matrix of a unit quaternion ``[w, x, y, z]``."""
    import numpy as np

    w, x, y, z = (float(v) for v in wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def keep_mask(points: NDArray[np.floating], operations: Sequence[Operation]) -> NDArray[np.bool_]:
    """Which gaussians (by their (N, 3) positions) the operations keep, applied in order."""
    import numpy as np

    keep = np.ones(len(points), dtype=bool)
    for operation in operations:
        inside = operation.inside(points)
        keep &= inside if operation.op == "keep_inside" else ~inside
    return keep


def _numbers(value: Any, length: int, name: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != length:
        raise ValueError(f"{name} must be a list of {length} numbers")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ValueError(f"{name} must hold finite numbers, not {item!r}")
        out.append(float(item))
    return tuple(out)


def parse_operation(raw: Mapping[str, Any], index: int | None = None) -> Operation:
    """One operation from its JSON form; ``ValueError`` naming the problem (``operations[i].field: ...``, or
    just the field without ``index``)."""
    where = f"operations[{index}]." if index is not None else ""
    op, shape = raw.get("op"), raw.get("shape")
    if op not in OPS:
        raise ValueError(f"{where}op: unknown operation {op!r} (one of {', '.join(OPS)})")
    if shape not in SHAPES:
        raise ValueError(f"{where}shape: unknown shape {shape!r} (one of {', '.join(SHAPES)})")
    center = _numbers(raw.get("center"), 3, f"{where}center")
    rotation = _numbers(raw.get("rotation", [1.0, 0.0, 0.0, 0.0]), 4, f"{where}rotation")
    norm = math.sqrt(sum(v * v for v in rotation))
    if norm < 1e-6:
        raise ValueError(f"{where}rotation: a quaternion of length 0 is no rotation")
    rotation = tuple(v / norm for v in rotation)
    if shape == "box":
        half = _numbers(raw.get("half_size"), 3, f"{where}half_size")
        if min(half) <= 0:
            raise ValueError(f"{where}half_size: every half size must be above 0")
        return Operation(op, shape, (center[0], center[1], center[2]), half_size=(half[0], half[1], half[2]),
                         rotation=(rotation[0], rotation[1], rotation[2], rotation[3]))
    radius = _numbers([raw.get("radius")], 1, f"{where}radius")[0]
    if radius <= 0:
        raise ValueError(f"{where}radius: must be above 0")
    return Operation(op, shape, (center[0], center[1], center[2]), radius=radius,
                     rotation=(rotation[0], rotation[1], rotation[2], rotation[3]))


def parse_operations(raw: Any) -> tuple[Operation, ...]:
    """The operations of an edit list's JSON form (1 to ``MAX_OPERATIONS``); ``ValueError`` otherwise."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError("operations: give at least one operation (DELETE restores the original)")
    if len(raw) > MAX_OPERATIONS:
        raise ValueError(f"operations: at most {MAX_OPERATIONS} operations")
    return tuple(parse_operation(item if isinstance(item, Mapping) else {}, i) for i, item in enumerate(raw))


# ---- positions of an exported file, read cheaply ---------------------------------------------------------

_SPLAT_RECORD = 32  # antimatter15 .splat: position is its first 12 bytes


def read_positions(path: Path) -> NDArray[np.float32] | None:
    """The (N, 3) positions of a ``.splat`` or a binary little-endian 3DGS ``.ply``, or None for another
    file: what the API reads to count what an edit keeps (a memory map, no decoding)."""
    import numpy as np

    name = path.name
    if name.endswith(".splat"):
        data = np.memmap(path, dtype=np.float32, mode="r")
        return np.asarray(data.reshape(-1, _SPLAT_RECORD // 4)[:, :3])
    if name.endswith(".ply") and not name.endswith(".compressed.ply"):
        return _ply_positions(path)
    return None


def _ply_positions(path: Path) -> NDArray[np.float32] | None:
    import numpy as np

    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    end = head.find(b"end_header\n")
    if end < 0 or b"format binary_little_endian" not in head[:end]:
        return None
    count, names = 0, []
    for line in head[:end].decode("ascii", "replace").splitlines():
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            count = int(parts[2])
        elif parts[:2] == ["property", "float"] and len(parts) == 3:
            names.append(parts[2])
        elif parts[:1] == ["property"]:
            return None  # only all-float vertex records are read here
    if names[:3] != ["x", "y", "z"]:
        return None
    data = np.memmap(path, dtype=np.float32, mode="r", offset=end + len(b"end_header\n"),
                     shape=(count, len(names)))
    return np.asarray(data[:, :3])
