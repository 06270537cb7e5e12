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


def test_spectral_norms_use_each_layer_input_size():
    torch.manual_seed(0)
    model = build_model("cnn1d", (1, 40), 10, torch.zeros(1), torch.ones(1), width=3, depth=2)
    sample = torch.randn(1, 1, 40)
    norms = spectral_norms(model, sample)
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
