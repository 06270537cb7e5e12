"""Norms against independent computations: explicit convolution matrices, brute-force path enumeration,
batch norm folded by hand."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.measures import (conv_singular_values, fold_batchnorm, frobenius_norm, l1_path_norm, l2_path_norm,
                                layer_frobenius_norms, path_norm, product_of_frobenius_norms, spectral_norms)
from badminima.models import Classifier, build_model


def _randomize_batchnorm(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model.eval()


@pytest.mark.parametrize("name,shape,kw,left", [
    ("resnet18", (3, 8, 8), {"width": 4}, 0),
    ("vgg16", (3, 32, 32), {"width": 2}, 0),
    ("densenet40", (3, 8, 8), {"width": 4, "depth": 10}, 9),  # pre-activation BN follows a concatenation
])
def test_folding_batchnorm_keeps_the_eval_function(name, shape, kw, left):
    torch.manual_seed(0)
    model = _randomize_batchnorm(build_model(name, shape, 5, torch.rand(shape[0]), 1 + torch.rand(shape[0]), **kw))
    folded = fold_batchnorm(model)
    x = torch.rand(4, *shape)
    assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules()) == left
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())  # the original is untouched


def test_frobenius_norm_is_the_norm_of_all_parameters():
    torch.manual_seed(0)
    model = build_model("cnn2d", (1, 8, 8), 10, torch.zeros(1), torch.ones(1), width=3)
    flat = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]).astype(np.float64)
    assert frobenius_norm(model) == pytest.approx(np.linalg.norm(flat), rel=1e-12)
    weights = [m.weight.detach().double() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert product_of_frobenius_norms(model) == pytest.approx(math.prod(float(w.norm()) for w in weights), rel=1e-12)


def _explicit_circular_conv_matrix(weight, size, stride):
    """The matrix of x -> conv(circular_pad(x), weight, stride), column j = image of basis vector j."""
    cin, d = weight.shape[1], weight.dim() - 2
    n_in = cin * math.prod(size)
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, cin, *size)
    pad = []
    for k in reversed(weight.shape[2:]):
        pad += [(k - 1) // 2, k // 2]
    padded = F.pad(basis, pad, mode="circular")
    conv = {1: F.conv1d, 2: F.conv2d}[d]
    out = conv(padded, weight.double(), stride=stride)
    return out.reshape(n_in, -1).T


@pytest.mark.parametrize("shape,size,stride", [
    ((3, 2, 3, 3), (6, 6), 1),
    ((4, 3, 3, 3), (8, 4), 2),  # strided: the aliasing blocks
    ((2, 3, 5), (10,), 2),
    ((3, 2, 3, 3), (2, 2), 1),  # kernel larger than the input: it wraps around
    ((2, 5, 1, 1), (3, 3), 1),
])
def test_fft_singular_values_match_the_explicit_convolution_matrix(shape, size, stride):
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(shape, generator=g, dtype=torch.float64)
    explicit = torch.linalg.svdvals(_explicit_circular_conv_matrix(weight, size, stride))
    ours = conv_singular_values(weight, size, stride)
    k = min(len(explicit), len(ours))
    assert torch.allclose(ours[:k], explicit[:k], atol=1e-10)
    assert torch.all(explicit[k:].abs() < 1e-10) and torch.all(ours[k:].abs() < 1e-10)


def test_circular_spectral_norms_use_each_layer_input_size():
    torch.manual_seed(0)
    model = build_model("cnn1d", (1, 40), 10, torch.zeros(1), torch.ones(1), width=3, depth=2)
    sample = torch.randn(1, 1, 40)
    norms = spectral_norms(model, sample, method="circular")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    for conv, size in zip(convs, [(40,), (20,)]):
        matrix = _explicit_circular_conv_matrix(conv.weight.detach(), size, conv.stride)
        assert norms[[k for k, v in model.named_modules() if v is conv][0]] == pytest.approx(
            float(torch.linalg.matrix_norm(matrix, ord=2)), rel=1e-10)
    linear = model.net[-1].weight.detach().double()
    assert norms["net.5"] == pytest.approx(float(np.linalg.norm(linear.numpy(), 2)), rel=1e-10)
    reshaped = spectral_norms(model, method="reshaped")
    assert reshaped["net.0"] == pytest.approx(float(np.linalg.norm(convs[0].weight.detach().double().reshape(3, -1).numpy(), 2)))


def _brute_force_path_norm(layers, p):
    """sum over all input->output paths (and bias->output paths) of prod |w|^p, by enumeration."""
    dims = [layers[0][0].shape[1]] + [w.shape[0] for w, _ in layers]
    total = 0.0
    for start in range(len(layers) + 1):  # start 0: input units; start l: the bias units of layer l
        for units in itertools.product(*[range(d) for d in dims[start:]]):
            value = 1.0 if start == 0 else abs(float(layers[start - 1][1][units[0]])) ** p
            for l in range(start, len(layers)):
                value *= abs(float(layers[l][0][units[l - start + 1], units[l - start]])) ** p
            total += value
    return total ** (1 / p)


def _tiny_mlp(batchnorm=False):
    torch.manual_seed(0)
    dims = [3, 4, 3, 2]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            layers.append(nn.ReLU())
    net = nn.Sequential(nn.Flatten(), *layers)
    return _randomize_batchnorm(Classifier(net, torch.zeros(3), torch.ones(3), 1), seed=3)


@pytest.mark.parametrize("p", [1, 2])
def test_path_norm_equals_brute_force_enumeration(p):
    model = _tiny_mlp()
    layers = [(m.weight.detach().double(), m.bias.detach().double()) for m in model.modules() if isinstance(m, nn.Linear)]
    expected = _brute_force_path_norm(layers, p)
    assert path_norm(model, (3,), p) == pytest.approx(expected, rel=1e-12)
    assert (l1_path_norm if p == 1 else l2_path_norm)(model, (3,)) == pytest.approx(expected, rel=1e-12)


def test_path_norm_folds_batchnorm_into_the_layer_before():
    model = _tiny_mlp(batchnorm=True)
    layers, pending = [], None
    for m in model.net:  # fold by hand: w' = w*gamma/sqrt(var+eps), b' = (b-mu)*gamma/sqrt(var+eps)+beta
        if isinstance(m, nn.Linear):
            pending = (m.weight.detach().double(), m.bias.detach().double())
            layers.append(pending)
        elif isinstance(m, nn.BatchNorm1d):
            scale = m.weight.detach().double() / torch.sqrt(m.running_var.double() + m.eps)
            w, b = layers.pop()
            layers.append((w * scale[:, None], (b - m.running_mean.double()) * scale + m.bias.detach().double()))
    assert l2_path_norm(model, (3,)) == pytest.approx(_brute_force_path_norm(layers, 2), rel=1e-10)
    frob = layer_frobenius_norms(model)
    assert list(frob.values()) == pytest.approx([float(w.norm()) for w, _ in layers], rel=1e-10)


# ---- the zero-padding operator norm (issue 12, item 7) ----

def _explicit_conv_matrix(layer, size):
    """The matrix of the layer's own convolution (zero padding, bias left out) on inputs of `size`, column j =
    the image of basis vector j, by F.conv2d on an explicitly zero-padded input (independent of the layer's
    _conv_forward)."""
    cin = layer.in_channels
    n = cin * math.prod(size)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, cin, *size)
    ph, pw = layer.padding
    padded = F.pad(basis, (pw, pw, ph, ph))  # zeros
    out = F.conv2d(padded, layer.weight.detach().double(), stride=layer.stride, dilation=layer.dilation,
                   groups=layer.groups)
    return out.reshape(n, -1).T


@pytest.mark.parametrize("cin,cout,k,stride,padding,size", [
    (8, 8, 3, 1, 1, (4, 4)),  # a ResNet 4x4-stage convolution (scaled down in channels)
    (6, 8, 3, 2, 1, (8, 8)),  # strided, the first block of a stage
    (6, 8, 1, 2, 0, (8, 8)),  # a shortcut projection
    (3, 5, 5, 2, 2, (9, 7)),  # odd sizes: the last row and column are cut by the stride
])
def test_spectral_norm_is_the_zero_padding_operator_norm(cin, cout, k, stride, padding, size):
    torch.manual_seed(1)
    conv = nn.Conv2d(cin, cout, k, stride, padding, bias=True)
    net = Classifier(nn.Sequential(conv, nn.Flatten()), torch.zeros(cin), torch.ones(cin), 3)
    sample = torch.randn(1, cin, *size)
    exact = float(torch.linalg.matrix_norm(_explicit_conv_matrix(conv, size), ord=2))
    assert spectral_norms(net, sample)["net.0"] == pytest.approx(exact, rel=1e-9)
    if k == 3 and stride == 1:  # the circular operator is another map: its norm differs by more than 1% here
        assert abs(spectral_norms(net, sample, method="circular")["net.0"] / exact - 1) > 0.01


def test_spectral_norm_of_a_large_operator_by_lanczos():
    torch.manual_seed(2)
    conv = nn.Conv2d(16, 16, 3, 1, 1, bias=False)  # 16 * 8 * 8 = 1024 inputs: the iterative path
    from badminima.measures import conv_operator_norm
    exact = float(torch.linalg.matrix_norm(_explicit_conv_matrix(conv, (8, 8)), ord=2))
    assert conv_operator_norm(conv, (8, 8)) == pytest.approx(exact, rel=1e-9)


def test_spectral_product_leaves_the_shortcuts_out():
    from badminima.measures import spectral_norm_product
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 8, 8), 4, torch.zeros(3), torch.ones(3), width=2)
    norms = spectral_norms(model, method="reshaped")
    shortcuts = [n for n in norms if ".shortcut." in n]
    assert len(shortcuts) == 3  # stages 2-4 open with a projection
    product = spectral_norm_product(norms)
    assert product["left_out"] == shortcuts and len(product["layers"]) == 1 + 16 + 1
    assert product["product"] == pytest.approx(math.prod(v for n, v in norms.items() if n not in shortcuts), rel=1e-12)


# ---- average pooling in the path norm (issue 12, item 6) ----

def _linear_map_matrix(fn, shape):
    """The explicit matrix of a linear map on tensors of `shape` (no batch dimension), column j = fn(e_j)."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return fn(basis).reshape(n, -1).T


