"""The Hessian's spectrum beyond its ends: the k largest eigenvalues, and the eigenvalue density by
stochastic Lanczos quadrature (SLQ; Ghorbani, Krishnan & Xiao 2019, "An Investigation into Neural Net
Optimization via Hessian Eigenvalue Density", ICML, section 2 and appendix; Golub & Welsch 1969 for the
quadrature rule; Lin, Saad & Yang 2016 for the broadened density).

The operator is any `op` with `dim`, `dtype`, `device`, `hvps` and `matvec` (HessianOperator, on tensors
or a DataLoader, `curvature.hessian_operator`). SLQ conventions: each probe is a Rademacher vector scaled
to unit norm, v = u / sqrt(p); m steps of Lanczos from v with full reorthogonalisation give the m x m
tridiagonal T = Q^T H Q; its eigenvalues t_i (Ritz values) are the quadrature nodes and the squared first
components of its unit eigenvectors w_i = (e_1^T s_i)^2 the weights, so sum_i w_i f(t_i) approximates
v^T f(H) v, exactly for polynomials f of degree <= 2m - 1. Since E[v^T f(H) v] = tr f(H) / p, averaging over
probes estimates the normalised spectral measure phi(t) = (1/p) sum_j delta(t - lambda_j); the weights of one
probe sum to 1. Lanczos stops early (fewer than m nodes) when the Krylov space is exhausted (beta below
1e-10 times the largest |alpha| seen): then the nodes are exact eigenvalues of H. The density on a grid is
phi convolved with a Gaussian of width sigma (`density_on_grid`), as in Ghorbani et al. (their eq. 5).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def top_eigenvalues(op, k: int = 5, tol: float = 1e-4, seed: int = 0, ncv: int | None = None,
                    max_hvps: int | None = None) -> dict:
    """The k largest (algebraic) eigenvalues by implicitly restarted Lanczos (scipy eigsh, which="LA"),
    largest first. Each comes with its residual ||H u - lambda u|| for its unit Ritz vector u (computed with
    one more product each, counted in `hvps`) and `converged` (residual <= tol * |lambda|; some eigenvalue of
    H then lies within that distance). ARPACK running out of `max_hvps` products returns what it has.
    Returns {"eigenvalues", "residuals", "converged" (numpy arrays, length <= k), "hvps"}."""
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    start = op.hvps
    k = min(k, op.dim - 1)
    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    try:
        values, vectors = eigsh(op.linear_operator() if hasattr(op, "linear_operator") else _as_linear(op), k=k,
                                which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=max_hvps)
    except ArpackNoConvergence as exc:
        values, vectors = exc.eigenvalues, exc.eigenvectors
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    residuals = np.array([np.linalg.norm(_apply(op, u) - lam * u) for lam, u in zip(values, vectors.T)])
    return {"eigenvalues": values, "residuals": residuals, "converged": residuals <= tol * np.abs(values),
            "hvps": op.hvps - start}


def _apply(op, v: np.ndarray) -> np.ndarray:
    return op.matvec(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))).double().cpu().numpy()


def _as_linear(op):
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator((op.dim, op.dim), matvec=lambda v: _apply(op, np.ravel(v)), dtype=np.float64)


def lanczos_tridiagonal(op, v: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta): the diagonal and off-diagonal of T after at most `steps` Lanczos steps from the unit
    vector v, every new vector reorthogonalised against all earlier ones (twice, in float64)."""
    basis = [v.double()]
    alphas, betas = [], []
    scale = 0.0
    for j in range(min(steps, op.dim)):
        w = op.matvec(basis[j]).double()
        alpha = float(w @ basis[j])
        alphas.append(alpha)
        scale = max(scale, abs(alpha))
        q = torch.stack(basis, 1)
        for _ in range(2):
            w = w - q @ (q.T @ w)
        beta = float(w.norm())
        if j == min(steps, op.dim) - 1 or beta <= 1e-10 * max(scale, 1e-300):
            break
        betas.append(beta)
        basis.append(w / beta)
    return np.array(alphas), np.array(betas)


