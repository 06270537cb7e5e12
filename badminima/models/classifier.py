"""The wrapper every model shares: input standardization, then the architecture `net`."""
from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor, input_dims: int):
        super().__init__()
        self.net = net
        shape = (1, -1) + (1,) * (input_dims - 1)  # broadcast per channel (per feature for points)
        self.register_buffer("mean", mean.reshape(shape).clone())
        self.register_buffer("std", std.reshape(shape).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
