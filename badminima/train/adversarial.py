"""Adversarial training (Madry et al. 2018), the `perturb` argument of `train_phase`: every mini-batch is
replaced by its L-inf PGD attack on the current model before the step (paper 004 appendix A.7: 7 steps of
size 2/255 within eps = 8/255, from a uniform random start in the ball).

Budgets of a PhaseSpec are in 1/255 of the image range for images (adversarial inputs clamped to [0, 1]);
for other data in units of 0.0156 of the inputs' mean training std (8 units = 0.125 sigma, as 8/255 on
CIFAR-10), without clamping (measures.attacks.budget_unit, as measures/registry.py's attacks). The attack runs in eval mode (measures/attacks.py) and its random start draws from the epoch's
generator, so a resumed phase repeats the uninterrupted one.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..data import Dataset
from ..measures.attacks import budget_unit, pgd
from ..spec import PhaseSpec


def pgd_perturbation(phase: PhaseSpec, data: Dataset) -> Callable | None:
    """(model, inputs, labels, generator) -> attacked inputs, or None when the phase is not adversarial."""
    if phase.adversarial_steps <= 0:
        return None
    unit, bounds = budget_unit(data)
    eps, step = phase.adversarial_eps * unit, phase.adversarial_step_size * unit

    def perturb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return pgd(model, x, y, eps, phase.adversarial_steps, step, random_start=True, bounds=bounds,
                   generator=generator)
    return perturb
