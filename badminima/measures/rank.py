"""Ranks of weight matrices and convolution operators (paper 004 section 5, Figure 2, Tables 4, 9, 10).

Conventions (each a function of the singular values s, s_1 the largest):
- `effective_rank`: ||s||_1 / ||s||_2 = ||W||_* / ||W||_F, paper 004's r(W) (borrowed from Langenberg
  et al. 2019; its code computes it from the singular values);
- `entropy_effective_rank`: exp(H(p)), p = s / ||s||_1 (Roy & Vetterli 2007);
- `stable_rank`: ||W||_F^2 / ||W||_2^2 = sum s^2 / s_1^2;
- `numerical_rank`: #{s_i > rtol * s_1}.
Convolutions are the operator on the layer's input size with circular padding by the FFT method
(Sedghi et al. 2018, as 004 does), or the kernel reshaped to (out, in*k*k); see
`norms.layer_singular_values`. Weights are taken as they are (`fold=False`, the default): the authors
measure the raw convolution weights of their ResNet-18 (Rank_study/singular_values.py), batch norm not
folded; `fold=True` folds each batch norm into the layer before it first.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import fold_batchnorm, input_sizes, weight_layers
from .norms import layer_singular_values


def effective_rank(s: torch.Tensor) -> float:
    """||s||_1 / ||s||_2 (paper 004, section 5: r(W) = ||W||_* / ||W||_F)."""
    s = s.double()
    return float(s.abs().sum() / s.norm())


def entropy_effective_rank(s: torch.Tensor) -> float:
    """exp(-sum p_i log p_i) with p = s / ||s||_1 (Roy & Vetterli 2007); 0 log 0 = 0."""
    p = s.double().abs()
    p = p[p > 0] / p.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def stable_rank(s: torch.Tensor) -> float:
    """||W||_F^2 / ||W||_2^2."""
    s = s.double()
    return float((s ** 2).sum() / s.abs().max() ** 2)


def numerical_rank(s: torch.Tensor, rtol: float = 1e-3) -> int:
    """The number of singular values above rtol times the largest."""
    s = s.double().abs()
    return int((s > rtol * s.max()).sum())


def layer_ranks(model: nn.Module, sample: torch.Tensor | None = None, method: str = "circular", rtol: float = 1e-3,
                fold: bool = False) -> dict[str, dict[str, float]]:
    """All four ranks of every linear/convolution layer (raw weights; batch norm folded first if `fold`), plus
    the layer's number of singular values `size`. Convolutions by `method` ("circular": operator on the input
    size seen on `sample`, which is then required; "reshaped": the kernel)."""
    net = fold_batchnorm(model, torch.float64) if fold else model
    sample = sample.double() if (sample is not None and fold) else sample
    sizes = input_sizes(net, sample) if (method == "circular" and sample is not None) else {}
    out = {}
    for name, layer in weight_layers(net).items():
        s = layer_singular_values(layer, sizes.get(name), method)
        out[name] = {"effective_rank": effective_rank(s), "entropy_effective_rank": entropy_effective_rank(s),
                     "stable_rank": stable_rank(s), "numerical_rank": numerical_rank(s, rtol), "size": int(s.numel())}
    return out


def mean_effective_rank(ranks: dict[str, dict[str, float]], key: str = "effective_rank") -> float:
    """The average of one rank over layers (a one-number summary of `layer_ranks`)."""
    values = [r[key] for r in ranks.values()]
    return math.fsum(values) / len(values) if values else float("nan")