def _path_sum(matrices, biases, p):
    """sum over all input->output paths (and bias->output paths) of prod |w|^p, with the layers as explicit
    matrices: 1^T |M_L|^p ... |M_1|^p 1 plus each bias unit's paths (the matrix form of path enumeration)."""
    powered = [m.abs() ** p for m in matrices]
    total = 0.0
    for start in range(len(matrices) + 1):
        v = torch.ones(matrices[0].shape[1], dtype=torch.float64) if start == 0 else biases[start - 1].abs() ** p
        for m in powered[start:]:
            v = m @ v
        total += float(v.sum())
    return total ** (1 / p)


@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool2d(1), nn.AvgPool2d(2), nn.AvgPool2d(3, 2, padding=1),
                                  nn.AvgPool2d(3, 2, padding=1, count_include_pad=False, ceil_mode=True),
                                  nn.AdaptiveAvgPool2d((2, 3))])
@pytest.mark.parametrize("p", [1, 2])
def test_path_norm_counts_an_average_pool_as_a_linear_layer(pool, p):
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(2, 3, 3, padding=1), nn.LazyLinear(2)
    net = nn.Sequential(conv, nn.ReLU(), pool, nn.Flatten(), linear)
    net(torch.zeros(1, 2, 5, 5))
    model = Classifier(net, torch.zeros(2), torch.ones(2), 3)
    conv_m = _linear_map_matrix(lambda x: F.conv2d(x, conv.weight.detach().double(), padding=1), (2, 5, 5))
    pooled_shape = pool(torch.zeros(1, 3, 5, 5)).shape[1:]
    pool_m = _linear_map_matrix(pool, (3, 5, 5))  # entries 1/k_j (and 0)
    expected = _path_sum([conv_m, pool_m, linear.weight.detach().double()],
                         [conv.bias.detach().double().repeat_interleave(25), torch.zeros(math.prod(pooled_shape), dtype=torch.float64),
                          linear.bias.detach().double()], p)
    assert path_norm(model, (2, 5, 5), p) == pytest.approx(expected, rel=1e-12)


