"""A model factory and a dataset loader of your own, usable by name as `my_plugin:wide_relu` and
`my_plugin:two_moons` when this folder is on the Python path (see README, "Your own model and data").

The contract (badminima.models and badminima.data):
  factory(input_shape, num_classes, **kwargs) -> torch.nn.Module mapping (N, *input_shape) to (N, num_classes) logits
  loader(data_dir, **options) -> badminima.data.Dataset (float32 inputs, int64 labels in [0, num_classes))
"""
import math

import torch
from torch import nn

from badminima.data import Dataset


def wide_relu(input_shape, num_classes, width: int = 64, depth: int = 1) -> nn.Module:
    """`depth` hidden ReLU layers of `width` units; `width` and `depth` come from the spec's model.width/depth."""
    layers, fan_in = [nn.Flatten()], math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, num_classes))


def two_moons(data_dir, n_train: int = 200, n_test: int = 400, noise: float = 0.1, seed: int = 0) -> Dataset:
    """scikit-learn's two interleaving half-circles; the keywords come from the spec's data.options."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_train + n_test, noise=noise, random_state=seed)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)
    return Dataset("two-moons", x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=2, kind="points",
                   noise_std=0.05)
