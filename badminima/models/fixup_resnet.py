"""ResNet-20 with Fixup initialization (Zhang, Dauphin & Ma, ICLR 2019): a CIFAR ResNet without batch
normalization, as paper 004 trains it (Tables 3 and 8, "ResNet-20 with Fixup initialization").

Architecture (He et al. 2016, CIFAR ResNet-6n+2; the authors' NormBias/models/resnet_FIXUP.py, from the Fixup
release): a 3x3 stem of `width` channels (16), three stages of n = (depth - 2) / 6 basic blocks (two 3x3
convolutions, no biases) of width, 2 width and 4 width channels, strides 1, 2, 2; where the shape changes the
shortcut subsamples (stride 2) and pads the new channels with zeros (He et al.'s option A: no parameters); global
average pooling and a linear layer. Fixup's scalars (section 3, rule 3): a bias before each convolution, the
linear layer and each ReLU, and a multiplier (initialized at 1) on each residual branch:
    block(x) = relu(conv2(relu(conv1(x + a1) + b1) + a2) * scale + b2 + shortcut(x + a1)).
ResNet-20 (depth 20, width 16) has 268,393 parameters for 10 classes (He et al. 2016, Table 6: 0.27M).

Fixup's initialization (section 3, rules 1-2), with L residual branches of m = 2 layers each:
- the last layer of each residual branch (conv2) and the classification layer (weight and bias) are 0;
- every other convolution is He's normal init N(0, 2 / (out_channels k^2)) (the Fixup release's fan-out form),
  and those inside a residual branch (conv1) are scaled by L^(-1 / (2m - 2)) = L^(-1/2);
- scalar biases 0, multipliers 1.
So at initialization every residual branch outputs 0 (a block is relu of its shortcut) and every logit is 0.
Choice: the stem gets He's init as the text says ("a standard method (e.g., He et al.)"); the Fixup release leaves
it at PyTorch's default. Not taken: the release's 10x lower learning rate for the scalars (an optimizer setting).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput


class FixupBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.stride, self.extra = stride, cout - cin

    def shortcut(self, x):
        """Subsample by the stride and pad the new channels with zeros (option A)."""
        x = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x

    def forward(self, x):
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return F.relu(out + self.shortcut(x + self.bias1a))


class FixupResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, depth: int, width: int):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise BadInput(f"a CIFAR ResNet's depth must be 6n + 2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(1))
        blocks, cin = [], width
        for i in range(3):
            for j in range(n):
                blocks.append(FixupBlock(cin, width * 2 ** i, 2 if (i > 0 and j == 0) else 1))
                cin = width * 2 ** i
        self.layers = nn.Sequential(*blocks)
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.linear = nn.Linear(cin, num_classes)
        fixup_init(self)

    def forward(self, x):
        out = self.layers(F.relu(self.conv1(x) + self.bias1))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1) + self.bias2)


def he_normal_fan_out(weight: torch.Tensor, scale: float = 1.0) -> None:
    """weight ~ N(0, scale^2 * 2 / (out_channels * kernel area))."""
    fan_out = weight.shape[0] * math.prod(weight.shape[2:])
    nn.init.normal_(weight, 0.0, scale * math.sqrt(2.0 / fan_out))


@torch.no_grad()
def fixup_init(net: FixupResNet) -> None:
    """Fixup's rules 1-2 (module docstring); draws from torch's default generator."""
    blocks = [m for m in net.modules() if isinstance(m, FixupBlock)]
    he_normal_fan_out(net.conv1.weight)
    for block in blocks:
        he_normal_fan_out(block.conv1.weight, len(blocks) ** -0.5)  # L^(-1/(2m-2)), m = 2
        block.conv2.weight.zero_()
    net.linear.weight.zero_()
    net.linear.bias.zero_()


def resnet20_fixup(input_shape, num_classes, width: int = 16, depth: int = 20) -> nn.Module:
    if len(input_shape) != 3:
        raise BadInput(f"resnet20-fixup needs images (channels, height, width), got input shape {tuple(input_shape)}")
    return FixupResNet(input_shape[0], num_classes, depth, width)