def lanczos_largest(op, tol: float = 1e-3, max_steps: int = 200, seed: int = 0) -> dict:
    """lambda_max by plain Lanczos (full reorthogonalisation) from a Gaussian start, stopped by the
    standard a-posteriori error estimate rather than the residual alone: after j steps the top Ritz pair
    (theta_1, u) has residual r = beta_j |s_j1| (no extra product) and, if no other eigenvalue of H lies
    above the second Ritz value theta_2, lambda_max lies in [theta_1, theta_1 + r^2 / (theta_1 - theta_2)]
    (Kato-Temple; Parlett, "The Symmetric Eigenvalue Problem", section 10.2), so it stops once
    r^2 / (theta_1 - theta_2) <= tol * |theta_1|. theta_2 standing in for lambda_2 is the estimate's one
    assumption (it fails only while Lanczos has not yet seen an eigenvalue above theta_2). theta_1 is a
    Rayleigh quotient: lambda_max >= theta_1 always. Far fewer products than a residual test at the same tol
    (the eigenvalue's error is quadratic in the residual). Returns {"eigenvalue", "error_bound",
    "residual", "converged", "hvps"}."""
    g = torch.Generator().manual_seed(seed)
    start = op.hvps
    v = torch.randn(op.dim, generator=g, dtype=torch.float64)
    basis, alphas, betas = [v / v.norm()], [], []
    theta, residual, bound = float("nan"), float("inf"), float("inf")
    for j in range(min(max_steps, op.dim)):
        w = op.matvec(basis[j]).double()
        alphas.append(float(w @ basis[j]))
        q = torch.stack(basis, 1)
        for _ in range(2):
            w = w - q @ (q.T @ w)
        beta = float(w.norm())
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(t)
        theta, residual = float(values[-1]), beta * abs(float(vectors[-1, -1]))
        gap = values[-1] - values[-2] if len(values) > 1 else 0.0
        bound = residual ** 2 / gap if gap > 0 else (0.0 if residual == 0 else float("inf"))
        if bound <= tol * abs(theta) or beta == 0:
            break
        betas.append(beta)
        basis.append(w / beta)
    return {"eigenvalue": theta, "error_bound": bound, "residual": residual,
            "converged": bool(bound <= tol * abs(theta)), "hvps": op.hvps - start}


def spectral_density(op, probes: int = 10, steps: int = 80, seed: int = 0) -> dict:
    """The SLQ estimate of the Hessian's eigenvalue density (module doc): `probes` Rademacher probes,
    `steps` Lanczos steps each (steps * probes products). Returns {"nodes", "weights", "probe" (equal-length
    numpy arrays: every node of every probe, its weight within its probe, the probe's index), "hvps",
    "table" (the same as a pandas DataFrame with columns probe, node, weight)}."""
    g = torch.Generator().manual_seed(seed)
    start = op.hvps
    nodes, weights, index = [], [], []
    for i in range(probes):
        u = (torch.randint(0, 2, (op.dim,), generator=g) * 2 - 1).double()
        alpha, beta = lanczos_tridiagonal(op, u / u.norm(), steps)
        t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        theta, s = np.linalg.eigh(t)
        nodes.append(theta)
        weights.append(s[0] ** 2)
        index.append(np.full(len(theta), i))
    nodes, weights, index = (np.concatenate(a) for a in (nodes, weights, index))
    table = pd.DataFrame({"probe": index, "node": nodes, "weight": weights})
    return {"nodes": nodes, "weights": weights, "probe": index, "hvps": op.hvps - start, "table": table}


def density_on_grid(result: dict, grid, sigma: float) -> np.ndarray:
    """The Gaussian-broadened SLQ density on `grid`: (1/probes) sum over probes and nodes of
    w_i N(t; t_i, sigma^2). Integrates to 1 over a grid that covers the nodes by a few sigma."""
    grid = np.asarray(grid, dtype=np.float64)
    probes = len(np.unique(result["probe"]))
    z = (grid[:, None] - result["nodes"][None, :]) / sigma
    return (np.exp(-0.5 * z ** 2) @ result["weights"]) / (sigma * np.sqrt(2 * np.pi) * probes)


def spectral_moments(result: dict, orders=(0, 1, 2)) -> dict[int, float]:
    """The probe-averaged quadrature moments sum_i w_i t_i^j, estimates of tr(H^j) / p."""
    probes = len(np.unique(result["probe"]))
    return {j: float(np.sum(result["weights"] * result["nodes"] ** j) / probes) for j in orders}
