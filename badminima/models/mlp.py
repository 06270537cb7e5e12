"""Fully connected ReLU networks."""
from __future__ import annotations

import math

from torch import nn


def mlp(input_shape, num_classes, width: int = 512, depth: int = 2) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
