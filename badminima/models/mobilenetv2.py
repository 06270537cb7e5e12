"""MobileNetV2 (Sandler et al. 2018), the CIFAR variant that paper 004 trains (Tables 2, 3): the authors'
NormBias/models/mobilenetv2.py, itself kuangliu's pytorch-cifar model.

Differences from the ImageNet network: a stride-1 3x3 stem of 32 channels and stride 1 in the second stage
(32x32 inputs end at 4x4, not 1x1); every inverted-residual block keeps its 1x1 expansion convolution, even at
expansion 1; a block of stride 1 always has a residual, through a 1x1 convolution + batch norm when the channel
count changes. Stages (expansion t, channels c, blocks n, stride s): (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2),
(6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1); then a 1x1 convolution to 1280 channels, global
average pooling (the authors' 4x4 average pool on 32x32 inputs, any size here) and a linear layer. About 2.30M
parameters for 10 classes (2,296,922; tests/models/test_paper004_models.py derives it layer by layer).

`width` = the stem's channels (default 32); every other channel count scales by width / 32 (rounded, at least 1),
for small CPU-scale networks.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM, HEAD = 32, 1280


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = expansion * cin
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)  # depthwise
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
                         if stride == 1 and cin != cout else nn.Identity())

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = STEM):
        super().__init__()

        def scaled(c: int) -> int:
            return max(1, round(c * width / STEM))

        self.conv1 = nn.Conv2d(in_channels, scaled(STEM), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(scaled(STEM))
        blocks, cin = [], scaled(STEM)
        for expansion, channels, count, stride in STAGES:
            for j in range(count):
                blocks.append(InvertedResidual(cin, scaled(channels), expansion, stride if j == 0 else 1))
                cin = scaled(channels)
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(cin, scaled(HEAD), 1, bias=False)
        self.bn2 = nn.BatchNorm2d(scaled(HEAD))
        self.linear = nn.Linear(scaled(HEAD), num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def mobilenetv2(input_shape, num_classes, width: int = STEM) -> nn.Module:
    return MobileNetV2(input_shape[0], num_classes, width)
