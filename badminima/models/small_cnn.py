"""Small convolutional nets sized for the built-in data: MNIST-1D signals and 8x8 digits."""
from __future__ import annotations

from torch import nn


def cnn1d(input_shape, num_classes, width: int = 32, depth: int = 3) -> nn.Module:
    channels, length = input_shape
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv1d(channels, width, 5, stride=2, padding=2), nn.ReLU()]
        channels, length = width, (length - 1) // 2 + 1
    layers += [nn.Flatten(), nn.Linear(channels * length, num_classes)]
    return nn.Sequential(*layers)


def cnn2d(input_shape, num_classes, width: int = 32, depth: int = 2) -> nn.Module:
    channels, height, wide = input_shape
    layers: list[nn.Module] = []
    for i in range(depth):
        stride = 2 if i > 0 else 1
        layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1), nn.ReLU()]
        channels = width
        height, wide = (height - 1) // stride + 1, (wide - 1) // stride + 1
    layers += [nn.Flatten(), nn.Linear(channels * height * wide, num_classes)]
    return nn.Sequential(*layers)
