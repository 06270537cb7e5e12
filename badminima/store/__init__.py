"""Where results live: one SQLite database per output directory, and safetensors checkpoints."""
from .db import Store  # noqa: F401

CHECKPOINT_NAMES = ("CorruptCheckpoint", "load_checkpoint", "save_checkpoint")


def __getattr__(name: str):  # the checkpoint functions need torch: imported when first asked for, not by `list`
    if name in CHECKPOINT_NAMES:
        from . import checkpoints
        return getattr(checkpoints, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
