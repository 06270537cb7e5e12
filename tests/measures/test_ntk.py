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


class _ReusedWeight(nn.Module):
    """An MLP whose first weight is also applied, by F.linear, to a second copy of the input."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)) + 0.5 * torch.nn.functional.linear(x, self.first.weight))


class _Coupled(nn.Module):
    """Linear layers only, but every output depends on the whole batch (centering across inputs)."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = self.first(x)
        return self.second(torch.relu(h - 0.5 * h.mean(0, keepdim=True)))


def _inplace_relu_mlp():
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))


@pytest.mark.parametrize("build", [_inplace_relu_mlp, _ReusedWeight])
def test_linear_layer_path_refuses_what_it_cannot_handle(build):
    from badminima.measures.ntk import _linear_layers_ntk

    torch.manual_seed(4)
    model, x = build().double(), torch.randn(6, 4, dtype=torch.float64)
    expected = _explicit_ntk(model, x)
    assert _linear_layers_ntk(model, x) is None
    assert torch.allclose(empirical_ntk(model, x), expected, atol=1e-12)


def test_linear_layer_path_checks_per_input_independence():
    from badminima.measures.ntk import _linear_layers_ntk

    torch.manual_seed(5)
    model, x = _Coupled().double(), torch.randn(6, 4, dtype=torch.float64)
    assert _linear_layers_ntk(model, x) is None  # its kernel would be the batch's, not equation 4's per input
    # the general path, input by input (each input alone: the centering is then h - h/2)
    assert torch.allclose(empirical_ntk(model, x), _explicit_ntk(model, x), atol=1e-12)


def test_general_path_on_a_cnn_with_batch_norm_and_biases():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 3, stride=2, bias=False),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
    model = Classifier(net, torch.zeros(1), torch.ones(1), 1).double()
    for bn in (net[1], net[4]):
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    net[4].weight.requires_grad_(False)  # a frozen parameter is not in phi
    x = torch.randn(5, 1, 5, 5, dtype=torch.float64)
    model.train()
    kernel = empirical_ntk(model, x)
    assert model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    rows = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1])[0, a], params)])
                        for i in range(5) for a in range(3)]).reshape(5, 3, -1)
    assert torch.allclose(kernel, torch.einsum("ikp,jlp->ijkl", rows, rows), atol=1e-12)
