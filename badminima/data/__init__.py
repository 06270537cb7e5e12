"""Datasets as in-memory tensors, a registry by name, and one entry point `load_dataset`.

Inputs are kept in their natural range (images in [0, 1]); standardization statistics are
computed on the training split and applied inside the model (see models.Classifier), so that
corruptions (zeroing) and attacks act on natural inputs.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import BadInput


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor  # (n, C, L) signals, (n, C, H, W) images, (n, d) points; float32
    y_train: torch.Tensor  # int64 class indices
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    kind: str  # "points" | "signal" | "image"
    crop_padding: int = 0  # augmentation: random crop (shift) with this zero padding
    flip: bool = False  # augmentation: horizontal flip (only where it keeps the label)
    noise_std: float = 0.0  # augmentation of points: std of the Gaussian noise of each copy (natural units)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def standardization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (per-feature for points) mean and std of the training split."""
        x = self.x_train
        dims = [0] if self.kind == "points" else [0] + list(range(2, x.dim()))
        mean, std = x.mean(dim=dims), x.std(dim=dims).clamp_min(1e-8)
        return mean, std


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Callable[[Path | None], Dataset]
    needs_dir: bool
    description: str


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, needs_dir: bool = False):
    def wrap(fn):
        DATASETS[name] = DatasetEntry(name, fn, needs_dir, description)
        return fn
    return wrap


def list_datasets(pattern: str = "*") -> list[str]:
    return sorted(n for n in DATASETS if fnmatch.fnmatch(n, pattern))


def load_dataset(name: str, data_dir: str | Path | None = None, train_size: int | None = None,
                 seed: int = 0) -> Dataset:
    """Load a registered dataset; `train_size` keeps a seeded random subset of the training split."""
    if name not in DATASETS:
        raise BadInput(f"unknown dataset {name!r} (known: {', '.join(list_datasets())})")
    entry = DATASETS[name]
    if entry.needs_dir:
        if data_dir is None:
            raise BadInput(f"dataset {name!r} is read from disk: pass --data-dir DIR")
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise BadInput(f"data directory not found: {data_dir}")
    data = entry.load(data_dir)
    if train_size is not None:
        if train_size > len(data.y_train):
            raise BadInput(f"train size {train_size} exceeds the {len(data.y_train)} training examples of {name}")
        keep = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))[:train_size]
        data.x_train, data.y_train = data.x_train[keep], data.y_train[keep]
    return data


from . import builtin, cifar, folders  # noqa: E402,F401  (registration)
