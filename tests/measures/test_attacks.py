"""FGSM and PGD on a logistic (two-class linear) model against its closed form: the worst L-inf
perturbation moves every coordinate by eps against sign(w_y - w_other) (in input units, through the
standardization), then clamps to the data range."""
import inspect

import numpy as np
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
    adv = pgd(model, x, y, eps, steps=2, random_start=False)  # two steps of eps/4
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


# ---- PGD as paper 004's authors evaluate it, budgets in stated units (issue 12, item 8) ----

def test_pgd_starts_at_a_uniform_random_point_of_the_ball_by_default():
    model, g = _logistic(seed=3)
    x, y = 0.25 + 0.5 * torch.rand(2000, 5, generator=g), torch.randint(0, 2, (2000,), generator=g)
    eps = 0.1
    start = pgd(model, x, y, eps, steps=0, generator=torch.Generator().manual_seed(0))  # the start alone
    moved = (start - x).flatten()
    assert moved.abs().max() <= eps + 1e-7
    assert moved.mean().item() == pytest.approx(0.0, abs=0.003)  # U(-eps, eps): mean 0, E|u| = eps/2
    assert moved.abs().mean().item() == pytest.approx(eps / 2, rel=0.02)
    assert inspect.signature(pgd_accuracy).parameters["random_start"].default is True


def test_budget_unit_for_signals_is_stated_in_input_standard_deviations():
    from badminima.data import load_dataset
    from badminima.measures.attacks import budget_in_std, budget_label, budget_unit

    data = load_dataset("mnist1d")
    x = data.x_train.double().numpy()
    std = np.mean([x[:, c].std(ddof=1) for c in range(x.shape[1])])  # the per-channel training std, averaged
    cifar_std = np.mean([0.2470, 0.2435, 0.2616])  # CIFAR-10's per-channel pixel std
    unit, bounds = budget_unit(data)
    assert bounds is None
    assert 8 * unit / std == pytest.approx(8 / 255 / cifar_std, rel=1e-6)  # 8 units = 0.125 sigma, as 8/255 on CIFAR-10
    assert budget_in_std(data, 8) == pytest.approx(0.1251, abs=1e-4)
    assert budget_label(data, 8) == "0.125σ"
    images = load_dataset("digits")
    assert budget_unit(images) == (1 / 255, (0.0, 1.0)) and budget_label(images, 8) == "8/255"
