"""Training: the SGD loop (it only optimizes) and the callbacks that evaluate, stop, record and report."""
from .loop import EpochState, derive_seed, evaluate, lr_at, train_phase  # noqa: F401
