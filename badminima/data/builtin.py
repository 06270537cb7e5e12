"""Built-in datasets that need no files: the toy 2-D Gaussians, MNIST-1D and scikit-learn's digits."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from . import Dataset

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def _copy(d: Dataset) -> Dataset:
    return Dataset(**{**d.__dict__, "x_train": d.x_train.clone(), "y_train": d.y_train.clone()})


@lru_cache(maxsize=None)
def _gaussians2d() -> Dataset:
    g = torch.Generator().manual_seed(2020)
    centers = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])

    def sample(n_per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(2).repeat_interleave(n_per_class)
        return centers[y] + 0.5 * torch.randn(2 * n_per_class, 2, generator=g), y

    x_train, y_train = sample(50)
    x_test, y_test = sample(500)
    return Dataset("gaussians2d", x_train, y_train, x_test, y_test, 2, "points", noise_std=0.25)


def gaussians2d(_dir=None) -> Dataset:
    return _copy(_gaussians2d())


@lru_cache(maxsize=None)
def _mnist1d() -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())  # the package's default arguments: 4000 train / 1000 test

    def x(a):
        return torch.tensor(np.asarray(a), dtype=torch.float32).unsqueeze(1)

    def y(a):
        return torch.tensor(np.asarray(a), dtype=torch.int64)

    return Dataset("mnist1d", x(raw["x"]), y(raw["y"]), x(raw["x_test"]), y(raw["y_test"]), 10, "signal",
                   crop_padding=4)


def mnist1d(_dir=None) -> Dataset:
    return _copy(_mnist1d())


@lru_cache(maxsize=None)
def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(raw.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    n_test = int(round(DIGITS_TEST_FRACTION * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, "image", crop_padding=1)


def digits(_dir=None) -> Dataset:
    return _copy(_digits())
