"""Norm-bias (paper 004 section 3) against the authors' update rule and against SGD's weight decay: our training
loop with the penalty must take the same steps as plain SGD with the authors' gradient modification."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.spec import PhaseSpec
from badminima.train.loop import train_phase
from badminima.train.regularizers import norm_bias, penalty_of


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    return model, torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))


def _ours(model, x, y, phase):
    model = copy.deepcopy(model)
    train_phase(model, x, y, phase, 0, None, [], penalty=penalty_of(phase))
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _authors(model, x, y, lr, momentum, coefficient, mu_squared, steps):
    """The authors' NormBias/main.py, rewritten: after the backward pass, every parameter's gradient gets
    + coefficient * p when ||theta||^2 > mu^2 and - coefficient * p when below; then SGD with momentum."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            diff = sum(float((p * p).sum()) for p in model.parameters()) - mu_squared
            for p in model.parameters():
                p.grad += (coefficient if diff > 0 else -coefficient if diff < 0 else 0.0) * p
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("mu_squared", [1.0, 100.0])  # ||theta||^2 is about 7 here: above mu^2, then below it
def test_default_norm_bias_takes_the_authors_steps(mu_squared):
    model, x, y = _problem()
    phase = PhaseSpec(epochs=5, batch_size=1000, lr=0.1, momentum=0.9, stop_at_100=False, norm_bias=0.005,
                      norm_bias_mu=mu_squared ** 0.5, norm_bias_form="absolute")
    ours = _ours(model, x, y, phase)
    theirs = _authors(model, x, y, 0.1, 0.9, 0.005, mu_squared, 5)
    plain = _authors(model, x, y, 0.1, 0.9, 0.0, mu_squared, 5)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert float((theirs - plain).norm()) > 1e-4  # the penalty did act


def test_absolute_norm_bias_at_mu_zero_is_sgd_weight_decay():
    assert PhaseSpec().norm_bias_form == "absolute"  # the default: "R_0 is equivalent to weight decay"
    model, x, y = _problem()
    biased = PhaseSpec(epochs=5, batch_size=1000, lr=0.1, momentum=0.9, stop_at_100=False, norm_bias=0.005)
    decayed = PhaseSpec(epochs=5, batch_size=1000, lr=0.1, momentum=0.9, stop_at_100=False, weight_decay=0.005)
    assert torch.allclose(_ours(model, x, y, biased), _ours(model, x, y, decayed), rtol=1e-10, atol=1e-12)


def test_squared_form_is_equation_2_as_printed():
    model, _, _ = _problem()
    theta = torch.cat([p.detach().flatten() for p in model.parameters()]).requires_grad_(True)
    gap = theta @ theta - 4.0
    (expected,) = torch.autograd.grad(0.01 * gap ** 2, theta)
    grads = torch.autograd.grad(norm_bias(model, 0.01, 2.0, "squared"), list(model.parameters()))
    assert torch.allclose(torch.cat([g.flatten() for g in grads]), expected, rtol=1e-12)
    assert torch.allclose(torch.cat([g.flatten() for g in grads]), 4 * 0.01 * gap.detach() * theta.detach(), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown norm-bias form"):
        norm_bias(model, 0.01, 2.0, "cubed")
