"""Projection kernels: 3D gaussians to screen-space ellipses (means, conics, depths, extents) and back.

The PyTorch version in project.py is the specification; on 2 busy cores its ~100 small autograd ops cost
20-100 ms per iteration at 20k gaussians, these fused per-gaussian kernels well under 1 ms. They compute in
float64 internally (per-gaussian work is cheap) and agree with the specification to ~1e-6. 3x3 matrices are
row-major 9-tuples so that nothing is allocated per gaussian.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange
from numpy.typing import NDArray

from vidscene.pipeline.gaussian.cpu_kernels.jit import parallel_strict_kernel, serial_strict_kernel
from vidscene.pipeline.gaussian.project import ALPHA_MIN, EPS2D, FAR_PLANE, NEAR_PLANE


@serial_strict_kernel
def _mat3_mul(a: Any, b: Any) -> Any:
    return (a[0] * b[0] + a[1] * b[3] + a[2] * b[6], a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
            a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
            a[3] * b[0] + a[4] * b[3] + a[5] * b[6], a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
            a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
            a[6] * b[0] + a[7] * b[3] + a[8] * b[6], a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
            a[6] * b[2] + a[7] * b[5] + a[8] * b[8])


@serial_strict_kernel
def _mat3_t(a: Any) -> Any:
    return (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])


@serial_strict_kernel
def _quat_rotmat(qw: float, qx: float, qy: float, qz: float) -> Any:
    """Rotation matrix of a *normalised* quaternion (w, x, y, z)."""
    return (1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qw * qz), 2.0 * (qx * qz + qw * qy),
            2.0 * (qx * qy + qw * qz), 1.0 - 2.0 * (qx * qx + qz * qz), 2.0 * (qy * qz - qw * qx),
            2.0 * (qx * qz - qw * qy), 2.0 * (qy * qz + qw * qx), 1.0 - 2.0 * (qx * qx + qy * qy))


@serial_strict_kernel
def _project_one(means: Any, quats: Any, scales: Any, i: int, cam: Any) -> Any:
    """Shared forward math of one gaussian; returns every intermediate the backward pass needs."""
    # cam = (R row-major x9, t x3, fx, fy, cx, cy, lim_x_neg, lim_x_pos, lim_y_neg, lim_y_pos)
    rc = (cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8])
    fx, fy = cam[12], cam[13]
    mx, my, mz = float(means[i, 0]), float(means[i, 1]), float(means[i, 2])
    x = rc[0] * mx + rc[1] * my + rc[2] * mz + cam[9]
    y = rc[3] * mx + rc[4] * my + rc[5] * mz + cam[10]
    z = rc[6] * mx + rc[7] * my + rc[8] * mz + cam[11]
    in_depth = z > NEAR_PLANE and z < FAR_PLANE
    zs = z if in_depth else 1.0
    u = x / zs
    v = y / zs
    uc = min(max(u, -cam[16]), cam[17])
    vc = min(max(v, -cam[18]), cam[19])
    qw, qx, qy, qz = float(quats[i, 0]), float(quats[i, 1]), float(quats[i, 2]), float(quats[i, 3])
    qn = max(np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), 1e-12)
    rot = _quat_rotmat(qw / qn, qx / qn, qy / qn, qz / qn)
    s0, s1, s2 = float(scales[i, 0]), float(scales[i, 1]), float(scales[i, 2])
    m = (rot[0] * s0, rot[1] * s1, rot[2] * s2, rot[3] * s0, rot[4] * s1, rot[5] * s2,
         rot[6] * s0, rot[7] * s1, rot[8] * s2)
    cov = _mat3_mul(m, _mat3_t(m))
    cov_c = _mat3_mul(_mat3_mul(rc, cov), _mat3_t(rc))
    j00 = fx / zs
    j02 = -fx * uc / zs
    j11 = fy / zs
    j12 = -fy * vc / zs
    # T = J cov_c (2x3), cov2d = T Jᵀ
    t0 = j00 * cov_c[0] + j02 * cov_c[6]
    t1 = j00 * cov_c[1] + j02 * cov_c[7]
    t2 = j00 * cov_c[2] + j02 * cov_c[8]
    t4 = j11 * cov_c[4] + j12 * cov_c[7]
    t5 = j11 * cov_c[5] + j12 * cov_c[8]
    a = t0 * j00 + t2 * j02 + EPS2D
    b = t1 * j11 + t2 * j12
    c = t4 * j11 + t5 * j12 + EPS2D
    det = a * c - b * b
    return (x, y, z, in_depth, zs, u, v, uc, vc, rot, (s0, s1, s2), m, cov_c, j00, j02, j11, j12, a, b, c, det,
            (qw, qx, qy, qz, qn))


@parallel_strict_kernel
def project_forward(means: NDArray[np.float32], quats: NDArray[np.float32], scales: NDArray[np.float32],
                     opacities: NDArray[np.float32], cam: Any, width: int, height: int,
                     out_means2d: NDArray[np.float32], out_conics: NDArray[np.float32],
                     out_depths: NDArray[np.float32], out_extents: NDArray[np.float32],
                     out_radii: NDArray[np.int32]) -> None:
    for i in prange(means.shape[0]):
        (_x, _y, z, in_depth, _zs, u, v, _uc, _vc, _rot, _sc, _m, _cov_c, _j00, _j02, _j11, _j12, a, b, c, det,
         _q) = _project_one(means, quats, scales, i, cam)
        m2x = cam[12] * u + cam[14]
        m2y = cam[13] * v + cam[15]
        out_means2d[i, 0] = m2x
        out_means2d[i, 1] = m2y
        out_depths[i] = z
        ok_det = det > 1e-12
        ds = det if ok_det else 1.0
        out_conics[i, 0] = c / ds
        out_conics[i, 1] = -b / ds
        out_conics[i, 2] = a / ds
        op = float(opacities[i])
        ext = np.sqrt(2.0 * np.log(max(op * 255.0, 1.0)))
        ex = ext * np.sqrt(max(a, 0.0))
        ey = ext * np.sqrt(max(c, 0.0))
        out_extents[i, 0] = ex
        out_extents[i, 1] = ey
        on_screen = m2x + ex > 0.0 and m2x - ex < width and m2y + ey > 0.0 and m2y - ey < height
        visible = (in_depth and ok_det and op >= ALPHA_MIN and on_screen and np.isfinite(m2x)
                   and np.isfinite(m2y))
        out_radii[i] = int(np.ceil(max(ex, ey))) if visible else 0


# One function on purpose: a fused numba kernel, one pass per gaussian in nopython mode.
@parallel_strict_kernel
def project_backward(means: NDArray[np.float32], quats: NDArray[np.float32], scales: NDArray[np.float32],
                      radii: NDArray[np.int32], cam: Any, g_means2d: NDArray[np.float32],
                      g_conics: NDArray[np.float32], g_depths: NDArray[np.float32],
                      out_g_means: NDArray[np.float32], out_g_quats: NDArray[np.float32],
                      out_g_scales: NDArray[np.float32]) -> None:
    for i in prange(means.shape[0]):
        if radii[i] <= 0:
            # Culled gaussians receive no gradient from the rasterizer; skip them entirely.
            continue
        (_x, _y, _z, _in_depth, zs, u, v, uc, vc, rot, sc, m, cov_c, j00, j02, j11, j12, a, b, c, det,
         q) = _project_one(means, quats, scales, i, cam)
        rc = (cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8])
        fx, fy = cam[12], cam[13]
        # conic (A, B, C) = (c, -b, a) / det  ->  d/d(a, b, c) of the 2D covariance
        gA, gB, gC = float(g_conics[i, 0]), float(g_conics[i, 1]), float(g_conics[i, 2])
        inv2 = 1.0 / (det * det)
        ga = (-c * c * gA + b * c * gB - b * b * gC) * inv2
        gb = (2.0 * b * c * gA - (det + 2.0 * b * b) * gB + 2.0 * a * b * gC) * inv2
        gc = (-b * b * gA + a * b * gB - a * a * gC) * inv2
        # Symmetric gradient of cov2d = J cov_c Jᵀ: G = [[ga, gb/2], [gb/2, gc]].
        g01 = 0.5 * gb
        # dL/dcov_c = Jᵀ G J, with J = [[j00, 0, j02], [0, j11, j12]]
        h00 = j00 * ga * j00
        h01 = j00 * g01 * j11
        h02 = j00 * (ga * j02 + g01 * j12)
        h11 = j11 * gc * j11
        h12 = j11 * (g01 * j02 + gc * j12)
        h22 = j02 * (ga * j02 + g01 * j12) + j12 * (g01 * j02 + gc * j12)
        g_cov_c = (h00, h01, h02, h01, h11, h12, h02, h12, h22)
        # dL/dJ = 2 G J cov_c (only the four non-constant entries of J matter)
        gj = (ga * j00, g01 * j11, ga * j02 + g01 * j12, g01 * j00, gc * j11, g01 * j02 + gc * j12)
        jc00 = 2.0 * (gj[0] * cov_c[0] + gj[1] * cov_c[3] + gj[2] * cov_c[6])
        jc02 = 2.0 * (gj[0] * cov_c[2] + gj[1] * cov_c[5] + gj[2] * cov_c[8])
        jc11 = 2.0 * (gj[3] * cov_c[1] + gj[4] * cov_c[4] + gj[5] * cov_c[7])
        jc12 = 2.0 * (gj[3] * cov_c[2] + gj[4] * cov_c[5] + gj[5] * cov_c[8])
        # J and the screen position as functions of the camera-space point (x, y, z)
        gx = 0.0
        gy = 0.0
        gz = float(g_depths[i])
        gm0, gm1 = float(g_means2d[i, 0]), float(g_means2d[i, 1])
        iz = 1.0 / zs
        gx += gm0 * fx * iz
        gy += gm1 * fy * iz
        gz -= (gm0 * fx * u + gm1 * fy * v) * iz
        gz -= (jc00 * fx + jc11 * fy) * iz * iz
        if -cam[16] < u < cam[17]:
            # j02 = -fx x / z²
            gx -= jc02 * fx * iz * iz
            gz += jc02 * 2.0 * fx * u * iz * iz
        else:
            gz += jc02 * fx * uc * iz * iz
        if -cam[18] < v < cam[19]:
            gy -= jc12 * fy * iz * iz
            gz += jc12 * 2.0 * fy * v * iz * iz
        else:
            gz += jc12 * fy * vc * iz * iz
        out_g_means[i, 0] = rc[0] * gx + rc[3] * gy + rc[6] * gz
        out_g_means[i, 1] = rc[1] * gx + rc[4] * gy + rc[7] * gz
        out_g_means[i, 2] = rc[2] * gx + rc[5] * gy + rc[8] * gz
        # cov_c = Rc cov Rcᵀ -> dL/dcov = Rcᵀ dL/dcov_c Rc; cov = M Mᵀ -> dL/dM = 2 dL/dcov M
        g_cov = _mat3_mul(_mat3_mul(_mat3_t(rc), g_cov_c), rc)
        g_m = _mat3_mul(g_cov, m)
        s0, s1, s2 = sc
        out_g_scales[i, 0] = 2.0 * (g_m[0] * rot[0] + g_m[3] * rot[3] + g_m[6] * rot[6])
        out_g_scales[i, 1] = 2.0 * (g_m[1] * rot[1] + g_m[4] * rot[4] + g_m[7] * rot[7])
        out_g_scales[i, 2] = 2.0 * (g_m[2] * rot[2] + g_m[5] * rot[5] + g_m[8] * rot[8])
        gr = (2.0 * g_m[0] * s0, 2.0 * g_m[1] * s1, 2.0 * g_m[2] * s2, 2.0 * g_m[3] * s0, 2.0 * g_m[4] * s1,
              2.0 * g_m[5] * s2, 2.0 * g_m[6] * s0, 2.0 * g_m[7] * s1, 2.0 * g_m[8] * s2)
        qw_raw, qx_raw, qy_raw, qz_raw, qn = q
        w, qx, qy, qz = qw_raw / qn, qx_raw / qn, qy_raw / qn, qz_raw / qn
        dw = 2.0 * (-qz * gr[1] + qy * gr[2] + qz * gr[3] - qx * gr[5] - qy * gr[6] + qx * gr[7])
        dx = 2.0 * (qy * gr[1] + qz * gr[2] + qy * gr[3] - 2.0 * qx * gr[4] - w * gr[5] + qz * gr[6]
                    + w * gr[7] - 2.0 * qx * gr[8])
        dy = 2.0 * (-2.0 * qy * gr[0] + qx * gr[1] + w * gr[2] + qx * gr[3] + qz * gr[5] - w * gr[6]
                    + qz * gr[7] - 2.0 * qy * gr[8])
        dz = 2.0 * (-2.0 * qz * gr[0] - w * gr[1] + qx * gr[2] + w * gr[3] - 2.0 * qz * gr[4] + qy * gr[5]
                    + qx * gr[6] + qy * gr[7])
        # Through the normalisation q / |q|: remove the radial component and divide by |q|.
        dot = w * dw + qx * dx + qy * dy + qz * dz
        out_g_quats[i, 0] = (dw - w * dot) / qn
        out_g_quats[i, 1] = (dx - qx * dot) / qn
        out_g_quats[i, 2] = (dy - qy * dot) / qn
        out_g_quats[i, 3] = (dz - qz * dot) / qn
