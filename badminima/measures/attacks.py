"""Adversarial robustness: FGSM (paper 000 section 3.7, Figure 6; Goodfellow et al. 2015) and L-inf PGD
(paper 004 section 5 and appendix A.7, Tables 4, 9, 10: 20 steps, eps 8/255 with step 2/255 and eps 1/255
with step 0.25/255, i.e. step eps/4; Madry et al. 2018). PGD starts from a uniform random point of the
eps-ball unless told otherwise: the authors' attack (Rank_study/utils.py, AttackPGD) always does, in
training and in evaluation.

Budget units (`budget_unit`, `budget_label`). Images: 1/255 of the pixel range, inputs clamped to [0, 1]
(8/255 on CIFAR-10 is 0.125 of its mean pixel std). Other data (signals, points) have no pixel range: one
unit is 1/255 of CIFAR-10's mean training pixel std (0.2507) in units of the data's own std, i.e.
0.01564 of the data's mean training std, without clamping, so that "8" is 0.125 sigma on any data, as on
CIFAR-10. Tables state budgets in these units: "8/255" for images, "0.125σ" (input standard deviations)
otherwise.

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

from .batches import batches

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


CIFAR10_PIXEL_STD = (0.2470 + 0.2435 + 0.2616) / 3  # CIFAR-10 training set, per-channel pixel std, averaged
STD_PER_UNIT = 1 / (255 * CIFAR10_PIXEL_STD)  # non-image data: one budget unit in input standard deviations


def budget_unit(data) -> tuple[float, tuple[float, float] | None]:
    """(the unit of the budgets in input units, the clamping range): (1/255, [0, 1]) for images, else
    (STD_PER_UNIT x the data's mean training std, None): see the module doc."""
    if data.kind == "image":
        return 1 / 255, (0.0, 1.0)
    return STD_PER_UNIT * float(data.standardization()[1].mean()), None


def budget_in_std(data, budget: float) -> float:
    """A budget (in units of `budget_unit`) in the data's mean training standard deviations."""
    return budget * budget_unit(data)[0] / float(data.standardization()[1].mean())


def budget_label(data, budget: float) -> str:
    """How tables write a budget: "8/255" for images, "0.125σ" (input standard deviations) otherwise."""
    if data.kind == "image":
        return f"{budget:g}/255"
    return f"{budget * STD_PER_UNIT:.3g}σ"


def unit_description(data) -> str:
    """One sentence for a report: the unit of the budgets on `data`."""
    if data.kind == "image":
        return "budgets in 1/255 of the pixel range (inputs clamped to [0, 1])"
    return ("budgets in the inputs' mean training standard deviation σ (no clamping); b/255 on CIFAR-10 is "
            f"b x {STD_PER_UNIT:.4g}σ, the scale used here")


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
        random_start: bool = True, bounds: Bounds = IMAGE_BOUNDS, generator: torch.Generator | None = None) -> torch.Tensor:
    """L-inf projected gradient ascent on the cross-entropy: `steps` steps of size `step_size` (default
    eps/4, paper 004) along the gradient sign, each followed by projection onto the eps-ball around x and
    clamping to `bounds`; from a uniform random start in the ball (drawn from `generator`) unless
    `random_start` is False."""
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


def robust_accuracy(model: nn.Module, x, y: torch.Tensor | None, attack: Callable[..., torch.Tensor],
                    batch_size: int = 500, **attack_kwargs) -> float:
    """Accuracy (a fraction) on `attack(model, x, y, **attack_kwargs)`, chunk by chunk; the data as
    measures/batches.py reads them (tensors, or a DataLoader with y=None)."""
    correct = total = 0
    for xb, yb in batches(x, y, batch_size):
        correct += _correct(model, attack(model, xb, yb, **attack_kwargs), yb)
        total += len(yb)
    return correct / max(total, 1)


def fgsm_accuracy(model: nn.Module, x, y: torch.Tensor | None, eps: float, bounds: Bounds = IMAGE_BOUNDS,
                  batch_size: int = 500) -> float:
    """Accuracy under FGSM with budget eps (paper 000, Figure 6)."""
    return robust_accuracy(model, x, y, fgsm, batch_size, eps=eps, bounds=bounds)


def pgd_accuracy(model: nn.Module, x, y: torch.Tensor | None, eps: float, steps: int = 20,
                 step_size: float | None = None, random_start: bool = True, bounds: Bounds = IMAGE_BOUNDS,
                 batch_size: int = 500, generator: torch.Generator | None = None) -> float:
    """Accuracy under L-inf PGD (paper 004: 20 steps, step eps/4, eps 8/255 or 1/255, random start)."""
    return robust_accuracy(model, x, y, pgd, batch_size, eps=eps, steps=steps, step_size=step_size,
                           random_start=random_start, bounds=bounds, generator=generator)
