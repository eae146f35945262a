"""TensoRF (Chen et al. 2022, VM decomposition) training and export: the ``tensorf`` training mode."""
