"""Loss-landscape curvature: full-dataset loss, gradient norm and Hessian eigenvalues and trace
(paper 004 section 2, Table 1 and Remark 2.2: loss, gradient norm and minimum Hessian eigenvalue by
"500 iterations of the power method on a shifted Hessian matrix computed on the full dataset";
maximum eigenvalue as the sharpness of Keskar et al. 2016).

Conventions: the loss is the mean cross-entropy over the whole given set, L = (1/n) sum_i CE(f(x_i), y_i),
or with `loss_fn` (a batch-mean loss, loss_fn(outputs, targets)) the size-weighted mean over chunks,
L = sum_b (n_b / n) loss_fn(f(x_b), y_b), which is the mean over examples for any per-example-mean loss and
does not depend on how the data are chunked. The data are (x, y) tensors, cut into chunks of `batch_size`,
or any iterable of (x, y) batches such as a torch DataLoader (its batches are the chunks; n is counted on
each pass, so drop_last or a sampler are honoured; a shuffling loader changes only the summation order);
the model is in eval mode (batch norm uses its running statistics, so L is a sum over examples); all
trainable parameters, flattened in `model.parameters()` order. The Hessian is never formed: products
H v are accumulated over batches by double back-propagation, and every operator counts them (`hvps`)
so Lanczos and power iteration can be compared at equal cost.

Every eigenvalue comes with `converged` and `residual`: the residual r = ||H v - lambda v|| of the unit
vector v it was read from (so some eigenvalue of H lies within r of lambda), and converged means
r <= tol * |lambda|, relative to the eigenvalue being reported (not to the spectrum's scale, which would
let a lambda_min near 0 pass with an error as large as tol * lambda_max). Lanczos (`lanczos_eigenvalue`)
is the headline estimate of both ends; the shifted power method (`extreme_eigenvalues_power`) is paper
004's protocol, kept for comparison. Small eigenvalues beside a large lambda_max need float64 products
(`HessianOperator(..., dtype=torch.float64)`): float32 rounding alone is ~1e-7 lambda_max per product.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import batches, check


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _weighted_loss(model, xb, yb, loss_fn, dtype, device) -> tuple[torch.Tensor, int]:
    """(n_b * mean loss of the chunk, n_b): summed over chunks and divided by n this is the full-set mean."""
    if xb.is_floating_point() and dtype is not None:
        xb = xb.to(dtype)
    xb, yb = xb.to(device), yb.to(device)
    out = model(xb)
    if loss_fn is None:
        return F.cross_entropy(out, yb, reduction="sum"), len(yb)
    return loss_fn(out, yb) * len(yb), len(yb)


def full_batch_loss_and_gradient(model: nn.Module, x, y=None, batch_size: int = 1000,
                                 loss_fn=None) -> tuple[float, torch.Tensor]:
    """(L, grad L as one flat vector) over the whole set, in eval mode; data and `loss_fn` as in the module doc."""
    params = _params(model)
    was_training = model.training
    model.eval()
    try:
        total, n = 0.0, 0
        grad = [torch.zeros_like(p) for p in params]
        for xb, yb in batches(x, y, batch_size):
            loss, nb = _weighted_loss(model, xb, yb, loss_fn, params[0].dtype, params[0].device)
            for g, gb in zip(grad, torch.autograd.grad(loss, params)):
                g += gb
            total, n = total + float(loss.detach()), n + nb
    finally:
        model.train(was_training)
    return total / n, torch.cat([g.flatten() for g in grad]) / n


def gradient_norm(model: nn.Module, x, y=None, batch_size: int = 1000, loss_fn=None) -> float:
    """||grad L||_2 over the whole set (paper 004, Table 1 "Grad.")."""
    return float(full_batch_loss_and_gradient(model, x, y, batch_size, loss_fn)[1].double().norm())


class HessianOperator:
    """v -> H v for the full-set loss (mean cross-entropy unless `loss_fn`; data as tensors x, y or, with
    y=None, a DataLoader x: see the module doc); `hvps` counts products, and `progress(hvps)`, if given, is
    called after each one (badminima.progress.Measures.products). `dtype` (e.g. torch.float64): products
    of a copy of the model (and inputs, chunk by chunk) in that precision. `keep_graph`: when the data are
    tensors that fit in one chunk, build the gradient's graph once and reuse it for every product (one
    backward pass a product instead of a forward and two backwards; PyHessian's single-batch mode does the
    same), holding that graph in memory for the operator's lifetime; ignored for several chunks."""

    def __init__(self, model: nn.Module, x, y=None, batch_size: int = 1000,
                 dtype: torch.dtype | None = None, progress=None, loss_fn=None, keep_graph: bool = False):
        check(x, y)
        if dtype is not None and next(model.parameters()).dtype != dtype:
            model = copy.deepcopy(model).to(dtype)
        self.model, self.x, self.y, self.batch_size = model, x, y, batch_size
        self.loss_fn, self.progress = loss_fn, progress
        self.keep_graph = keep_graph and y is not None and len(y) <= batch_size
        self._grads = None
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
        if self.keep_graph:
            return self._kept_graph_product(vs)
        was_training, n = self.model.training, 0
        self.model.eval()
        try:
            for xb, yb in batches(self.x, self.y, self.batch_size):
                loss, nb = _weighted_loss(self.model, xb, yb, self.loss_fn, self.dtype, self.device)
                grads = torch.autograd.grad(loss, self.params, create_graph=True)
                dot = sum((g * u).sum() for g, u in zip(grads, vs))
                for o, h in zip(out, torch.autograd.grad(dot, self.params)):
                    o += h
                n += nb
        finally:
            self.model.train(was_training)
        if self.progress is not None:
            self.progress(self.hvps)
        return torch.cat([o.flatten() for o in out]) / n

    def _kept_graph_product(self, vs: list[torch.Tensor]) -> torch.Tensor:
        if self._grads is None:
            was_training = self.model.training
            self.model.eval()
            try:
                loss, n = _weighted_loss(self.model, self.x, self.y, self.loss_fn, self.dtype, self.device)
                self._grads = torch.autograd.grad(loss / n, self.params, create_graph=True)
            finally:
                self.model.train(was_training)
        out = torch.autograd.grad(self._grads, self.params, grad_outputs=vs, retain_graph=True)
        if self.progress is not None:
            self.progress(self.hvps)
        return torch.cat([o.flatten() for o in out])

    def linear_operator(self):
        """The operator as a scipy LinearOperator on float64 numpy vectors."""
        from scipy.sparse.linalg import LinearOperator

        def mv(v):
            return self.matvec(torch.from_numpy(np.asarray(v, dtype=np.float64).ravel())).double().cpu().numpy()

        return LinearOperator((self.dim, self.dim), matvec=mv, dtype=np.float64)


