"""Loss-landscape curvature: full-dataset loss, gradient norm and Hessian eigenvalues and trace
(paper 004 section 2, Table 1 and Remark 2.2: loss, gradient norm and minimum Hessian eigenvalue by
"500 iterations of the power method on a shifted Hessian matrix computed on the full dataset";
maximum eigenvalue as the sharpness of Keskar et al. 2016).

Conventions: the loss is the mean cross-entropy over the whole given set, L = (1/n) sum_i CE(f(x_i), y_i);
the model is in eval mode (batch norm uses its running statistics, so L is a sum over examples); all
trainable parameters, flattened in `model.parameters()` order. The Hessian is never formed: products
H v are accumulated over batches by double back-propagation, and every operator counts them (`hvps`)
so Lanczos and power iteration can be compared at equal cost.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int):
    for i in range(0, len(y), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


def full_batch_loss_and_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                 batch_size: int = 1000) -> tuple[float, torch.Tensor]:
    """(L, grad L as one flat vector) over the whole set, in eval mode."""
    params = _params(model)
    was_training = model.training
    model.eval()
    try:
        total = 0.0
        grad = [torch.zeros_like(p) for p in params]
        for xb, yb in _batches(x, y, batch_size):
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / len(y)
            for g, gb in zip(grad, torch.autograd.grad(loss, params)):
                g += gb
            total += float(loss.detach())
    finally:
        model.train(was_training)
    return total, torch.cat([g.flatten() for g in grad])


def gradient_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """||grad L||_2 over the whole set (paper 004, Table 1 "Grad.")."""
    return float(full_batch_loss_and_gradient(model, x, y, batch_size)[1].double().norm())


class HessianOperator:
    """v -> H v for the full-set mean cross-entropy (see the module doc); `hvps` counts products, and
    `progress(hvps)`, if given, is called after each one (badminima.progress.Measures.products)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, progress=None):
        self.model, self.x, self.y, self.batch_size = model, x, y, batch_size
        self.progress = progress
        self.params = _params(model)
        self.dim = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.hvps = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.hvps += 1
        v = v.to(dtype=self.dtype, device=self.device)
        chunks = list(torch.split(v, [p.numel() for p in self.params]))
        vs = [c.reshape(p.shape) for c, p in zip(chunks, self.params)]
        out = [torch.zeros_like(p) for p in self.params]
        was_training = self.model.training
        self.model.eval()
        try:
            for xb, yb in _batches(self.x, self.y, self.batch_size):
                loss = F.cross_entropy(self.model(xb), yb, reduction="sum") / len(self.y)
                grads = torch.autograd.grad(loss, self.params, create_graph=True)
                dot = sum((g * u).sum() for g, u in zip(grads, vs))
                for o, h in zip(out, torch.autograd.grad(dot, self.params)):
                    o += h
        finally:
            self.model.train(was_training)
        if self.progress is not None:
            self.progress(self.hvps)
        return torch.cat([o.flatten() for o in out])

    def linear_operator(self):
        """The operator as a scipy LinearOperator on float64 numpy vectors."""
        from scipy.sparse.linalg import LinearOperator

        def mv(v):
            return self.matvec(torch.from_numpy(np.asarray(v, dtype=np.float64).ravel())).double().cpu().numpy()

        return LinearOperator((self.dim, self.dim), matvec=mv, dtype=np.float64)


def lanczos_eigenvalue(op: HessianOperator, which: str = "LA", tol: float = 1e-4, seed: int = 0) -> dict:
    """The largest ("LA") or smallest ("SA") Hessian eigenvalue by implicitly restarted Lanczos
    (scipy.sparse.linalg.eigsh, ARPACK) on the Hessian-vector product, relative tolerance `tol`.
    Returns {"eigenvalue", "hvps"} (products used by this call)."""
    from scipy.sparse.linalg import eigsh

    start = op.hvps
    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    value = eigsh(op.linear_operator(), k=1, which=which, tol=tol, v0=v0, return_eigenvectors=False)[0]
    return {"eigenvalue": float(value), "hvps": op.hvps - start}


def power_iteration(op: HessianOperator, shift: float = 0.0, iterations: int = 500, tol: float = 1e-4,
                    seed: int = 0) -> dict:
    """The eigenvalue of largest magnitude of A = H - shift*I by the power method, read off as the Rayleigh
    quotient theta = v^T A v of the unit iterate v. Stops after `iterations` products or once the residual
    ||A v - theta v|| <= tol*|theta| (then theta is within tol*|theta| of an eigenvalue of A); tol=0 always
    runs `iterations` products, paper 004's protocol. A residual test, not the change of theta between
    iterations: with a clustered spectrum (the shifted Hessian: most eigenvalues near -shift) theta creeps
    and a change test stops far from the answer. Returns {"eigenvalue" (of A), "hvps", "converged",
    "residual"}; `op` needs `dim`, `dtype`, `device`, `hvps` and `matvec`."""
    start = op.hvps
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(op.dim, generator=g, dtype=torch.float64).to(dtype=op.dtype, device=op.device)
    v = v / v.norm()
    value, residual, converged = float("nan"), float("inf"), False
    for _ in range(iterations):
        av = op.matvec(v) - shift * v
        value = float((v.double() * av.double()).sum())
        residual = float((av.double() - value * v.double()).norm())
        norm = av.norm()
        if residual <= tol * abs(value) or norm == 0:
            converged = True
            break
        v = av / norm
    return {"eigenvalue": value, "hvps": op.hvps - start, "converged": converged, "residual": residual}


def extreme_eigenvalues_power(op: HessianOperator, iterations: int = 500, tol: float = 1e-4, seed: int = 0) -> dict:
    """Largest and smallest Hessian eigenvalues by two power iterations, as paper 004 does: first the
    dominant eigenvalue lambda_d of H, then the dominant eigenvalue mu of the shifted H - lambda_d I, which
    is lambda_other - lambda_d (lambda_min - lambda_max when lambda_d = lambda_max > 0). Returns
    {"max", "min", "hvps", "converged"}."""
    first = power_iteration(op, 0.0, iterations, tol, seed)
    d = first["eigenvalue"]
    second = power_iteration(op, d, iterations, tol, seed + 1)
    other = second["eigenvalue"] + d
    return {"max": max(d, other), "min": min(d, other), "hvps": first["hvps"] + second["hvps"],
            "converged": first["converged"] and second["converged"]}


def hutchinson_trace(op: HessianOperator, samples: int = 100, seed: int = 0) -> dict:
    """tr H estimated as the mean of v^T H v over Rademacher vectors v (Hutchinson 1989).
    Returns {"trace", "std_error", "hvps"}."""
    g = torch.Generator().manual_seed(seed)
    start = op.hvps
    values = []
    for _ in range(samples):
        v = (torch.randint(0, 2, (op.dim,), generator=g) * 2 - 1).to(op.dtype).to(op.device)
        values.append(float((v.double() * op.matvec(v).double()).sum()))
    mean = math.fsum(values) / samples
    spread = math.sqrt(math.fsum((a - mean) ** 2 for a in values) / (samples - 1) / samples) if samples > 1 else float("nan")
    return {"trace": mean, "std_error": spread, "hvps": op.hvps - start}
