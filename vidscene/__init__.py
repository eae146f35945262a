"""vidscene: turn a video into a 3D scene (3D Gaussian Splatting or TensoRF), served over HTTP."""

# pycolmap's wheel carries its own zlib; if it is loaded before the system's, Pillow's PNG writer later aborts
# the process with "free(): invalid pointer" (see tests/pipeline/test_sfm.py's import-order regression test).
# Loading zlib first, here, protects every entry point whatever it imports next.
import zlib  # noqa: F401

__version__ = "0.1.0"
