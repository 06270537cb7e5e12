"""VGG16 for 32x32 inputs (Simonyan & Zisserman 2014) as used on CIFAR: 13 conv layers with batch
norm, 5 max-pools, one linear classifier (about 14.7M parameters for 10 classes)."""
from __future__ import annotations

from torch import nn


VGG16 = [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"]  # multiples of `width`


def vgg16(input_shape, num_classes, width: int = 64) -> nn.Module:
    channels, size = input_shape[0], input_shape[1]
    layers: list[nn.Module] = []
    for item in VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            size //= 2
        else:
            out = item * width
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
    layers += [nn.Flatten(), nn.Linear(channels * size * size, num_classes)]
    return nn.Sequential(*layers)
