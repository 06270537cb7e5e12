"""The layer-wise normalized network and its cross-entropy (paper 001, sections 1-2 and appendix A).

Paper 001 divides every layer's weight matrix by its norm, V_k = W_k / rho_k (Frobenius "L2" norm in
Figure 2, entrywise L1 divided by 100 in Figure 9: `normalized_network`'s divisor), so that for a ReLU network, positively homogeneous,
f(V_1..V_K; x) = f(W_1..W_K; x) / (rho_1 ... rho_K): the predictions (argmax) are unchanged and only the
scale of the logits, hence the cross-entropy, changes. Its networks have "no biases apart from the
input layer where the bias is instantiated by one of the input dimensions being a constant" (section 2).

Our convention for biases, which keeps f_normalized = f / prod(rho) exactly for any bias pattern:
- the first layer's bias is a weight column of a constant input: rho_1 = ||[W_1, b_1]||;
- a later layer's bias b_k is not part of rho_k = ||W_k||, and is divided by rho_1 ... rho_k.
Batch norm is first folded into the layer before it (paper 001, Figure 5 caption: "the means and
standard deviations of BN are absorbed into the network's weights and biases").

Layer-wise normalization preserves predictions only for a chain of linear/convolution layers with
positively homogeneous activations and pooling between them. For residual or dense networks paper 001
divides the output by its norm on one example instead (section 2, ResNet-56): see
`output_normalized_cross_entropy`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .batches import batches

from ..errors import BadInput
from .layers import WEIGHT_LAYERS, architecture, fold_batchnorm

HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
               nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
               nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten, nn.Identity, nn.Dropout)


def _layer_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    if norm in ("fro", "l2"):
        return t.double().pow(2).sum().sqrt()
    if norm == "l1":
        return t.double().abs().sum()
    raise ValueError(f"unknown norm {norm!r} (fro or l1)")


def _chain(net: nn.Module) -> list[nn.Module]:
    """The modules of a sequential net, checked to be weight layers or positively homogeneous."""
    if not isinstance(net, nn.Sequential):
        raise BadInput(f"layer-wise normalization needs a sequential network, got {type(net).__name__} "
                       "(residual or dense nets: use output_normalized_cross_entropy)")
    modules = []
    for m in net:
        if isinstance(m, nn.Sequential):
            modules += _chain(m)
        elif isinstance(m, WEIGHT_LAYERS + HOMOGENEOUS):
            modules.append(m)
        else:
            raise BadInput(f"layer-wise normalization keeps predictions only through positively homogeneous "
                           f"modules; {type(m).__name__} is not")
    return modules


@torch.no_grad()
def normalization_factors(model: nn.Module, norm: str = "fro", divisor: float = 1.0) -> list[float]:
    """rho_1, ..., rho_K of the batch-norm-folded network (first layer's bias included, see module doc):
    each layer's norm divided by `divisor`."""
    return _normalize(model, norm, divisor)[1]


@torch.no_grad()
def normalized_network(model: nn.Module, norm: str = "fro", divisor: float = 1.0) -> nn.Module:
    """A copy of `model` (in eval mode) with every layer normalized: W_k / rho_k with rho_k = ||W_k|| / divisor,
    biases as in the module doc; its logits are the original's divided by prod(rho), its predictions the same.

    `divisor` 1 (the default) puts every layer on the unit sphere of its norm. Paper 001's Figure 9 normalizes
    "layerwise by the L1 norm (divided by 100 to avoid numerical issues because the L1 norms are here very
    large)": rho_k = ||W_k||_1 / 100, i.e. every layer on the L1 sphere of radius 100 (`L1_DIVISOR`); with the
    plain L1 norm a layer's entries are so small that the logits vanish and the loss is flat at ln C."""
    return _normalize(model, norm, divisor)[0]


L1_DIVISOR = 100.0  # paper 001, Figure 9's caption


def _normalize(model: nn.Module, norm: str, divisor: float = 1.0) -> tuple[nn.Module, list[float]]:
    if not divisor > 0:
        raise ValueError(f"the divisor of the layer norms must be positive, got {divisor}")
    out = copy.deepcopy(model).eval()
    net = fold_batchnorm(architecture(out))
    if hasattr(out, "net"):
        out.net = net
    else:
        out = net
    rhos: list[float] = []
    cumulative = torch.ones((), dtype=torch.float64)
    for m in _chain(net):
        if not isinstance(m, WEIGHT_LAYERS):
            continue
        w = m.weight.detach()
        if not rhos and m.bias is not None:  # the first layer: bias is a weight column of a constant input
            rho = _layer_norm(torch.cat([w.flatten(), m.bias.detach().flatten()]), norm)
        else:
            rho = _layer_norm(w, norm)
        rho = rho / divisor
        cumulative = cumulative * rho
        rhos.append(float(rho))
        m.weight.copy_((w.double() / rho).to(w.dtype))
        if m.bias is not None:
            m.bias.copy_((m.bias.double() / cumulative).to(m.bias.dtype))
    return out, rhos


@torch.no_grad()
def _cross_entropy(model: nn.Module, x, y: torch.Tensor | None, scale: float = 1.0, batch_size: int = 1024) -> float:
    """Mean cross-entropy of model(x) / scale over the data as measures/batches.py reads them."""
    was_training = model.training
    model.eval()
    try:
        total, n = 0.0, 0
        for xb, yb in batches(x, y, batch_size):
            total += float(F.cross_entropy(model(xb).double() / scale, yb, reduction="sum"))
            n += len(yb)
    finally:
        model.train(was_training)
    return total / max(n, 1)


def normalized_cross_entropy(model: nn.Module, x, y: torch.Tensor | None, norm: str = "fro",
                             batch_size: int = 1024, divisor: float = 1.0) -> float:
    """Mean cross-entropy of the layer-wise normalized network on (x, y) (paper 001, Figures 2 and 9-12;
    equation 10 for the multi-class loss). `norm`: "fro" (L2, the paper's default) or "l1" (entrywise);
    `divisor`: see `normalized_network` (Figure 9: "l1" with L1_DIVISOR)."""
    return _cross_entropy(normalized_network(model, norm, divisor), x, y, batch_size=batch_size)


@torch.no_grad()
def output_normalized_cross_entropy(model: nn.Module, x, y: torch.Tensor | None, reference: torch.Tensor,
                                    batch_size: int = 1024) -> float:
    """Mean cross-entropy of f(x) / ||f(reference)||_2 on (x, y): paper 001's normalization for ResNets
    (section 2, Figure 2c-d: "the norm of the output of each network on one example"). `reference` is
    that one input (with or without a batch dimension of 1)."""
    was_training = model.training
    model.eval()
    try:
        shape = next(iter(batches(x, y, 1)))[0].shape[1:]  # one example's shape
        scale = float(model(reference.reshape(1, *shape)).double().norm())
    finally:
        model.train(was_training)
    return _cross_entropy(model, x, y, scale, batch_size)
