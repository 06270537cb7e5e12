"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis 2016) for images, and the two variants of paper 004's
Figure 6: without batch normalization and without skip connections.

WRN-d-k: a 3x3 stem of 16 channels, three groups of N = (d - 4) / 6 pre-activation blocks
(BN-ReLU-conv3x3-BN-ReLU-conv3x3) of 16k, 32k and 64k channels (strides 1, 2, 2; a 1x1 convolution on the
shortcut where the shape changes), then BN-ReLU, global average pooling and a linear layer; no dropout.
`wrn-nobn` replaces every batch norm by the identity (its convolutions get biases); `wrn-noskip` drops every
shortcut (the block is its residual branch alone).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..errors import BadInput


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, batch_norm: bool, skip: bool):
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
        self.bn1, self.bn2 = norm(cin), norm(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not batch_norm)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not batch_norm)
        self.skip = skip
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=not batch_norm)
                         if skip and (stride != 1 or cin != cout) else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        residual = self.conv2(F.relu(self.bn2(self.conv1(out))))
        if not self.skip:
            return residual
        return residual + (self.shortcut(out) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, depth: int, widen: int, batch_norm: bool = True,
                 skip: bool = True):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise BadInput(f"a WideResNet's depth d must be 6N + 4 with N >= 1, got {depth}")
        blocks = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=not batch_norm)
        layers, cin = [], 16
        for i, channels in enumerate((16 * widen, 32 * widen, 64 * widen)):
            for j in range(blocks):
                layers.append(Block(cin, channels, 2 if (i > 0 and j == 0) else 1, batch_norm, skip))
                cin = channels
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin) if batch_norm else nn.Identity()
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _image_channels(input_shape) -> int:
    if len(input_shape) != 3:
        raise BadInput(f"a WideResNet needs images (channels, height, width), got input shape {tuple(input_shape)}")
    return input_shape[0]


def wrn(input_shape, num_classes, width: int = 1, depth: int = 16) -> nn.Module:
    return WideResNet(_image_channels(input_shape), num_classes, depth, width)


def wrn_nobn(input_shape, num_classes, width: int = 1, depth: int = 16) -> nn.Module:
    return WideResNet(_image_channels(input_shape), num_classes, depth, width, batch_norm=False)


def wrn_noskip(input_shape, num_classes, width: int = 1, depth: int = 16) -> nn.Module:
    return WideResNet(_image_channels(input_shape), num_classes, depth, width, skip=False)
