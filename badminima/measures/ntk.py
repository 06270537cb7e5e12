"""The empirical neural tangent kernel on a few inputs (paper 004 section 4, equations 3-4, Figure 1).

Phi_{ijkl} = sum_p d f_k(x_i)/d phi_p * d f_l(x_j)/d phi_p over all trainable parameters phi, for N
inputs and the k logits: a tensor of shape (N, N, k, k). Paper 004 samples 25 images and compares the
kernels before (Phi_0) and after (Phi_1) training by the relative change ||Phi_1 - Phi_0||_F / ||Phi_0||_F
and the correlation coefficient Cov(Phi_1, Phi_0) / (sigma(Phi_1) sigma(Phi_0)) of the vectorized tensors.

Batch norm: the kernel is taken in eval mode (running statistics; the model's mode is restored after).
Then f(x_i) is a function of x_i alone, so the kernel is that of equation 4 for each pair of inputs and does
not depend on which other inputs were drawn (in train mode the batch statistics would couple the 25 inputs,
and one input alone has no batch statistics); the authors' code also evaluates its kernel in eval mode.

Two exact paths:
- `jacobian_ntk` (any model: convolutions, batch norm, biases, shared weights): the per-input Jacobians J
  (torch.func: vmap over the inputs of jacrev, i.e. the N k backward passes batched, where one backward per
  kernel entry takes N k (1 + N k)), then Phi = J J^T, one matrix product per parameter tensor. Memory:
  N k P numbers. (A plain loop of N k autograd backward passes is as fast on a CPU, within 1.5x either way,
  and slower on a GPU, where vmap runs them as one batch; benchmarks/ntk.py times this path.)
- `_linear_layers_ntk` (all parameters in nn.Linear layers, e.g. MLPs), never forming J: a linear layer
  z = W h + b contributes (delta_ik . delta_jl) (h_i . h_j + 1) to Phi_{ijkl}, delta_ik = d f_k(x_i) / d z
  its output gradient (k backward passes of the batch). It is used only when it can show it is right for
  the model at hand: every trainable parameter belongs to a Linear layer applied once, and on these inputs
  (a) each layer's parameter gradient rebuilt from its recorded inputs and output gradients equals the true
  one, for every logit and a random weighting of the inputs (this fails when a Linear output is modified in
  place, e.g. by nn.ReLU(inplace=True), or a weight is also used outside its layer, e.g. through F.linear),
  and (b) the kernel of the first two inputs equals `jacobian_ntk`'s (this fails when inputs interact inside
  the forward pass). Otherwise `empirical_ntk` takes the general path.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def per_example_jacobians(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """d f(x_i) / d phi for every trainable parameter tensor, name -> (N, k, *param.shape): torch.func's
    reverse-mode Jacobian of one input (k backward passes, batched), vectorized over the N inputs; eval mode."""
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


def jacobian_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (N, N, k, k) NTK as J J^T, one matrix product per parameter tensor (any architecture; module
    docstring)."""
    kernel = None
    for jac in per_example_jacobians(model, x).values():
        j = jac.flatten(2)
        term = torch.einsum("ikp,jlp->ijkl", j, j)
        kernel = term if kernel is None else kernel + term
    return kernel


def empirical_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (N, N, k, k) empirical NTK of `model` on the inputs x (equation 4 of paper 004)."""
    kernel = _linear_layers_ntk(model, x)
    return kernel if kernel is not None else jacobian_ntk(model, x)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to rounding: ||a - b|| <= 1e4 eps ||b|| (1e-3 in float32; the errors this guards against
    are of order 1e-2 and above)."""
    tol = 1e4 * torch.finfo(b.dtype).eps
    return float((a - b).norm()) <= tol * float(b.norm()) + torch.finfo(b.dtype).tiny


def _linear_layers_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The NTK from each linear layer's inputs and output gradients; None when the model is outside what
    this path can show it handles (module docstring)."""
    trainable = _trainable(model)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    owned = [p for m in linears for p in (m.weight, m.bias) if p is not None and p.requires_grad]
    if not trainable or len(owned) != len({id(p) for p in owned}) or {id(p) for p in trainable} != {id(p) for p in owned}:
        return None
    seen: dict[nn.Module, list] = {m: [] for m in linears}
    hooks = [m.register_forward_hook(lambda m, inp, out: seen[m].append((inp[0].detach().clone(), out))) for m in linears]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x)
            if out.dim() != 2 or any(len(v) != 1 or v[0][0].dim() != 2 for v in seen.values()):
                return None
            inputs = [seen[m][0][0] for m in linears]
            outputs = [seen[m][0][1] for m in linears]
            weights = 1 + torch.rand(len(x), generator=torch.Generator().manual_seed(0)).to(out)
            deltas = [[] for _ in linears]  # per layer, per logit: (N, out_features)
            for a in range(out.shape[1]):
                grads = torch.autograd.grad((out[:, a] * weights).sum(), outputs + owned, retain_graph=True,
                                            allow_unused=True)
                rebuilt = []
                for layer, (m, h, d) in enumerate(zip(linears, inputs, grads)):
                    if d is None:
                        d = torch.zeros_like(outputs[layer])
                    deltas[layer].append(d / weights[:, None])
                    rebuilt += [p for p, on in ((d.T @ h, m.weight.requires_grad),
                                                (d.sum(0), m.bias is not None and m.bias.requires_grad)) if on]
                truth = [torch.zeros_like(p) if g is None else g for g, p in zip(grads[len(linears):], owned)]
                if not all(_close(r, t) for r, t in zip(rebuilt, truth)):
                    return None
    except RuntimeError:  # e.g. a recorded output was modified in place and autograd refuses it
        return None
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    kernel = None
    for m, h, delta in zip(linears, inputs, deltas):
        delta = torch.stack(delta)  # (k, N, out)
        gram = (h @ h.T if m.weight.requires_grad else torch.zeros(len(h), len(h)).to(h))
        gram = gram + (1.0 if m.bias is not None and m.bias.requires_grad else 0.0)
        term = torch.einsum("aio,bjo->ijab", delta, delta) * gram[:, :, None, None]
        kernel = term if kernel is None else kernel + term
    if not _close(kernel[:2, :2], jacobian_ntk(model, x[:2])):
        return None
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
