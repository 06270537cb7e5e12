"""Paper 001's 3-layer ConvNet (appendix L.1.1; layer shapes from appendix B).

"A 3-layer convolutional ReLU network with the first two layers containing 24 filters of size 5 by 5;
the final layer is fully connected; only the first layer has biases. There is no pooling." Appendix B
gives stride 2 and padding 2 (32x32 CIFAR inputs -> 16x16 -> 8x8). The same net is built for 1-D
signals (mnist1d: kernel 5, 40 -> 20 -> 10) and for small images (digits: 8x8 -> 4x4 -> 2x2).
The first layer's bias stands for the paper's constant input dimension; every later layer is
bias-free, so the net is positively homogeneous in its later layers' weights (paper 001, eq. 1).
"""
from __future__ import annotations

from torch import nn

from ..errors import BadInput


def cnn3(input_shape, num_classes, width: int = 24, depth: int = 2) -> nn.Module:
    channels, *spatial = input_shape
    conv = {1: nn.Conv1d, 2: nn.Conv2d}.get(len(spatial))
    if conv is None:
        raise BadInput(f"cnn3 takes signals (C, L) or images (C, H, W), got input shape {tuple(input_shape)}")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [conv(channels, width, 5, stride=2, padding=2, bias=i == 0), nn.ReLU()]
        channels, spatial = width, [(n - 1) // 2 + 1 for n in spatial]
    features = channels
    for n in spatial:
        features *= n
    layers += [nn.Flatten(), nn.Linear(features, num_classes, bias=False)]
    return nn.Sequential(*layers)
