"""ResNet18 and ResNet50 for 32x32 inputs (He et al. 2016, CIFAR variant: 3x3 stem, no max-pool).
Published sizes for 10 classes: ResNet18 about 11.2M parameters, ResNet50 about 23.5M.

`resnet18-noskip` is ResNet18 without skip connections (paper 004, Tables 4 and 10, "ResNet-18 w/o skip
connections"): each block is its residual branch alone, relu(bn2(conv2(relu(bn1(conv1(x)))))), and the 1x1
projection shortcuts go with the skips (11,000,138 parameters for 10 classes: ResNet18's 11,173,962 less the
three projections' 173,824). The paper describes it no further and the authors' code does not hold it."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PlainBlock(BasicBlock):
    """A BasicBlock without its skip connection (and so without a projection shortcut)."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__(cin, planes, stride)
        del self.shortcut

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(cin, out, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    def __init__(self, block, blocks: list[int], in_channels: int, num_classes: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, cin = [], width
        for i, count in enumerate(blocks):
            planes = width * 2 ** i
            for j in range(count):
                stages.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet18(input_shape, num_classes, width: int = 64) -> nn.Module:
    return ResNet(BasicBlock, [2, 2, 2, 2], input_shape[0], num_classes, width)


def resnet18_noskip(input_shape, num_classes, width: int = 64) -> nn.Module:
    return ResNet(PlainBlock, [2, 2, 2, 2], input_shape[0], num_classes, width)


def resnet50(input_shape, num_classes, width: int = 64) -> nn.Module:
    return ResNet(Bottleneck, [3, 4, 6, 3], input_shape[0], num_classes, width)
