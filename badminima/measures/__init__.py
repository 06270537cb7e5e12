"""Measures: pure functions of (model, data) for the quantities the papers study."""
from .distance import relative_distance, relative_distance_per_layer  # noqa: F401
