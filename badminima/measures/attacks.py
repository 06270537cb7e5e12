"""Adversarial robustness: FGSM (paper 000 section 3.7, Figure 6; Goodfellow et al. 2015) and L-inf PGD
(paper 004 section 5 and appendix A.7, Tables 4, 9, 10: 20 steps, eps 8/255 with step 2/255 and eps 1/255
with step 0.25/255, i.e. step eps/4; Madry et al. 2018).

Conventions, as torchattacks: the attack works in the input's natural range and goes through the whole
model (the standardization is inside it), the model is put in eval mode and its mode restored after,
the loss is the cross-entropy on the true labels (untargeted), and adversarial inputs are clamped to
`bounds`: (0, 1) for images (the default), a caller-given range or None (no clamp) for other data.
Gradients are taken with respect to the inputs only; parameter gradients are left untouched.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_BOUNDS = (0.0, 1.0)
Bounds = tuple[float, float] | None


@contextmanager
def eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def budget_unit(data) -> tuple[float, tuple[float, float] | None]:
    """(the unit of the budgets, the clamping range): (1/255, [0, 1]) for images, else (mean std / 255, None)."""
    if data.kind == "image":
        return 1 / 255, (0.0, 1.0)
    return float(data.standardization()[1].mean()) / 255, None


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        return torch.autograd.grad(loss, x)[0]


def _clamp(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    return x if bounds is None else x.clamp(*bounds)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bounds: Bounds = IMAGE_BOUNDS) -> torch.Tensor:
    """x + eps * sign(grad_x CE(f(x), y)), clamped to `bounds`."""
    with eval_mode(model):
        return _clamp(x + eps * _input_gradient(model, x, y).sign(), bounds).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 20, step_size: float | None = None,
        random_start: bool = False, bounds: Bounds = IMAGE_BOUNDS, generator: torch.Generator | None = None) -> torch.Tensor:
    """L-inf projected gradient ascent on the cross-entropy: `steps` steps of size `step_size` (default
    eps/4, paper 004) along the gradient sign, each followed by projection onto the eps-ball around x and
    clamping to `bounds`; optionally from a uniform random start in the ball."""
    alpha = eps / 4 if step_size is None else step_size
    with eval_mode(model):
        x = x.detach()
        adv = x.clone()
        if random_start:
            noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            adv = _clamp(x + eps * (2 * noise - 1), bounds)
        for _ in range(steps):
            adv = adv + alpha * _input_gradient(model, adv, y).sign()
            adv = _clamp(torch.min(torch.max(adv, x - eps), x + eps), bounds).detach()
    return adv


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with eval_mode(model):
        return int((model(x).argmax(1) == y).sum())


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Callable[..., torch.Tensor],
                    batch_size: int = 500, **attack_kwargs) -> float:
    """Accuracy (a fraction) on `attack(model, x, y, **attack_kwargs)`, batch by batch."""
    correct = 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        correct += _correct(model, attack(model, xb, yb, **attack_kwargs), yb)
    return correct / max(len(y), 1)


def fgsm_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bounds: Bounds = IMAGE_BOUNDS,
                  batch_size: int = 500) -> float:
    """Accuracy under FGSM with budget eps (paper 000, Figure 6)."""
    return robust_accuracy(model, x, y, fgsm, batch_size, eps=eps, bounds=bounds)


def pgd_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 20,
                 step_size: float | None = None, random_start: bool = False, bounds: Bounds = IMAGE_BOUNDS,
                 batch_size: int = 500, generator: torch.Generator | None = None) -> float:
    """Accuracy under L-inf PGD (paper 004: 20 steps, step eps/4, eps 8/255 or 1/255)."""
    return robust_accuracy(model, x, y, pgd, batch_size, eps=eps, steps=steps, step_size=step_size,
                           random_start=random_start, bounds=bounds, generator=generator)
