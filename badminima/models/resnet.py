"""ResNet18 and ResNet50 for 32x32 inputs (He et al. 2016, CIFAR variant: 3x3 stem, no max-pool), and the CIFAR
ResNets of depth 6n + 2 (ResNet-56 and its family; below).
Published sizes for 10 classes: ResNet18 about 11.2M parameters, ResNet50 about 23.5M.

`resnet18-noskip` is ResNet18 without skip connections (paper 004, Tables 4 and 10, "ResNet-18 w/o skip
connections"): each block is its residual branch alone, relu(bn2(conv2(relu(bn1(conv1(x)))))), and the 1x1
projection shortcuts go with the skips (11,000,138 parameters for 10 classes: ResNet18's 11,173,962 less the
three projections' 173,824). The paper describes it no further and the authors' code does not hold it."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..errors import BadInput


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


# ---- the CIFAR ResNets of He et al. 2016, section 4.2 (ResNet-20/32/44/56/110) --------------------------------
# Depth 6n + 2: a 3x3 stem of 16 filters, three stages of n basic blocks with 16, 32, 64 filters on maps of
# 32, 16, 8 (the first block of stages 2 and 3 has stride 2), global average pooling and a linear layer.
# Shortcuts are identities, zero-padded in channels and subsampled where the shape changes ("option A",
# parameter-free, which He et al. use on CIFAR). ResNet-56 (n = 9): 853 018 parameters for 10 classes,
# He et al.'s Table 6 "0.85M". Paper 001 (Figure 2c-d, appendix L.3) trains ResNet-56 "as detailed in He et al.".

class _PaddedIdentity(nn.Module):
    """Option A shortcut: x subsampled by `stride` and zero-padded from `cin` to `cout` channels."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.extra, self.stride = cout - cin, stride

    def forward(self, x):
        x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)]
        return F.pad(x, (0, 0) * (x.dim() - 2) + (0, self.extra))


class _CifarBlock(nn.Module):
    def __init__(self, conv, norm, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, cout, 3, stride, 1, bias=False), norm(cout)
        self.conv2, self.bn2 = conv(cout, cout, 3, 1, 1, bias=False), norm(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else _PaddedIdentity(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, input_shape, num_classes: int, width: int, blocks_per_stage: int):
        super().__init__()
        cin, *spatial = input_shape
        conv = {1: nn.Conv1d, 2: nn.Conv2d}.get(len(spatial))
        norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}.get(len(spatial))
        if conv is None:
            raise BadInput(f"the CIFAR ResNet takes signals (C, L) or images (C, H, W), got {tuple(input_shape)}")
        self.conv1, self.bn1 = conv(cin, width, 3, 1, 1, bias=False), norm(width)
        blocks, channels = [], width
        for stage in range(3):
            for j in range(blocks_per_stage):
                cout = width * 2 ** stage
                blocks.append(_CifarBlock(conv, norm, channels, cout, 2 if stage > 0 and j == 0 else 1))
                channels = cout
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(out.mean(dim=tuple(range(2, out.dim()))))


def resnet56(input_shape, num_classes, width: int = 16, depth: int = 56) -> nn.Module:
    """He et al.'s CIFAR ResNet of depth 6n + 2 (default 56, n = 9), `width` stem channels (default 16);
    1-D convolutions for signals."""
    if depth < 8 or (depth - 2) % 6:
        raise BadInput(f"the CIFAR ResNet's depth is 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
    return CifarResNet(input_shape, num_classes, width, (depth - 2) // 6)
