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
- `jacobian_ntk` (any model: convolutions, batch norm, biases, shared weights): the Jacobian J (N k rows,
  P columns) from one forward per input and one backward per (input, logit), then Phi = J J^T as one
  matrix product - N k backward passes where one backward per kernel entry takes N k (1 + N k). Memory:
  N k P numbers.
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


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, k, P): d f_k(x_i) / d phi over the trainable parameters flattened in `model.parameters()` order,
    one input at a time in eval mode (module docstring)."""
    params = _trainable(model)
    was_training = model.training
    model.eval()
    rows = None
    try:
        with torch.enable_grad():
            for i in range(len(x)):
                out = model(x[i:i + 1]).reshape(-1)
                if rows is None:
                    rows = torch.empty(len(x), len(out), sum(p.numel() for p in params), dtype=out.dtype,
                                       device=out.device)
                for a in range(len(out)):
                    grads = torch.autograd.grad(out[a], params, retain_graph=a + 1 < len(out), allow_unused=True)
                    torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)],
                              out=rows[i, a])
    finally:
        model.train(was_training)
    return rows


def jacobian_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (N, N, k, k) NTK as J J^T (any architecture; module docstring)."""
    jac = jacobian(model, x)
    n, k = jac.shape[:2]
    flat = jac.reshape(n * k, -1)
    return (flat @ flat.T).reshape(n, k, n, k).permute(0, 2, 1, 3)


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
