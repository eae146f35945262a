"""The differentiable gaussian renderer: the numba CPU path against the dense PyTorch reference, and both
against values computed by hand."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch

from tests.support.gaussians import Params, random_scene, rel_err, rotation, tilted_camera
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.project import footprint_extent, project_gaussians
from vidscene.pipeline.gaussian.raster_cpu import project_cpu, sh_colors_cpu
from vidscene.pipeline.gaussian.render import Backend, precompile_cpu, render
from vidscene.pipeline.gaussian.sh import C0, C1, sh_to_rgb


def fresh(params: Params) -> Params:
    m, q, s, o, c = (p.detach().clone().requires_grad_() for p in params)
    return m, q, s, o, c


def render_and_backward(params: Params, camera: Camera, backend: Backend, background: torch.Tensor,
                        with_depth: bool = True, sh_degree: int = 3) -> dict[str, torch.Tensor]:
    params = fresh(params)
    bg = background.detach().clone().requires_grad_()
    out = render(*params, camera, sh_degree=sh_degree, background=bg, backend=backend, with_depth=with_depth)
    gen = torch.Generator().manual_seed(123)
    w_img = torch.rand(out.image.shape, generator=gen, dtype=torch.float64).to(out.image.dtype)
    w_alpha = torch.rand(out.alpha.shape, generator=gen, dtype=torch.float64).to(out.image.dtype)
    loss = (out.image * w_img).sum() + 0.5 * (out.alpha * w_alpha).sum()
    if out.depth is not None:
        loss = loss + 0.05 * out.depth.sum()
    loss.backward()
    names = ("means", "quats", "scales", "opacities", "sh")
    result = {f"grad_{name}": p.grad for name, p in zip(names, params, strict=True)}
    result.update(image=out.image.detach(), alpha=out.alpha.detach(), radii=out.radii,
                  grad_background=bg.grad, screen=out.screen_grad_norm())
    if out.depth is not None:
        result["depth"] = out.depth.detach()
    return {k: v for k, v in result.items() if v is not None}


@pytest.fixture(scope="module")
def cpu_vs_reference() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    camera = tilted_camera()
    params = random_scene(300, seed=1, camera=camera)
    background = torch.tensor([0.2, 0.5, 0.9])
    return (render_and_backward(params, camera, "cpu", background),
            render_and_backward(params, camera, "reference", background))


def test_cpu_forward_matches_reference(cpu_vs_reference: tuple[dict[str, torch.Tensor], ...]) -> None:
    cpu, ref = cpu_vs_reference
    assert ref["alpha"].max() > 0.99 and ref["alpha"].min() < 0.5  # the scene has both dense and empty parts
    assert torch.equal(cpu["radii"], ref["radii"])
    assert (cpu["radii"] == 0).sum() > 0 and (cpu["radii"] > 0).sum() > 100  # some culled, most visible
    assert (cpu["image"] - ref["image"]).abs().max() < 1e-4
    assert (cpu["alpha"] - ref["alpha"]).abs().max() < 1e-4
    # Depth is divided by alpha; compare where the surface is not almost transparent.
    solid = ref["alpha"] > 0.05
    assert ((cpu["depth"] - ref["depth"]).abs()[solid]).max() < 1e-3


@pytest.mark.parametrize("name", ["means", "quats", "scales", "opacities", "sh", "background"])
def test_cpu_gradients_match_reference(cpu_vs_reference: tuple[dict[str, torch.Tensor], ...], name: str) -> None:
    cpu, ref = cpu_vs_reference
    grad_cpu, grad_ref = cpu[f"grad_{name}"], ref[f"grad_{name}"]
    assert grad_ref.abs().max() > 0
    assert rel_err(grad_cpu, grad_ref) < 1e-3
    # Per gaussian too, so that one wrong gaussian cannot hide in the aggregate.
    if name != "background":
        per = (grad_cpu - grad_ref).reshape(grad_ref.shape[0], -1).norm(dim=1)
        scale = grad_ref.reshape(grad_ref.shape[0], -1).norm(dim=1).max()
        assert per.max() < 1e-3 * scale


def test_screen_space_gradient_matches_reference(cpu_vs_reference: tuple[dict[str, torch.Tensor], ...]) -> None:
    cpu, ref = cpu_vs_reference
    assert ref["screen"].max() > 0
    assert rel_err(cpu["screen"], ref["screen"]) < 1e-3
    culled = ref["radii"] == 0
    assert torch.all(cpu["screen"][culled] == 0)


def test_reference_gradients_pass_gradcheck_in_float64() -> None:
    """The reference is the specification, so its autograd graph is itself checked by finite differences."""
    camera = Camera(width=10, height=8, fx=12.0, fy=12.0, cx=5.2, cy=3.9, R=rotation(0.05, 0.1, 0.0),
                    t=np.array([0.05, 0.0, 0.1]))
    means = torch.tensor([[0.0, 0.0, 2.0], [0.4, -0.2, 2.5], [-0.3, 0.25, 3.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0.1, 0.2, -0.1], [0.8, -0.3, 0.1, 0.4], [0.5, 0.5, -0.2, 0.1]],
                         dtype=torch.float64)
    scales = torch.tensor([[0.25, 0.15, 0.2], [0.2, 0.3, 0.1], [0.3, 0.25, 0.2]], dtype=torch.float64)
    opacities = torch.tensor([0.7, 0.5, 0.8], dtype=torch.float64)
    sh = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    background = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)

    # Random projections of the image keep the number of backward passes gradcheck makes small.
    weights = torch.rand(4, 8, 10, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def fn(m: torch.Tensor, q: torch.Tensor, s: torch.Tensor, o: torch.Tensor, c: torch.Tensor,
           bg: torch.Tensor) -> torch.Tensor:
        out = render(m, q, s, o, c, camera, sh_degree=1, background=bg, backend="reference")
        pixels = torch.cat([out.image, out.alpha[..., None]], dim=-1)
        return (weights * pixels).sum(dim=(1, 2, 3))

    inputs = tuple(t.clone().requires_grad_() for t in (means, quats, scales, opacities, sh, background))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_single_gaussian_pixels_match_hand_computation() -> None:
    """An isotropic gaussian straight ahead: its footprint is a circle of variance (f s / z)² + 0.3 px²."""
    width, height, f, z, s, opacity = 32, 24, 40.0, 2.0, 0.05, 0.8
    camera = Camera(width=width, height=height, fx=f, fy=f, cx=16.0, cy=12.0, R=np.eye(3), t=np.zeros(3))
    sh = torch.zeros(1, 4, 3)
    sh[0, 0] = torch.tensor([0.6, -0.4, 0.2])
    sh[0, 2] = torch.tensor([0.3, 0.0, -0.1])  # degree-1 z basis: seen along +z, it adds C1 * 1 * coeff
    background = torch.tensor([0.1, 0.3, 0.5])
    args = (torch.tensor([[0.0, 0.0, z]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.full((1, 3), s),
            torch.tensor([opacity]), sh, camera)
    colour = C0 * sh[0, 0] + C1 * sh[0, 2] + 0.5
    var = (f * s / z) ** 2 + 0.3
    backends: tuple[Backend, ...] = ("cpu", "reference")
    for backend in backends:
        out = render(*args, sh_degree=1, background=background, backend=backend)
        for x, y in ((15, 11), (16, 12), (18, 11), (12, 14), (16, 19)):
            d2 = (x + 0.5 - 16.0) ** 2 + (y + 0.5 - 12.0) ** 2
            a = opacity * math.exp(-0.5 * d2 / var)
            expected = a * colour + (1 - a) * background if a >= 1 / 255 else background
            torch.testing.assert_close(out.image[y, x], expected, atol=2e-6, rtol=1e-5)
            assert out.alpha[y, x].item() == pytest.approx(a if a >= 1 / 255 else 0.0, abs=2e-6)
        assert footprint_extent(opacity) == pytest.approx(math.sqrt(2 * math.log(255 * opacity)))
        assert out.radii[0].item() == math.ceil(footprint_extent(opacity) * math.sqrt(var))


def test_saturated_stack_terminates_and_clamps_alpha() -> None:
    """Twenty opaque gaussians on one ray: alpha is clamped at 0.99 each and compositing stops below 1e-4."""
    camera = Camera(width=16, height=16, fx=20.0, fy=20.0, cx=8.0, cy=8.0, R=np.eye(3), t=np.zeros(3))
    n = 20
    means = torch.zeros(n, 3)
    means[:, 2] = torch.linspace(1.0, 3.0, n)
    sh = torch.zeros(n, 1, 3)
    sh[:, 0, 0] = torch.linspace(-1.0, 1.0, n)  # every layer a different red, so order matters
    params = (means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 0.5), torch.ones(n), sh)
    background = torch.tensor([0.0, 0.0, 1.0])
    cpu = render_and_backward(params, camera, "cpu", background, with_depth=False, sh_degree=0)
    ref = render_and_backward(params, camera, "reference", background, with_depth=False, sh_degree=0)
    # By hand, in float32 like the kernels: the nearest layers are clamped at 0.99, and compositing stops
    # before the layer that would take the transmittance below 1e-4.
    colours = (C0 * sh[:, 0] + 0.5).numpy().astype(np.float32)
    trans, expected = np.float32(1.0), background.numpy().astype(np.float32) * 0
    for layer in range(n):
        nxt = trans * (np.float32(1.0) - np.float32(0.99))
        if nxt < np.float32(1e-4):
            break
        expected = expected + np.float32(0.99) * trans * colours[layer]
        trans = nxt
    assert layer in (1, 2)
    np.testing.assert_allclose(ref["image"][8, 8].numpy(), expected + trans * background.numpy(), atol=1e-6)
    assert ref["alpha"][8, 8].item() == pytest.approx(1 - trans, abs=1e-7)
    assert (cpu["image"] - ref["image"]).abs().max() < 1e-5
    for name in ("means", "quats", "scales", "opacities", "sh", "background"):
        assert rel_err(cpu[f"grad_{name}"], ref[f"grad_{name}"]) < 1e-3, name


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_gaussians_behind_the_camera_are_culled(backend: Backend) -> None:
    camera = Camera(width=20, height=16, fx=20.0, fy=20.0, cx=10.0, cy=8.0, R=np.eye(3), t=np.zeros(3))
    means = torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 0.001], [0.0, 0.0, 3.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 3, requires_grad=True)
    scales = torch.full((3, 3), 0.5, requires_grad=True)
    opacities = torch.full((3,), 0.9, requires_grad=True)
    sh = torch.ones(3, 1, 3, requires_grad=True)
    out = render(means, quats, scales, opacities, sh, camera, sh_degree=0, background=torch.zeros(3),
                 backend=backend)
    assert out.radii.tolist()[:2] == [0, 0] and out.radii[2] > 0
    out.image.sum().backward()
    for p in (means, quats, scales, opacities):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert torch.all(p.grad[:2] == 0)
    # Only the gaussian in front contributes: rendering it alone gives the same image.
    alone = render(means[2:].detach(), quats[2:].detach(), scales[2:].detach(), opacities[2:].detach(),
                   sh[2:].detach(), camera, sh_degree=0, background=torch.zeros(3), backend=backend)
    torch.testing.assert_close(out.image.detach(), alone.image)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_empty_scene_renders_background(backend: Backend) -> None:
    camera = tilted_camera(20, 10)
    background = torch.tensor([0.25, 0.5, 0.75], requires_grad=True)
    out = render(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 16, 3),
                 camera, sh_degree=3, background=background, backend=backend, with_depth=True)
    assert out.image.shape == (10, 20, 3)
    assert torch.equal(out.image.detach(), background.detach().expand(10, 20, 3))
    assert torch.equal(out.alpha, torch.zeros(10, 20))
    assert out.depth is not None and torch.equal(out.depth, torch.zeros(10, 20))
    out.image.sum().backward()
    assert background.grad is not None
    torch.testing.assert_close(background.grad, torch.full((3,), 200.0))


def test_background_shows_through_in_proportion_to_transmittance() -> None:
    camera = tilted_camera()
    params = random_scene(150, seed=4, camera=camera)
    first, second = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 0.5, 0.25])
    a = render(*fresh(params), camera, sh_degree=3, background=first, backend="cpu")
    b = render(*fresh(params), camera, sh_degree=3, background=second, backend="cpu")
    transmittance = (1 - a.alpha.detach())[..., None]
    assert transmittance.min() < 0.1 and transmittance.max() > 0.5
    torch.testing.assert_close(b.image.detach() - a.image.detach(), transmittance * second, atol=1e-6, rtol=0)


def test_results_do_not_depend_on_the_thread_count() -> None:
    camera = tilted_camera(70, 50)
    params = random_scene(600, seed=7, camera=camera)
    background = torch.tensor([0.3, 0.3, 0.3])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = render_and_backward(params, camera, "cpu", background)
    finally:
        numba.set_num_threads(before)
    many = render_and_backward(params, camera, "cpu", background)
    assert torch.equal(one["image"], many["image"])
    for name in ("means", "quats", "scales", "opacities", "sh"):
        # Per-thread partial sums are added in a different order: equal up to float32 rounding.
        assert rel_err(one[f"grad_{name}"], many[f"grad_{name}"]) < 1e-5, name


def test_fused_projection_matches_pytorch_specification() -> None:
    """Many gaussians off to the sides (Jacobian clamp) and some behind the camera, float64 reference."""
    camera = tilted_camera(80, 60)
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(3000, 3, generator=gen, dtype=torch.float64) * torch.tensor([10.0, 8.0, 7.0]) \
        - torch.tensor([5.0, 4.0, 1.0])
    params = (means, torch.randn(3000, 4, generator=gen, dtype=torch.float64),
              torch.rand(3000, 3, generator=gen, dtype=torch.float64) * 0.4 + 0.01,
              torch.rand(3000, generator=gen, dtype=torch.float64))
    outs = []
    for fn in (project_gaussians, project_cpu):
        ps = [p.clone().requires_grad_() for p in params]
        proj = fn(ps[0], ps[1], ps[2], ps[3], camera)
        w = torch.Generator().manual_seed(1)
        vis = proj.visible
        loss = ((proj.means2d * torch.randn(3000, 2, generator=w, dtype=torch.float64))[vis].sum()
                + 300 * (proj.conics * torch.randn(3000, 3, generator=w, dtype=torch.float64))[vis].sum()
                + (proj.depths * torch.randn(3000, generator=w, dtype=torch.float64))[vis].sum())
        loss.backward()
        outs.append((proj, [p.grad for p in ps[:3]]))
    (spec, spec_grads), (fused, fused_grads) = outs
    assert torch.equal(spec.radii, fused.radii)
    vis = spec.visible
    assert 200 < int(vis.sum()) < 2900
    # Some visible gaussians project outside the image, where the Jacobian is clamped.
    outside = (spec.means2d[:, 0] < -0.3 * 40) | (spec.means2d[:, 0] > 80 + 0.3 * 40)
    assert int((outside & vis).sum()) > 5
    for name in ("means2d", "conics", "depths", "extents"):
        assert rel_err(getattr(fused, name)[vis], getattr(spec, name)[vis]) < 1e-5, name
    for grad_fused, grad_spec in zip(fused_grads, spec_grads, strict=True):
        assert grad_fused is not None and grad_spec is not None
        assert rel_err(grad_fused, grad_spec) < 1e-5


def test_screen_grad_norm_in_ndc_units() -> None:
    camera = tilted_camera(64, 32)
    params = random_scene(100, seed=2, camera=camera)
    out = render(*params, camera, sh_degree=3, background=torch.zeros(3), backend="cpu")
    assert torch.equal(out.screen_grad_norm(), torch.zeros(100))  # before backward
    out.image.sum().backward()
    grad = out.means2d.grad
    assert grad is not None
    torch.testing.assert_close(out.screen_grad_norm(), grad.norm(dim=1))
    torch.testing.assert_close(out.screen_grad_norm(ndc=True),
                               (grad * torch.tensor([32.0, 16.0])).norm(dim=1))


def test_float64_inputs_give_float64_outputs_on_the_cpu_path() -> None:
    camera = tilted_camera()
    params = random_scene(50, seed=3, camera=camera, dtype=torch.float64)
    out = render(*params, camera, sh_degree=3, background=torch.zeros(3, dtype=torch.float64), backend="cpu")
    assert out.image.dtype == torch.float64
    out.image.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float64 for p in params)


def test_bad_shapes_are_rejected() -> None:
    camera = tilted_camera()
    params = random_scene(5, seed=0, camera=camera)
    with pytest.raises(ValueError, match="quats"):
        render(params[0], params[1][:, :3], params[2], params[3], params[4], camera, sh_degree=3,
               background=torch.zeros(3))
    with pytest.raises(ValueError, match="sh"):
        render(params[0], params[1], params[2], params[3], params[4][:, :4], camera, sh_degree=3,
               background=torch.zeros(3))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_fused_sh_colours_match_pytorch_specification(degree: int) -> None:
    """Values and gradients of every band, including colours clamped at 0 (no gradient there)."""
    gen = torch.Generator().manual_seed(degree)
    means = torch.randn(500, 3, generator=gen, dtype=torch.float64) * 2.0
    sh = torch.randn(500, 16, 3, generator=gen, dtype=torch.float64)
    centre = np.array([0.3, -0.2, -1.5])
    weights = torch.randn(500, 3, generator=gen, dtype=torch.float64)
    results = []
    for fused in (False, True):
        m, c = means.clone().requires_grad_(), sh.clone().requires_grad_()
        colours = (sh_colors_cpu(c, m, centre, degree) if fused
                   else sh_to_rgb(c, m, torch.as_tensor(centre), degree))
        (colours * weights).sum().backward()
        results.append((colours.detach(), m.grad, c.grad))
    (spec, spec_gm, spec_gc), (mine, gm, gc) = results
    assert (spec == 0).any()  # some colours are clamped
    assert rel_err(mine, spec) < 1e-6
    assert gc is not None and spec_gc is not None and rel_err(gc, spec_gc) < 1e-6
    assert torch.all(gc[:, (degree + 1) ** 2:] == 0)
    assert gm is not None
    if degree == 0:
        assert torch.all(gm == 0)
    else:
        assert spec_gm is not None and rel_err(gm, spec_gm) < 1e-5


def test_fused_sh_colours_read_the_stored_pair_and_skip_culled_gaussians() -> None:
    """The trainer passes (sh0, shN) uncopied and the projection's visibility: same colours and gradients for
    the visible gaussians, zeros for the culled ones (no pixel reads them)."""
    gen = torch.Generator().manual_seed(7)
    means = torch.randn(300, 3, generator=gen) * 2.0
    sh = torch.randn(300, 16, 3, generator=gen)
    visible = torch.rand(300, generator=gen) > 0.3
    centre = np.array([0.1, 0.4, -2.0])
    weights = torch.randn(300, 3, generator=gen)
    m1, c1 = means.clone().requires_grad_(), sh.clone().requires_grad_()
    full = sh_colors_cpu(c1, m1, centre, 3)
    (full * weights).sum().backward()
    m2 = means.clone().requires_grad_()
    dc, rest = sh[:, :1].clone().requires_grad_(), sh[:, 1:].clone().requires_grad_()
    part = sh_colors_cpu((dc, rest), m2, centre, 3, visible)
    (part * weights).sum().backward()
    assert m1.grad is not None and c1.grad is not None and m2.grad is not None
    assert dc.grad is not None and rest.grad is not None
    assert torch.equal(part[visible], full[visible])
    assert torch.all(part[~visible] == 0)
    assert torch.equal(torch.cat([dc.grad, rest.grad], dim=1)[visible], c1.grad[visible])
    assert torch.equal(m2.grad[visible], m1.grad[visible])
    for grad in (dc.grad, rest.grad, m2.grad):
        assert torch.all(grad[~visible] == 0)


def test_precompile_cpu_renders_a_scene() -> None:
    assert precompile_cpu() > 0


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_non_finite_gaussians_are_culled(backend: Backend) -> None:
    """A diverged gaussian (NaN or infinite parameters) must not poison the image of the others."""
    camera = Camera(width=32, height=24, fx=30.0, fy=30.0, cx=16.0, cy=12.0, R=np.eye(3), t=np.zeros(3))
    nan, inf = float("nan"), float("inf")
    means = torch.tensor([[0.0, 0.0, 2.0], [nan, 0.0, 2.0], [0.0, 0.0, inf], [0.1, 0.1, 2.0]])
    scales = torch.full((4, 3), 0.1)
    scales[3, 0] = nan
    out = render(means, torch.tensor([[1.0, 0, 0, 0]] * 4), scales, torch.full((4,), 0.5), torch.zeros(4, 1, 3),
                 camera, sh_degree=0, background=torch.zeros(3), backend=backend)
    assert out.radii.tolist()[1:] == [0, 0, 0] and out.radii[0] > 0
    assert torch.isfinite(out.image).all() and out.alpha.max() > 0.4


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_tiles_left_out_show_the_background_and_send_no_gradient(backend: Backend) -> None:
    """A step under the pixel budget draws some rows of tiles: what it draws must be exactly the full render
    there, and the gaussians' gradients exactly those of the full render with the loss on the drawn pixels."""
    camera = tilted_camera(45, 37)  # 3 x 3 tiles, the last row and column partial
    params = random_scene(300, seed=3, camera=camera)
    background = torch.tensor([0.2, 0.5, 0.9])
    drawn_tiles = torch.tensor([[True] * 3, [False] * 3, [True] * 3])
    drawn = drawn_tiles.repeat_interleave(16, 0).repeat_interleave(16, 1)[:37, :45]
    weights = torch.rand((37, 45, 3), generator=torch.Generator().manual_seed(5))

    def grads(tiles: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        p = fresh(params)
        out = render(*p, camera, sh_degree=3, background=background, backend=backend, drawn_tiles=tiles)
        (out.image * weights * drawn[..., None]).sum().backward()
        return out.image.detach(), out.radii, [q.grad for q in p if q.grad is not None]

    full_image, full_radii, full_grads = grads(None)
    part_image, part_radii, part_grads = grads(drawn_tiles)
    assert torch.allclose(part_image[drawn], full_image[drawn], atol=1e-6)
    assert torch.equal(part_image[~drawn], background.expand(int((~drawn).sum()), 3))
    assert not torch.allclose(full_image[~drawn], part_image[~drawn])  # the left-out rows had gaussians
    assert len(part_grads) == 5
    for full, part in zip(full_grads, part_grads, strict=True):
        assert rel_err(part, full) < 1e-5
    # Gaussians seen only in the left-out row count as not drawn (densification averages over views that
    # drew a gaussian), and they are exactly ones the drawn pixels' loss sends nothing to.
    unseen = (full_radii > 0) & (part_radii == 0)
    assert int(unseen.sum()) > 0 and torch.equal(part_radii[~unseen], full_radii[~unseen])
    assert torch.all(full_grads[0][unseen] == 0)


def test_drawn_tiles_of_the_wrong_shape_are_refused() -> None:
    camera = tilted_camera(45, 37)
    params = random_scene(10, seed=3, camera=camera)
    with pytest.raises(ValueError, match="drawn_tiles"):
        render(*params, camera, sh_degree=0, background=torch.zeros(3), backend="cpu",
               drawn_tiles=torch.ones((2, 3), dtype=torch.bool))
