"""Datasets as in-memory tensors, a registry by name, and one entry point `load_dataset`.

Inputs are kept in their natural range (images in [0, 1]); standardization statistics are
computed on the training split and applied inside the model (see models.Classifier), so that
corruptions (zeroing) and attacks act on natural inputs.

Image datasets read from files (CIFAR, CINIC-10, Restricted ImageNet) are stored compactly, as the
files' uint8 pixel values k, which stand for the inputs k/255 (a quarter of float32's memory: the
training path keeps them so on the device, Algorithm 1's replicas included). `as_inputs` turns such a
batch into the float inputs, bit for bit what float32(k) / 255 gives; `load_dataset(..., compact=False)`
(the default) hands out float inputs, so that code outside the training loop never sees pixels.

The registry holds each built-in dataset as a reference `module:function` and a description, so
listing them imports no data code. Beside the built-ins, a dataset name may be an installed plug-in
(entry-point group `badminima.datasets`) or a reference `package.module:loader` (badminima.plugins).

The contract of a loader (built-in or plug-in):

    loader(data_dir: pathlib.Path | None, **options) -> Dataset

`data_dir` is `--data-dir` (None when not given), `options` the spec's `data.options`. The loader
returns the whole dataset as a `Dataset`: float32 inputs in their natural range (or uint8 pixels k,
which stand for k / 255, see as_inputs), int64 labels in
[0, num_classes), the train and test splits with the same example shape, and `kind` ("points",
"signal" or "image"), which decides augmentation (see Dataset's fields) and which corruptions apply.
It must be deterministic: every process (pool and Ray workers too) calls it again. `data.train_size`
subsetting is applied afterwards, seeded by the run's seed.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import plugins
from ..errors import BadInput

if TYPE_CHECKING:  # torch is imported where tensors are made, not to list names
    import torch

KINDS = ("points", "signal", "image")


PIXEL_SCALE = 255.0  # a uint8 pixel value k stands for the input k / PIXEL_SCALE


def as_inputs(x: torch.Tensor) -> torch.Tensor:
    """The float32 inputs of `x`: uint8 pixels k become k / 255 (as numpy's float32(k) / 255.0 does:
    one correctly rounded division), float inputs are returned as they are."""
    import torch

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
        import torch

        return self.x_train.dtype == torch.uint8

    def standardization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (per-feature for points) mean and (unbiased) std of the training split, in float32.

        For uint8 pixels they are computed exactly from integer sums and rounded once, whereas float inputs
        go through float32 reductions: the two differ by float32 rounding (about 1e-7 relative)."""
        import torch

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
    import torch

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


# name -> (reference of the loader, needs --data-dir, description)
BUILTIN = {
    "gaussians2d": ("badminima.data.builtin:gaussians2d", False, "paper 000's toy: two 2-D Gaussians (means (+-2, 0), "
                    "std 0.5), 50 train / 500 test points per class"),
    "mnist1d": ("badminima.data.builtin:mnist1d", False, "MNIST-1D generated by the mnist1d package (default "
                "arguments): 4000 train / 1000 test signals of length 40"),
    "digits": ("badminima.data.builtin:digits", False,
               "scikit-learn's 8x8 digits in [0, 1], seeded 75/25 train/test split (1348 / 449)"),
    "cifar10": ("badminima.data.cifar:cifar10", True,
                "CIFAR-10, official binary version, from --data-dir (cifar-10-batches-bin/)"),
    "cifar100": ("badminima.data.cifar:cifar100", True,
                 "CIFAR-100 (fine labels), official binary version, from --data-dir (cifar-100-binary/)"),
    "cinic10": ("badminima.data.folders:cinic10", True,
                "CINIC-10 from --data-dir: train/ and test/ with one folder per class (32x32 PNG)"),
    "restricted-imagenet": ("badminima.data.folders:restricted_imagenet", True, "Restricted ImageNet (9 super-classes, "
                            "Tsipras et al. 2018) from --data-dir: train/ and val/, resized to 32x32"),
}


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    target: str | Callable  # a reference "module:function" (imported on first use) or the loader itself
    needs_dir: bool
    description: str

    @property
    def load(self) -> Callable:
        """The loader: load(data_dir, **options) -> Dataset."""
        return plugins.resolve(self.target, f"dataset {self.name!r}") if isinstance(self.target, str) else self.target


