"""FGSM and PGD on a logistic (two-class linear) model against its closed form: the worst L-inf
perturbation moves every coordinate by eps against sign(w_y - w_other) (in input units, through the
standardization), then clamps to the data range."""
import pytest
import torch
from torch import nn

from badminima.measures import fgsm, fgsm_accuracy, pgd, pgd_accuracy
from badminima.models import Classifier


def _logistic(d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(d, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, d, generator=g))
        layer.bias.copy_(torch.randn(2, generator=g))
    mean, std = torch.rand(d, generator=g), 0.5 + torch.rand(d, generator=g)
    return Classifier(layer, mean, std, 1), g


def _closed_form(model, x, y, eps, bounds):
    w = model.net.weight.detach()
    toward_true = (w[y] - w[1 - y]).sign()
    adv = x - eps * toward_true
    return adv if bounds is None else adv.clamp(*bounds)


def _closed_form_accuracy(model, adv, y):
    w, b = model.net.weight.detach(), model.net.bias.detach()
    z = (adv - model.mean) / model.std
    margin = ((w[y] - w[1 - y]) * z).sum(1) + b[y] - b[1 - y]
    return (margin > 0).double().mean().item()


@pytest.mark.parametrize("bounds", [(0.0, 1.0), None])
def test_fgsm_is_the_closed_form(bounds):
    model, g = _logistic()
    x, y = torch.rand(200, 5, generator=g), torch.randint(0, 2, (200,), generator=g)
    eps = 0.1
    expected = _closed_form(model, x, y, eps, bounds)
    assert torch.allclose(fgsm(model, x, y, eps, bounds=bounds), expected, atol=1e-7)
    assert fgsm_accuracy(model, x, y, eps, bounds=bounds, batch_size=64) == pytest.approx(
        _closed_form_accuracy(model, expected, y))
    if bounds is None:
        assert (expected < 0).any() or (expected > 1).any()  # the case without clamping is exercised


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_reaches_the_optimal_corner(random_start):
    model, g = _logistic(seed=1)
    x, y = torch.rand(100, 5, generator=g), torch.randint(0, 2, (100,), generator=g)
    eps = 8 / 255
    adv = pgd(model, x, y, eps, steps=20, random_start=random_start, generator=torch.Generator().manual_seed(0))
    expected = _closed_form(model, x, y, eps, (0.0, 1.0))
    assert torch.allclose(adv, expected, atol=1e-6)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert pgd_accuracy(model, x, y, eps) == pytest.approx(_closed_form_accuracy(model, expected, y))


def test_few_pgd_steps_stop_short_of_the_corner():
    model, g = _logistic(seed=2)
    x, y = 0.25 + 0.5 * torch.rand(10, 5, generator=g), torch.randint(0, 2, (10,), generator=g)
    eps = 0.1
    adv = pgd(model, x, y, eps, steps=2)  # two steps of eps/4
    assert torch.allclose((adv - x).abs(), torch.full_like(x, eps / 2), atol=1e-6)


def test_attack_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    model = Classifier(net, torch.zeros(4), torch.ones(4), 1).train()
    before = net[1].running_mean.clone()
    x, y = torch.rand(16, 4), torch.randint(0, 3, (16,))
    pgd(model, x, y, 0.05, steps=3)
    fgsm(model, x, y, 0.05)
    assert model.training and torch.equal(net[1].running_mean, before)
    assert all(p.grad is None for p in model.parameters())
