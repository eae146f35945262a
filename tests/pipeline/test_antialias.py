"""Mip-Splatting's 3D filter (gaussian/antialias.py): its size from the cameras, its forward and backward through
both CPU renderers against the dense reference, and the baked export drawing what training saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.gaussians import random_scene, rel_err, rotation, tilted_camera
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.antialias import FILTER_VARIANCE, apply_filter, bake, filter_variances
from vidscene.pipeline.gaussian.model import FILTER_KEY, Gaussians
from vidscene.pipeline.gaussian.render import render


def _camera(z: float = 0.0, fx: float = 50.0) -> Camera:
    return Camera(width=40, height=30, fx=fx, fy=fx, cx=20.0, cy=15.0, R=np.eye(3), t=np.array([0.0, 0.0, z]))


def test_filter_follows_the_finest_sampling_rate_over_the_cameras() -> None:
    # A camera at the origin and one 1 unit closer with half the focal length (rates f/z: 50/2 and 25/1).
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -5.0], [50.0, 0.0, 2.0]])
    variances = filter_variances(means, [_camera(), _camera(z=-1.0, fx=25.0)])
    expected = FILTER_VARIANCE / (50.0 / 2.0) ** 2
    assert float(variances[0]) == pytest.approx(expected, rel=1e-5)
    # Behind both cameras, or far off-screen: nobody measured it, so it gets the largest filter of the others.
    assert float(variances[1]) == float(variances.max()) == float(variances[0])
    assert float(variances[2]) == float(variances[0])
    assert torch.equal(filter_variances(means[1:2], [_camera()]), torch.zeros(1))  # nothing seen: no filter


def test_filter_keeps_the_integral_and_bounds_thin_axes() -> None:
    scales = torch.tensor([[1e-4, 0.5, 0.5], [0.3, 0.3, 0.3]], dtype=torch.float64)
    opacities = torch.tensor([0.9, 0.6], dtype=torch.float64)
    v = torch.tensor([1e-4, 1e-4], dtype=torch.float64)
    s, o = apply_filter(scales, opacities, v)
    assert float(s[0, 0]) >= 1e-2  # a sheet thinner than the filter gets the filter's thickness
    # opacity x volume (the gaussian's integral up to a constant) is unchanged
    torch.testing.assert_close(o * s.prod(dim=1), opacities * scales.prod(dim=1))
    # a gaussian far wider than the filter barely changes
    assert abs(float(o[1]) - 0.6) < 1e-3 and abs(float(s[1, 0]) - 0.3) < 1e-3


def _filtered(params: tuple[torch.Tensor, ...], variances: torch.Tensor) -> tuple[torch.Tensor, ...]:
    means, quats, log_scales, logits, sh = params
    scales, opacities = apply_filter(torch.exp(log_scales), torch.sigmoid(logits), variances)
    return means, quats, scales, opacities, sh


def _render_grads(params: tuple[torch.Tensor, ...], variances: torch.Tensor, camera: Camera,
                  backend: str) -> dict[str, torch.Tensor]:
    leaves = tuple(p.detach().clone().requires_grad_() for p in params)
    out = render(*_filtered(leaves, variances), camera, sh_degree=3, background=torch.tensor([0.2, 0.4, 0.6]),
                 backend=backend)  # type: ignore[arg-type]  # a Backend literal from the test's list
    weights = torch.rand(out.image.shape, generator=torch.Generator().manual_seed(5)).to(out.image.dtype)
    ((out.image * weights).sum() + out.alpha.sum()).backward()
    names = ("means", "quats", "log_scales", "logits", "sh")
    grads = {name: p.grad for name, p in zip(names, leaves, strict=True) if p.grad is not None}
    return {"image": out.image.detach(), **grads}


def test_filtered_render_and_gradients_match_the_reference_on_the_cpu_path() -> None:
    camera = tilted_camera()
    means, quats, scales, opacities, sh = random_scene(200, seed=3, camera=camera)
    # Thin gaussians, so that the filter matters: one axis shrunk 50x.
    scales = scales.detach() * torch.tensor([1.0, 1.0, 0.02])
    params = (means.detach(), quats.detach(), torch.log(scales), torch.logit(opacities.detach()), sh.detach())
    variances = filter_variances(means, [camera, tilted_camera(60, 50)]) * 50.0  # a strong filter
    cpu = _render_grads(params, variances, camera, "cpu")
    ref = _render_grads(params, variances, camera, "reference")
    unfiltered = render(means.detach(), quats.detach(), scales, opacities.detach(), sh.detach(), camera,
                        sh_degree=3, background=torch.tensor([0.2, 0.4, 0.6]), backend="reference")
    assert (unfiltered.image - ref["image"]).abs().max() > 0.05  # the filter changes the picture
    assert (cpu["image"] - ref["image"]).abs().max() < 1e-4
    for name in ("means", "quats", "log_scales", "logits", "sh"):
        assert ref[name].abs().max() > 0, name
        assert rel_err(cpu[name], ref[name]) < 1e-3, name


def test_filter_gradients_pass_gradcheck_through_the_reference_in_float64() -> None:
    camera = Camera(width=10, height=8, fx=12.0, fy=12.0, cx=5.2, cy=3.9, R=rotation(0.05, 0.1, 0.0),
                    t=np.array([0.05, 0.0, 0.1]))
    means = torch.tensor([[0.0, 0.0, 2.0], [0.4, -0.2, 2.5], [-0.3, 0.25, 3.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0.1, 0.2, -0.1], [0.8, -0.3, 0.1, 0.4], [0.5, 0.5, -0.2, 0.1]],
                         dtype=torch.float64)
    log_scales = torch.log(torch.tensor([[0.25, 0.01, 0.2], [0.2, 0.3, 0.02], [0.3, 0.25, 0.2]],
                                        dtype=torch.float64))
    logits = torch.logit(torch.tensor([0.7, 0.5, 0.8], dtype=torch.float64))
    sh = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    variances = torch.tensor([4e-3, 1e-3, 2e-3], dtype=torch.float64)
    weights = torch.rand(3, 8, 10, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def fn(m: torch.Tensor, q: torch.Tensor, s: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        mm, qq, ss, oo, cc = _filtered((m, q, s, o, sh), variances)
        out = render(mm, qq, ss, oo, cc, camera, sh_degree=1, background=torch.zeros(3, dtype=torch.float64),
                     backend="reference")
        pixels = torch.cat([out.image, out.alpha[..., None]], dim=-1)
        return (weights * pixels).sum(dim=(1, 2, 3))

    inputs = tuple(t.clone().requires_grad_() for t in (means, quats, log_scales, logits))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_baked_export_renders_what_training_rendered() -> None:
    """Viewers know nothing of the filter: the exported scales and opacities must carry it."""
    camera = tilted_camera()
    means, quats, scales, opacities, sh = random_scene(150, seed=4, camera=camera)
    state = {"means": means.detach(), "quats": quats.detach(), "scales": torch.log(scales.detach() * 0.05),
             "opacities": torch.logit(opacities.detach()), "sh0": sh.detach()[:, :1], "shN": sh.detach()[:, 1:]}
    state[FILTER_KEY] = filter_variances(means, [camera]) * 20.0
    g = Gaussians.from_state(state)
    assert torch.equal(Gaussians.from_state(g.state()).filter_variances, g.filter_variances)  # checkpoints keep it
    arrays = g.exported()
    log_s, logit_o = bake(state["scales"], state["opacities"], state[FILTER_KEY])
    np.testing.assert_allclose(arrays["scales"], log_s.numpy(), rtol=1e-6)
    np.testing.assert_allclose(arrays["opacities"], logit_o.numpy(), rtol=1e-5, atol=1e-6)
    bg = torch.zeros(3)
    trained = render(*g.activated(), camera, sh_degree=3, background=bg, backend="cpu").image
    viewer = render(torch.from_numpy(arrays["means"]), torch.from_numpy(arrays["quats"]),
                    torch.exp(torch.from_numpy(arrays["scales"])), torch.sigmoid(torch.from_numpy(arrays["opacities"])),
                    sh.detach(), camera, sh_degree=3, background=bg, backend="cpu").image
    raw = render(means.detach(), quats.detach(), scales.detach() * 0.05, opacities.detach(), sh.detach(), camera,
                 sh_degree=3, background=bg, backend="cpu").image
    assert (trained - viewer).abs().max() < 1e-4
    assert (trained - raw).abs().max() > 0.05