def test_resnet18_global_pool_counts_one_over_k_squared():
    """ResNet18 on 32x32 ends in a 4x4 map: the path norm through its global pool is that of the network whose
    pool is replaced by the equivalent linear layer (16 inputs of weight 1/16 each), written by hand."""
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 32, 32), 3, torch.zeros(3), torch.ones(3), width=1)
    _randomize_batchnorm(model)
    folded = fold_batchnorm(model.net, torch.float64)

    class Body(nn.Module):  # everything before the global pool, with |w|^2 (nonnegative signals: ReLU = identity)
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.layers(F.relu(self.net.bn1(self.net.conv1(x))))

    with torch.no_grad():
        for m in folded.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(m.weight ** 2)
                if m.bias is not None:
                    m.bias.copy_(m.bias ** 2)
        features = Body(folded)(torch.ones(1, 3, 32, 32, dtype=torch.float64))  # (1, 8, 4, 4)
        assert features.shape[-2:] == (4, 4)
        pooled = features.sum((2, 3)) / 16 ** 2  # a path through the pool: weight (1/16)^2
        expected = float((pooled @ folded.linear.weight.T + folded.linear.bias).sum()) ** 0.5
        as_forward = float((features.mean((2, 3)) @ folded.linear.weight.T + folded.linear.bias).sum()) ** 0.5
    assert l2_path_norm(model, (3, 32, 32)) == pytest.approx(expected, rel=1e-10)
    assert as_forward > 1.5 * expected  # the forward pass as it is would count 1/16 (up to 4x with no bias)
