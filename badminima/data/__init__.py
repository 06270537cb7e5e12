"""Datasets as in-memory tensors, a registry by name, and one entry point `load_dataset`.

Inputs are kept in their natural range (images in [0, 1]); standardization statistics are
computed on the training split and applied inside the model (see models.Classifier), so that
corruptions (zeroing) and attacks act on natural inputs.

Image datasets read from files (CIFAR, CINIC-10, Restricted ImageNet) are stored compactly, as the
files' uint8 pixel values k, which stand for the inputs k/255 (a quarter of float32's memory: the
training path keeps them so on the device, Algorithm 1's replicas included). `as_inputs` turns such a
batch into the float inputs, bit for bit what float32(k) / 255 gives; `load_dataset(..., compact=False)`
(the default) hands out float inputs, so that code outside the training loop never sees pixels.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..errors import BadInput


PIXEL_SCALE = 255.0  # a uint8 pixel value k stands for the input k / PIXEL_SCALE


def as_inputs(x: torch.Tensor) -> torch.Tensor:
    """The float32 inputs of `x`: uint8 pixels k become k / 255 (as numpy's float32(k) / 255.0 does:
    one correctly rounded division), float inputs are returned as they are."""
    return x.float().div_(PIXEL_SCALE) if x.dtype == torch.uint8 else x


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor  # (n, C, L) signals, (n, C, H, W) images, (n, d) points; float32, or uint8 pixels (compact)
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

    @property
    def compact(self) -> bool:
        """Whether the inputs are stored as uint8 pixels (see as_inputs)."""
        return self.x_train.dtype == torch.uint8

    def standardization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (per-feature for points) mean and (unbiased) std of the training split, in float32.

        For uint8 pixels they are computed exactly from integer sums and rounded once, whereas float inputs
        go through float32 reductions: the two differ by float32 rounding (about 1e-7 relative)."""
        x = self.x_train
        dims = [0] if self.kind == "points" else [0] + list(range(2, x.dim()))
        if x.dtype == torch.uint8:
            return pixel_standardization(x, dims)
        mean, std = x.mean(dim=dims), x.std(dim=dims).clamp_min(1e-8)
        return mean, std

    def floats(self) -> "Dataset":
        """This dataset with float inputs (itself if they are float already)."""
        if not self.compact:
            return self
        return replace(self, x_train=as_inputs(self.x_train), x_test=as_inputs(self.x_test))


def pixel_standardization(x: torch.Tensor, dims: list[int], chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean and unbiased std of the inputs x / 255 of uint8 pixels x: integer sums of k
    and k^2 (in chunks, so no float copy of the whole set is made), then one division in Python's exact
    integers and floats."""
    keep = [d for d in range(x.dim()) if d not in dims]
    s1 = torch.zeros([x.shape[d] for d in keep], dtype=torch.int64, device=x.device)
    s2 = torch.zeros_like(s1)
    for i in range(0, x.shape[0], chunk):
        part = x[i:i + chunk].to(torch.int64)
        s1 += part.sum(dim=dims)
        s2 += (part * part).sum(dim=dims)
    m = x.numel() // s1.numel()
    means, stds = [], []
    for a, b in zip(s1.flatten().tolist(), s2.flatten().tolist()):
        means.append(a / (m * PIXEL_SCALE))
        variance = (m * b - a * a) / (m * max(m - 1, 1))  # exact integers up to the one division
        stds.append(max(math.sqrt(variance) / PIXEL_SCALE, 1e-8))
    shape = s1.shape
    return torch.tensor(means, dtype=torch.float32).view(shape), torch.tensor(stds, dtype=torch.float32).view(shape)


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
                 seed: int = 0, compact: bool = False) -> Dataset:
    """Load a registered dataset; `train_size` keeps a seeded random subset of the training split.
    `compact`: keep image files' uint8 pixels (see as_inputs) instead of float inputs."""
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
    return data if compact else data.floats()


from . import builtin, cifar, folders  # noqa: E402,F401  (registration)