def hessian_operator(model: nn.Module, data, loss_fn=None, chunk_size: int = 1000,
                     dtype: torch.dtype | None = None, progress=None, keep_graph: bool = False) -> HessianOperator:
    """The Hessian of the full-set loss of `model` on `data`, an (x, y) pair of tensors (cut into chunks of
    `chunk_size`) or a DataLoader of (x, y) batches; `loss_fn(outputs, targets)` a batch-mean loss, mean
    cross-entropy by default. See HessianOperator and the module doc for the conventions."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
    else:
        x, y = data, None
    return HessianOperator(model, x, y, chunk_size, dtype, progress, loss_fn, keep_graph)


def lanczos_eigenvalue(op: HessianOperator, which: str = "LA", tol: float = 1e-4, seed: int = 0,
                       max_hvps: int | None = None, ncv: int = 20, atol: float = 0.0) -> dict:
    """The largest ("LA") or smallest ("SA") Hessian eigenvalue by implicitly restarted Lanczos
    (scipy.sparse.linalg.eigsh, ARPACK) on Hessian-vector products, relative tolerance `tol`, at most
    `max_hvps` products (None: ARPACK's own cap).

    The value and its certificate come from Ritz pairs whose products are known: theta, the extreme
    eigenvalue of H restricted to the span of the last 2*ncv vectors ARPACK multiplied, is a Rayleigh
    quotient (so lambda_max >= theta for "LA", lambda_min <= theta for "SA"), and its residual
    ||H u - theta u|| follows from the stored products by linearity. ARPACK's restarts keep its basis only
    implicitly, as combinations of vectors multiplied long before, so that span alone loses the best
    direction after two restarts: every ncv products the better of (that Ritz pair, the pair carried from the
    last check) is carried on - the more extreme value, or a certified one within tol of it - and the answer
    never gets worse as products are added. (Carried pairs are compared, not merged into the span: the carried
    vector lies nearly in it, and the near-singular basis would multiply the products' rounding.) It gives an
    answer when ARPACK stops unconverged, and stops ARPACK once its certificate holds. When ARPACK itself
    converges, its Ritz vector is a candidate too (one more product, for its residual, within the budget).
    Memory: 4 ncv + 2 vectors of the parameters' size.
    Returns {"eigenvalue", "hvps" (products of this call), "converged" (residual <= tol |eigenvalue| + atol;
    atol: the precision of the products, for an eigenvalue at 0), "residual"}."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    if which not in ("LA", "SA"):
        raise ValueError(f"which must be 'LA' or 'SA', not {which!r}")
    start = op.hvps
    ncv = min(ncv, op.dim)
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    best: list[tuple[np.ndarray, np.ndarray]] = []  # the best Ritz pair so far, (u, H u)

    def product(v: np.ndarray) -> np.ndarray:
        return op.matvec(torch.from_numpy(v)).double().cpu().numpy()

    rcond = float(torch.finfo(op.dtype).eps) ** 0.5  # see _rayleigh_ritz

    def choose(candidates):
        """The most extreme Rayleigh quotient, or a certified one within tol of it (the smallest residual)."""
        extreme = (max if which == "LA" else min)(c[0] for c in candidates)
        near = [c for c in candidates if abs(c[0] - extreme) <= tol * abs(extreme) + atol]
        certified = [c for c in near if c[1] <= tol * abs(c[0]) + atol]
        return min(certified, key=lambda c: c[1]) if certified else next(c for c in near if c[0] == extreme)

    def readout(extra=()) -> tuple[float, float]:
        candidates = [_rayleigh_ritz(kept, which, rcond)] if kept else []
        candidates += [_ritz_pair(u, hu) for u, hu in [*best, *extra]]
        value, residual, u, hu = choose(candidates)
        best[:] = [(u, hu)]
        return value, residual

    def mv(v):
        if max_hvps is not None and op.hvps - start >= max_hvps:
            raise _Stop
        if len(kept) >= ncv and (op.hvps - start) % ncv == 0:  # stop on our own certificate, often before ARPACK's
            value, residual = readout()
            if residual <= tol * abs(value) + atol:
                raise _Stop
        v = np.asarray(v, dtype=np.float64).ravel().copy()
        kept.append((v, product(v)))
        del kept[:-2 * ncv]
        return kept[-1][1]

    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    extra = []
    try:
        _, vectors = eigsh(LinearOperator((op.dim, op.dim), matvec=mv, dtype=np.float64), k=1, which=which, tol=tol,
                           v0=v0, ncv=ncv if ncv < op.dim else None,
                           maxiter=None if max_hvps is None else max_hvps)
        u = np.ascontiguousarray(vectors[:, 0], dtype=np.float64)
        if max_hvps is None or op.hvps - start < max_hvps:  # the budget holds, this product included
            extra = [(u, product(u))]
    except (ArpackNoConvergence, _Stop):
        pass
    value, residual = readout(extra)
    return {"eigenvalue": value, "hvps": op.hvps - start, "converged": bool(residual <= tol * abs(value) + atol),
            "residual": residual}


class _Stop(Exception):
    """Raised inside eigsh's matrix-vector callback when the product budget is spent or the answer certified."""


def _ritz_pair(u: np.ndarray, hu: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(theta, ||H u - theta u||, u, H u) for a unit vector u and its product."""
    theta = float(u @ hu)
    return theta, float(np.linalg.norm(hu - theta * u)), u, hu


def _rayleigh_ritz(pairs: list[tuple[np.ndarray, np.ndarray]], which: str, rcond: float
                   ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(theta, ||H u - theta u||, u, H u) for the extreme Ritz pair of the span of the stored (v, H v) pairs.
    The span's orthonormal basis comes from the SVD of the v's, and H of it by linearity from the H v's, which
    divides by the singular values: a direction with sigma below rcond * sigma_max is known only as a small
    difference of nearly parallel vectors, and H of it would carry the products' rounding (relative eps of
    their dtype) multiplied by 1 / sigma, so it is dropped. rcond = sqrt(eps) keeps that error below
    sqrt(eps) ||H||; the Ritz values are then those of a slightly smaller subspace, still Rayleigh quotients."""
    v = np.stack([a for a, _ in pairs], 1)
    hv = np.stack([b for _, b in pairs], 1)
    basis, sigma, wt = np.linalg.svd(v, full_matrices=False)
    keep = sigma > sigma[0] * rcond
    basis, h_basis = basis[:, keep], hv @ (wt[keep].T / sigma[keep])  # H basis, by linearity
    small = basis.T @ h_basis
    thetas, vectors = np.linalg.eigh((small + small.T) / 2)
    i = -1 if which == "LA" else 0
    u, hu = basis @ vectors[:, i], h_basis @ vectors[:, i]
    return float(thetas[i]), float(np.linalg.norm(hu - thetas[i] * u)), u, hu


def power_iteration(op: HessianOperator, shift: float = 0.0, iterations: int = 500, tol: float = 1e-4,
                    seed: int = 0, atol: float = 0.0) -> dict:
    """The eigenvalue of largest magnitude of A = H - shift*I by the power method, read off as the Rayleigh
    quotient theta = v^T A v of the unit iterate v; it estimates the eigenvalue lambda = theta + shift of H.
    Stops after `iterations` products or once the residual ||A v - theta v|| = ||H v - lambda v|| <=
    tol*|lambda| (then an eigenvalue of H lies within tol*|lambda| of lambda); tol=0 always runs
    `iterations` products, paper 004's protocol. The test is relative to lambda, the eigenvalue sought,
    not to theta: shifted by lambda_max, |theta| ~ lambda_max, and tol*|theta| would accept a lambda_min
    off by tol*lambda_max. A residual test, not the change of theta between iterations: with a clustered
    spectrum (the shifted Hessian: most eigenvalues near -shift) theta creeps and a change test stops far
    from the answer. `atol` (default 0) is added to the bound: the precision of the products, for an
    eigenvalue at 0. Returns {"eigenvalue" (theta, of A), "hvps", "converged", "residual"}; `op` needs `dim`,
    `dtype`, `device`, `hvps` and `matvec`."""
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
        if residual <= tol * abs(value + shift) + atol or norm == 0:
            converged = residual <= tol * abs(value + shift) + atol
            break
        v = av / norm
    return {"eigenvalue": value, "hvps": op.hvps - start, "converged": converged, "residual": residual}


def extreme_eigenvalues_power(op: HessianOperator, iterations: int = 500, tol: float = 1e-4, seed: int = 0,
                              atol: float = 0.0) -> dict:
    """Largest and smallest Hessian eigenvalues by two power iterations, as paper 004 does: first the
    dominant eigenvalue lambda_d of H, then the dominant eigenvalue mu of the shifted H - lambda_d I, which
    is lambda_other - lambda_d (lambda_min - lambda_max when lambda_d = lambda_max > 0). Each end has its own
    certificate (see `power_iteration`, relative to that end's eigenvalue). Returns {"max", "min", "hvps",
    "converged" (both ends), and per end "max_converged", "max_residual", "max_hvps" and the same for min}."""
    first = power_iteration(op, 0.0, iterations, tol, seed, atol)
    d = first["eigenvalue"]
    second = power_iteration(op, d, iterations, tol, seed + 1, atol)
    other = second["eigenvalue"] + d
    top, bottom = (first, second) if d >= other else (second, first)
    out = {"max": max(d, other), "min": min(d, other), "hvps": first["hvps"] + second["hvps"],
           "converged": first["converged"] and second["converged"]}
    for end, run in (("max", top), ("min", bottom)):
        out |= {f"{end}_converged": run["converged"], f"{end}_residual": run["residual"], f"{end}_hvps": run["hvps"]}
    return out


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
