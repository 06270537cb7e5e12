"""Penalties added to the training loss (the `penalty(model)` argument of `train_phase`).

Norm-bias (paper 004, section 3, equation 2): R_mu(theta) = (||theta||_2^2 - mu^2)^2, which biases the
parameter norm towards mu rather than towards 0 (R_0 = ||theta||^4, a weight decay of another power).
theta is every trainable parameter (weights, biases, batch-norm scales and shifts), as in the paper's
sum over all parameters. Two forms:

- "squared": coefficient * (||theta||^2 - mu^2)^2, equation 2 as printed;
  gradient 4 * coefficient * (||theta||^2 - mu^2) * theta;
- "absolute": coefficient * | ||theta||^2 - mu^2 |, the form of the authors' code (with which the
  paper's coefficients, 0.005 at mu^2 = 2500, are of weight decay's size);
  gradient 2 * coefficient * sign(||theta||^2 - mu^2) * theta: weight decay 2*coefficient above mu,
  negative weight decay below it.

The penalty is added to every mini-batch's mean cross-entropy, as SGD's weight decay is.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..spec import PhaseSpec

FORMS = ("squared", "absolute")


def squared_norm(model: nn.Module) -> torch.Tensor:
    """||theta||_2^2 over every trainable parameter, differentiable."""
    return sum((p * p).sum() for p in model.parameters() if p.requires_grad)


def norm_bias(model: nn.Module, coefficient: float, mu: float, form: str = "squared") -> torch.Tensor:
    """The norm-bias penalty of `model` (module docstring), a differentiable scalar."""
    if form not in FORMS:
        raise ValueError(f"unknown norm-bias form {form!r} (known: {', '.join(FORMS)})")
    gap = squared_norm(model) - mu ** 2
    return coefficient * (gap * gap if form == "squared" else gap.abs())


def penalty_of(phase: PhaseSpec) -> Callable[[nn.Module], torch.Tensor] | None:
    """The phase's penalty for `train_phase`, or None when it has none (norm_bias == 0)."""
    if not phase.norm_bias:
        return None
    return lambda model: norm_bias(model, phase.norm_bias, phase.norm_bias_mu, phase.norm_bias_form)
