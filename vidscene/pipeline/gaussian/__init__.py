"""3D Gaussian Splatting: differentiable rendering (this package's ``render``), training and densification."""

from vidscene.pipeline.gaussian.render import RenderOutput, cuda_available, precompile_cpu, render

__all__ = ["RenderOutput", "cuda_available", "precompile_cpu", "render"]
