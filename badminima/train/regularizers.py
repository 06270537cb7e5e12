"""Penalties added to the training loss (the `penalty(model)` argument of `train_phase`).

Norm-bias (paper 004, section 3, equation 2) biases the parameter norm towards mu rather than towards 0.
theta is every trainable parameter (weights, biases, batch-norm scales and shifts), as in the paper's sum
over all parameters. With coefficient c, two forms:

- "absolute" (the default): c/2 * | ||theta||^2 - mu^2 |, gradient c * sign(||theta||^2 - mu^2) * theta.
  Source: the paper's text says R_0 "is equivalent to weight decay", which holds for this form only (at
  mu = 0 it is c/2 ||theta||^2, SGD's weight decay c), and the authors' code (NormBias/main.py) adds
  exactly c * sign(||theta||^2 - mu^2) * theta to every parameter's gradient before the SGD step, with
  c their `weight_decay` argument and mu^2 their `norm_bias` argument. At this scale the paper's
  coefficients (0.005 at mu^2 = 2500 for ResNet-18) give the authors' update: weight decay c above mu,
  negative weight decay c below it.
- "squared": c * (||theta||^2 - mu^2)^2, equation 2 as printed; gradient 4c (||theta||^2 - mu^2) theta.
  At mu = 0 it is c ||theta||^4, not weight decay; the paper gives no coefficient for it.

Negative weight decay (paper 004 appendix A.5: "negative weight decay coefficients ... blowing up parameter
norm") is the absolute form at mu = 0 with c < 0: c/2 ||theta||^2, gradient c theta, which is the authors'
update run with a negative `weight_decay` argument and `norm_bias` 0 (torch's SGD refuses a negative weight
decay; the spec allows c < 0 only with mu = 0 and the absolute form).

The penalty is added to every mini-batch's mean cross-entropy, as SGD's weight decay is.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..spec import PhaseSpec

FORMS = ("absolute", "squared")


def squared_norm(model: nn.Module) -> torch.Tensor:
    """||theta||_2^2 over every trainable parameter, differentiable."""
    return sum((p * p).sum() for p in model.parameters() if p.requires_grad)


def norm_bias(model: nn.Module, coefficient: float, mu: float, form: str = "absolute") -> torch.Tensor:
    """The norm-bias penalty of `model` (module docstring), a differentiable scalar."""
    if form not in FORMS:
        raise ValueError(f"unknown norm-bias form {form!r} (known: {', '.join(FORMS)})")
    gap = squared_norm(model) - mu ** 2
    return coefficient * gap * gap if form == "squared" else 0.5 * coefficient * gap.abs()


def penalty_of(phase: PhaseSpec) -> Callable[[nn.Module], torch.Tensor] | None:
    """The phase's penalty for `train_phase`, or None when it has none (norm_bias == 0; negative: negative
    weight decay)."""
    if not phase.norm_bias:
        return None
    return lambda model: norm_bias(model, phase.norm_bias, phase.norm_bias_mu, phase.norm_bias_form)
