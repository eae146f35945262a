"""The numba kernels of the CPU renderer, one module per kernel family.

``tiles`` bins gaussians into 16x16 tiles and composites them (forward and backward), ``projection`` maps 3D
gaussians to screen-space ellipses, ``sh_colors`` evaluates view-dependent colour; ``jit`` holds the compile
options all three share. The torch autograd glue that calls them is ``gaussian.raster_cpu``.

A kernel calls only kernels of its own module: numba's on-disk cache (``cache=True``) is invalidated when the
kernel's own source file changes, not when a jitted function it calls from another file does.
"""
