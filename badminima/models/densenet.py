"""DenseNet-40 (Huang et al. 2017): 3 dense blocks of 12 BN-ReLU-conv3x3 layers, growth rate 12,
no bottleneck, no compression, 16 stem channels; about 1.0M parameters for 10 classes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], dim=1)


class Transition(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cin, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, growth: int, layers_per_block: int):
        super().__init__()
        channels = 16
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
        for b in range(3):
            for _ in range(layers_per_block):
                blocks.append(DenseLayer(channels, growth))
                channels += growth
            if b < 2:
                blocks.append(Transition(channels))
        self.features = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.features(x)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def densenet40(input_shape, num_classes, width: int = 12, depth: int = 40) -> nn.Module:
    if (depth - 4) % 3:
        raise BadInput(f"densenet40: depth - 4 must be divisible by 3, got depth {depth}")
    return DenseNet(input_shape[0], num_classes, width, (depth - 4) // 3)
