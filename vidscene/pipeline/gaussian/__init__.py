"""3D Gaussian Splatting: the ``gaussian`` training mode (rendering, training, densification, export).

Importing the package costs nothing: ``method`` (the mode's contract) and ``config`` are light, and the
modules that need torch are imported by whoever uses them.
"""
