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


def _strided_convnet(name: str, input_shape, num_classes, channels: list[int], kernel: int,
                     batch_norm: bool) -> nn.Module:
    """Paper 001's ConvNets without pooling: one `kernel`-wide convolution (stride 2, padding kernel // 2) per
    entry of `channels`, each followed by ReLU (batch norm, then ReLU, with `batch_norm`), then a linear layer.
    Without batch norm only the first convolution has a bias and the linear layer has none; with it, batch
    norm's shift replaces the convolutions' biases and the linear layer has one. For 1-D signals (C, L) or
    images (C, H, W)."""
    cin, *spatial = input_shape
    conv = {1: nn.Conv1d, 2: nn.Conv2d}.get(len(spatial))
    norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}.get(len(spatial))
    if conv is None:
        raise BadInput(f"{name} takes signals (C, L) or images (C, H, W), got input shape {tuple(input_shape)}")
    layers: list[nn.Module] = []
    for i, cout in enumerate(channels):
        layers += [conv(cin, cout, kernel, stride=2, padding=kernel // 2, bias=i == 0 and not batch_norm)]
        layers += [norm(cout), nn.ReLU()] if batch_norm else [nn.ReLU()]
        cin, spatial = cout, [(n - 1) // 2 + 1 for n in spatial]
    features = cin
    for n in spatial:
        features *= n
    layers += [nn.Flatten(), nn.Linear(features, num_classes, bias=batch_norm)]
    return nn.Sequential(*layers)


def cnn3(input_shape, num_classes, width: int = 24, depth: int = 2) -> nn.Module:
    """`depth` convolutions of `width` 5x5 filters and a linear layer (the module doc)."""
    return _strided_convnet("cnn3", input_shape, num_classes, [width] * depth, 5, batch_norm=False)


# Paper 001's 5-layer ConvNets: four strided convolutions and a linear layer ("5-layer convolutional network
# (i.e., no pooling)", Figure 1; "in the five layers 32, 64, 64, 128 filters of size 3 by 3; the final layer is
# fully connected", appendix L.2). The paper gives no strides or padding; ours are 3x3, stride 2, padding 1
# (32x32 CIFAR inputs -> 16 -> 8 -> 4 -> 2), as cnn3 reduces by stride 2 without pooling. Parameter counts on
# CIFAR-10: cnn5 at width 16, 8 000 (Figure 1: "approximately 10000"); cnn5bn, 135 594 (L.2: "about 188, 810",
# which no stride pattern of these layers with 3x3 filters reproduces exactly: stride 1 in the first layer
# gives 150 954, in the first two 212 394).
def cnn5(input_shape, num_classes, width: int = 16, depth: int = 4) -> nn.Module:
    """Figures 1 and 3: `depth` convolutions of `width` 3x3 filters (16 and 4: five layers with the linear one),
    ReLU, bias in the first layer only, no batch norm, no pooling."""
    return _strided_convnet("cnn5", input_shape, num_classes, [width] * depth, 3, batch_norm=False)


def cnn5bn(input_shape, num_classes, width: int = 32) -> nn.Module:
    """Appendix L.2 (Figures 5-8, 11-12): convolutions of width x (1, 2, 2, 4) 3x3 filters (32, 64, 64, 128),
    each followed by batch norm and ReLU, then a linear layer with bias. Batch norm is folded into the
    convolutions before the network is normalized (measures.layers.fold_batchnorm, Figure 5's caption)."""
    return _strided_convnet("cnn5bn", input_shape, num_classes, [width, 2 * width, 2 * width, 4 * width], 3,
                            batch_norm=True)
