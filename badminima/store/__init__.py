"""Where results live: one SQLite database per output directory, and safetensors checkpoints."""
from .checkpoints import CorruptCheckpoint, load_checkpoint, save_checkpoint  # noqa: F401
from .db import Store  # noqa: F401
