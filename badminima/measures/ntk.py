"""The empirical neural tangent kernel on a few inputs (paper 004 section 4, equations 3-4, Figure 1).

Phi_{ijkl} = sum_p d f_k(x_i)/d phi_p * d f_l(x_j)/d phi_p over all trainable parameters phi, for N
inputs and the k logits: a tensor of shape (N, N, k, k). The model is in eval mode (batch norm uses its
running statistics) and its mode is restored. Paper 004 samples 25 images and compares the kernels
before (Phi_0) and after (Phi_1) training by the relative change ||Phi_1 - Phi_0||_F / ||Phi_0||_F and
the correlation coefficient Cov(Phi_1, Phi_0) / (sigma(Phi_1) sigma(Phi_0)) of the vectorized tensors.
Memory: the Jacobian holds N * k * (number of parameters) numbers.

Networks whose parameters all sit in linear layers (MLPs) take a faster, exact path that never
forms the Jacobian: a linear layer z = W h + b contributes (delta_ik . delta_jl) (h_i . h_j + 1) to
Phi_{ijkl}, delta_ik = d f_k(x_i) / d z being its output gradient (k backward passes of the batch).
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
    kernel = _linear_layers_ntk(model, x)
    return kernel if kernel is not None else jacobian_ntk(model, x)


def jacobian_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The NTK by contracting the per-example Jacobians (any architecture)."""
    kernel = None
    for jac in per_example_jacobians(model, x).values():
        j = jac.flatten(2)
        term = torch.einsum("ikp,jlp->ijkl", j, j)
        kernel = term if kernel is None else kernel + term
    return kernel


def _linear_layers_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The NTK from each linear layer's inputs and output gradients; None when the model has
    parameters outside nn.Linear, or a linear layer that is not applied once to (N, features)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not trainable or {id(p) for p in trainable} != {id(p) for m in linears for p in m.parameters() if p.requires_grad}:
        return None
    seen: dict[nn.Module, list] = {m: [] for m in linears}
    hooks = [m.register_forward_hook(lambda m, inp, out: seen[m].append((inp[0].detach(), out))) for m in linears]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x)
            if any(len(v) != 1 or v[0][0].dim() != 2 for v in seen.values()):
                return None
            outputs = [seen[m][0][1] for m in linears]
            deltas = [torch.stack(d) for d in zip(*(torch.autograd.grad(out[:, a].sum(), outputs, retain_graph=True)
                                                    for a in range(out.shape[1])))]  # per layer: (k, N, out)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    kernel = None
    for m, delta in zip(linears, deltas):
        h = seen[m][0][0]
        inputs = h @ h.T + (1.0 if m.bias is not None and m.bias.requires_grad else 0.0)
        if not m.weight.requires_grad:
            inputs = inputs - h @ h.T
        term = torch.einsum("aio,bjo->ijab", delta, delta) * inputs[:, :, None, None]
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
