"""Distance travelled between two models (paper 000, section 3.3 and Table 1).

d(W1, W2) = ||W1 - W2||_F / ||W2||_F over all trainable parameters (weights and biases, batch-norm
affine parameters included; running statistics and the input standardization excluded), W2 being
the reference (the start of the phase).
"""
from __future__ import annotations

import torch
from torch import nn


def _parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters()}


def relative_distance(model: nn.Module, reference: nn.Module) -> float:
    """||W - W_ref||_F / ||W_ref||_F over all parameters."""
    a, b = _parameters(model), _parameters(reference)
    diff = sum(((a[k] - b[k]).double() ** 2).sum() for k in b)
    norm = sum((b[k].double() ** 2).sum() for k in b)
    return float((diff / norm).sqrt())


def relative_distance_per_layer(model: nn.Module, reference: nn.Module) -> dict[str, float]:
    """The same ratio for every parameter tensor on its own."""
    a, b = _parameters(model), _parameters(reference)
    return {k: float((a[k] - b[k]).double().norm() / b[k].double().norm().clamp_min(1e-30)) for k in b}
