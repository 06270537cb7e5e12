"""The empirical NTK against explicit per-example Jacobians from loops of autograd.grad."""
import numpy as np
import pytest
import torch
from torch import nn

from badminima.measures import empirical_ntk, ntk_change, ntk_correlation, ntk_norm, ntk_relative_change
from badminima.models import Classifier


def _model(seed, batchnorm=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if batchnorm else []) + [nn.ReLU(), nn.Linear(6, 3)]
    model = Classifier(nn.Sequential(*layers), torch.full((4,), 0.1), torch.full((4,), 2.0), 1).double()
    if batchnorm:
        bn = model.net[1]
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    return model


def _explicit_ntk(model, x):
    model.eval()
    params = list(model.parameters())
    rows = []  # rows[i][k] = d f_k(x_i) / d theta, flattened
    for i in range(len(x)):
        out = model(x[i:i + 1])[0]
        rows.append([torch.cat([g.flatten() for g in torch.autograd.grad(out[k], params, retain_graph=True)])
                     for k in range(out.numel())])
    n, c = len(x), len(rows[0])
    kernel = torch.zeros(n, n, c, c, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            for k in range(c):
                for l in range(c):
                    kernel[i, j, k, l] = rows[i][k] @ rows[j][l]
    return kernel


@pytest.mark.parametrize("batchnorm", [False, True])
def test_ntk_matches_explicit_jacobians(batchnorm):
    model = _model(0, batchnorm).train()
    x = torch.randn(5, 4, dtype=torch.float64)
    kernel = empirical_ntk(model, x)
    assert model.training  # the mode is restored
    expected = _explicit_ntk(model, x)
    assert kernel.shape == (5, 5, 3, 3)
    assert torch.allclose(kernel, expected, atol=1e-12)


def test_kernel_comparisons():
    x = torch.randn(4, 4, dtype=torch.float64)
    k0, k1 = empirical_ntk(_model(0), x), empirical_ntk(_model(1), x)
    assert ntk_norm(k0) == pytest.approx(np.linalg.norm(k0.numpy().ravel()))
    assert ntk_relative_change(k1, k0) == pytest.approx(np.linalg.norm((k1 - k0).numpy()) / np.linalg.norm(k0.numpy()))
    assert ntk_correlation(k1, k0) == pytest.approx(np.corrcoef(k1.numpy().ravel(), k0.numpy().ravel())[0, 1])
    assert ntk_correlation(3 * k0, k0) == pytest.approx(1.0)  # scale-invariant, unlike the relative change
    assert ntk_relative_change(3 * k0, k0) == pytest.approx(2.0)
    change = ntk_change(_model(0), _model(1), x)
    assert change["relative_change"] == pytest.approx(ntk_relative_change(k1, k0))


def test_linear_layer_path_equals_the_jacobian_contraction():
    from badminima.measures.ntk import _linear_layers_ntk, jacobian_ntk

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 9), torch.nn.ReLU(), torch.nn.Linear(9, 7),
                                torch.nn.Tanh(), torch.nn.Linear(7, 4, bias=False)).double()
    x = torch.randn(5, 2, 3, dtype=torch.double)
    fast = _linear_layers_ntk(model, x)
    assert fast is not None
    assert torch.allclose(fast, jacobian_ntk(model, x), atol=1e-10)
    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 3)).double()
    assert _linear_layers_ntk(conv, torch.randn(4, 1, 6, dtype=torch.double)) is None  # falls back
