"""The empirical neural tangent kernel on a few inputs (paper 004 section 4, equations 3-4, Figure 1).

Phi_{ijkl} = sum_p d f_k(x_i)/d phi_p * d f_l(x_j)/d phi_p over all trainable parameters phi, for N
inputs and the k logits: a tensor of shape (N, N, k, k). The model is in eval mode (batch norm uses its
running statistics) and its mode is restored. Paper 004 samples 25 images and compares the kernels
before (Phi_0) and after (Phi_1) training by the relative change ||Phi_1 - Phi_0||_F / ||Phi_0||_F and
the correlation coefficient Cov(Phi_1, Phi_0) / (sigma(Phi_1) sigma(Phi_0)) of the vectorized tensors.
Memory: the Jacobian holds N * k * (number of parameters) numbers.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap


def per_example_jacobians(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """d f(x_i) / d phi for every trainable parameter tensor: name -> (N, k, *param.shape)."""
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def f(p, xi):
        return functional_call(model, (p, frozen, buffers), (xi.unsqueeze(0),)).squeeze(0)

    was_training = model.training
    model.eval()
    try:
        return vmap(jacrev(f), in_dims=(None, 0))(params, x)
    finally:
        model.train(was_training)


def empirical_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (N, N, k, k) empirical NTK of `model` on the inputs x (equation 4 of paper 004)."""
    kernel = None
    for jac in per_example_jacobians(model, x).values():
        j = jac.flatten(2)
        term = torch.einsum("ikp,jlp->ijkl", j, j)
        kernel = term if kernel is None else kernel + term
    return kernel


def ntk_norm(kernel: torch.Tensor) -> float:
    """||Phi||_F (paper 004, Figure 1a and Figure 3 left)."""
    return float(kernel.double().norm())


def ntk_relative_change(after: torch.Tensor, before: torch.Tensor) -> float:
    """||Phi_1 - Phi_0||_F / ||Phi_0||_F (paper 004 section 4)."""
    return float((after.double() - before.double()).norm() / before.double().norm())


def ntk_correlation(after: torch.Tensor, before: torch.Tensor) -> float:
    """Pearson correlation of the vectorized kernels, Cov(Phi_1, Phi_0) / (sigma(Phi_1) sigma(Phi_0))."""
    a, b = after.double().flatten(), before.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def ntk_change(before: nn.Module, after: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """The kernels of two models (e.g. at initialization and after training) on x, compared."""
    k0, k1 = empirical_ntk(before, x), empirical_ntk(after, x)
    return {"norm_before": ntk_norm(k0), "norm_after": ntk_norm(k1),
            "relative_change": ntk_relative_change(k1, k0), "correlation": ntk_correlation(k1, k0)}