DATASETS: dict[str, DatasetEntry] = {name: DatasetEntry(name, ref, needs_dir, text)
                                     for name, (ref, needs_dir, text) in BUILTIN.items()}


def register_dataset(name: str, description: str, needs_dir: bool = False):
    """Decorator registering a loader in this process (plug-ins that workers must see use a reference
    or an entry point instead: a spawned worker does not run the code that registered it)."""
    def wrap(fn):
        DATASETS[name] = DatasetEntry(name, fn, needs_dir, description)
        return fn
    return wrap


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered and installed (entry-point) dataset names matching a glob pattern."""
    return sorted(n for n in {*DATASETS, *plugins.entry_points("dataset")} if fnmatch.fnmatch(n, pattern))


def get_dataset(name: str) -> DatasetEntry:
    """The registry entry of a built-in name, an installed plug-in or a `package.module:loader` reference."""
    if name in DATASETS:
        return DATASETS[name]
    reference = plugins.reference_of("dataset", name, {})
    if reference is None:
        raise BadInput(f"unknown dataset {name!r} (known: {', '.join(list_datasets())}; "
                       f"or your own as package.module:loader)")
    return DatasetEntry(name, reference, False, f"plug-in {reference}")


def check_dataset_name(name: str) -> None:
    """BadInput unless `name` resolves to a callable loader (a plug-in is imported here)."""
    get_dataset(name).load  # noqa: B018


def load_dataset(name: str, data_dir: str | Path | None = None, train_size: int | None = None,
                 seed: int = 0, options: dict | None = None, compact: bool = False) -> Dataset:
    """Load a dataset; `train_size` keeps a seeded random subset of the training split. `compact`: keep
    image files' uint8 pixels (see as_inputs) instead of float inputs."""
    import torch

    entry = get_dataset(name)
    load = entry.load
    if entry.needs_dir:
        if data_dir is None:
            raise BadInput(f"dataset {name!r} is read from disk: pass --data-dir DIR")
        if not Path(data_dir).is_dir():
            raise BadInput(f"data directory not found: {data_dir}")
    data_dir = None if data_dir is None else Path(data_dir)
    plugins.check_arguments(load, f"dataset {name!r}", data_dir, **(options or {}))
    data = check_dataset(load(data_dir, **(options or {})), name)
    if train_size is not None:
        if train_size > len(data.y_train):
            raise BadInput(f"train size {train_size} exceeds the {len(data.y_train)} training examples of {name}")
        keep = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))[:train_size]
        data.x_train, data.y_train = data.x_train[keep], data.y_train[keep]
    return data if compact else data.floats()


def check_dataset(data, name: str) -> Dataset:
    """BadInput unless a loader's result keeps the contract (types, shapes, label range, kind)."""
    import torch

    where = f"dataset {name!r}"
    if not isinstance(data, Dataset):
        raise BadInput(f"{where}: the loader returned {type(data).__name__}, not a badminima.data.Dataset")
    if data.kind not in KINDS:
        raise BadInput(f"{where}: kind must be one of {', '.join(KINDS)}, got {data.kind!r}")
    if not isinstance(data.num_classes, int) or data.num_classes < 2:
        raise BadInput(f"{where}: num_classes must be an integer >= 2, got {data.num_classes!r}")
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if not (isinstance(x, torch.Tensor) and (x.is_floating_point() or x.dtype == torch.uint8)
                and isinstance(y, torch.Tensor)
                and y.dtype == torch.int64 and y.dim() == 1 and len(x) == len(y) and len(y) > 0):
            raise BadInput(f"{where}: x_{split} must be a float (or uint8 pixel) tensor and y_{split} a 1-D int64 tensor of the same "
                           f"length (> 0)")
        if int(y.min()) < 0 or int(y.max()) >= data.num_classes:
            raise BadInput(f"{where}: y_{split} holds labels outside [0, {data.num_classes})")
    if data.x_train.shape[1:] != data.x_test.shape[1:]:
        raise BadInput(f"{where}: train and test examples differ in shape "
                       f"({tuple(data.x_train.shape[1:])} vs {tuple(data.x_test.shape[1:])})")
    return data
