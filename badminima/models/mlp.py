"""Fully connected ReLU networks."""
from __future__ import annotations

import math

from torch import nn

from . import register_model


@register_model("mlp", "fully connected ReLU net: `depth` hidden layers (default 2) of `width` units (default 512)")
def mlp(input_shape, num_classes, width: int = 512, depth: int = 2) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
