"""3D Gaussian Splatting: differentiable rendering (this package's ``render``), training and densification."""

from vidscene.pipeline.gaussian.render import cuda_available, precompile_cpu, render
from vidscene.pipeline.gaussian.render_output import RenderOutput

__all__ = ["RenderOutput", "cuda_available", "precompile_cpu", "render"]
