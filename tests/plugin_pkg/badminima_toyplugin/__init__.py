"""A tiny badminima plug-in used by tests/test_plugins.py: a dataset loader and a model factory.

Installed by the tests as a distribution (a dist-info with entry_points.txt) in a temporary folder on
the Python path; entry points: dataset `rings`, model `tinynet`.
"""
import math
import os

import torch
from torch import nn

from badminima.data import Dataset


def _note(what: str) -> None:
    """Append `what pid` to the file named by $TOYPLUGIN_LOG: which processes called the plug-in."""
    path = os.environ.get("TOYPLUGIN_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{what} {os.getpid()}\n")


def rings(data_dir, n_per_class: int = 40, classes: int = 3, gap: float = 1.0) -> Dataset:
    """`classes` concentric rings of radius gap * (1 + class) in 2-D, n_per_class points each per split,
    at evenly spaced angles (test angles offset by half a step): deterministic, no randomness."""
    _note("rings")

    def split(offset: float):
        k = torch.arange(n_per_class, dtype=torch.float64)
        angle = 2 * math.pi * (k + offset) / n_per_class
        xs, ys = [], []
        for c in range(classes):
            radius = gap * (1 + c)
            xs.append(torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1))
            ys.append(torch.full((n_per_class,), c, dtype=torch.int64))
        return torch.cat(xs).float(), torch.cat(ys)

    x_train, y_train = split(0.0)
    x_test, y_test = split(0.5)
    return Dataset("rings", x_train, y_train, x_test, y_test, classes, "points", noise_std=0.05)


class TinyNet(nn.Module):
    def __init__(self, d_in: int, num_classes: int, width: int, activation: str):
        super().__init__()
        self.hidden = nn.Linear(d_in, width)
        self.act = {"relu": nn.ReLU(), "tanh": nn.Tanh()}[activation]
        self.out = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(x.flatten(1))))


def tinynet(input_shape, num_classes, width: int = 32, activation: str = "relu") -> nn.Module:
    """One hidden layer of `width` units with `activation` (relu or tanh)."""
    _note("tinynet")
    return TinyNet(math.prod(input_shape), num_classes, width, activation)


def bad_labels(data_dir) -> Dataset:
    """Breaks the loader contract: a label equal to num_classes."""
    data = rings(data_dir)
    data.y_test[0] = data.num_classes
    return data


def not_a_module(input_shape, num_classes):
    return "a string"
