"""vidscene: turn a video into a 3D scene (3D Gaussian Splatting or TensoRF), served over HTTP."""

__version__ = "0.1.0"
