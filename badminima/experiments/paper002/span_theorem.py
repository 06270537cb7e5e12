"""`span-theorem` (lecture 002, "GD + LS = a red herring"): "ANY algorithm that converges to 0-error and whose
iterates converge to w_inf = sum_i a_i x_i returns a min norm solution to the LS problem" - the minimum-norm
interpolant comes from staying in the span of the data, not from GD.

Under-determined least squares min_w 1/2 ||A w - b||^2 with A of 50 x 200 (the lecture's X^T; the problem of
`implicit-bias`, one per seed). Every gradient, full or of a mini-batch of rows, is A_B^T (A_B w - b_B): a
combination of rows of A. So GD, SGD and momentum (heavy ball, Nesterov), whose steps are combinations of past
gradients, keep w_k - w_0 in the row space of A: the part of w_0 in the null space, (I - A^+ A) w_0, never
changes. An interpolant of that form is A^+ b + (I - A^+ A) w_0; from w_0 = 0, the minimum-norm interpolant A^+ b.
Adam divides each coordinate by its own running gradient scale, a diagonal rescaling that does not preserve
the row space (its first step from zero is -lr sign(A^T b), elementwise): it interpolates, but not at A^+ b.

For every interpolant w, w - A^+ b lies in the null space, so ||w - A^+ b|| = ||(I - A^+ A) w|| and
||w||^2 = ||A^+ b||^2 + ||(I - A^+ A) w||^2: the distance to the minimum-norm solution is exactly the part of w
outside the row space. The table reports, for each algorithm and start, the residual ||A w - b||, ||w - A^+ b||,
||(I - A^+ A) w||, the drift ||(I - A^+ A)(w_k - w_0)|| maximized over the iterates (0 for an algorithm that stays in
the span), and the distance to the theorem's limit A^+ b + (I - A^+ A) w_0 (span-preserving algorithms only).

Algorithms (torch.optim, float64, on the summed loss 1/2 ||A_B w - b_B||^2, L = sigma_max(A)^2):
- GD: torch.optim.SGD, lr 1/L (the lecture's gamma, as in `implicit-bias`).
- SGD: mini-batches of `batch_size` rows, a fresh random order every epoch (numpy's default_rng([seed, 1])),
  lr 1/L: a batch's rows are rows of A, so sigma_max(A_B) <= sigma_max(A) and lr sigma_max(A_B)^2 <= 1.
- heavy ball / Nesterov: torch.optim.SGD with momentum 0.9 (nesterov False / True), lr 1/L.
- Adam: torch.optim.Adam (betas 0.9, 0.999, eps 1e-8), lr 1e-3 divided by 10 after half and after three
  quarters of its steps (at a constant lr it interpolates to 1e-15 and then drifts off again as its second
  moment decays).
Starts: zero for every algorithm; w_0 ~ N(0, I) (the same w_0 as `implicit-bias`) for GD, SGD and heavy ball, whose
limit from w_0 is then A^+ b + (I - A^+ A) w_0 (Adam is run from zero only: from w_0, whose entries are O(1), steps
of at most about lr per coordinate do not reach an interpolant within its budget). The pseudo-inverse is numpy's (SVD).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...report.tables import markdown_table
from ...store import Store
from .. import Context, Experiment, register_experiment
from .implicit_bias import Settings as ProblemSettings
from .implicit_bias import least_squares_problem


@dataclass(frozen=True)
class Settings:
    equations: int = 50  # rows of A (n)
    unknowns: int = 200  # columns of A (d > n)
    steps: int = 600  # full-batch steps of GD, heavy ball and Nesterov
    sgd_epochs: int = 400  # SGD epochs (equations / batch_size steps each)
    batch_size: int = 10  # SGD mini-batch (rows)
    momentum: float = 0.9  # heavy ball and Nesterov
    adam_lr: float = 1e-3
    adam_steps: int = 2000
    tolerance: float = 1e-8  # |residual| and ||w - limit|| below this count as reached (float64 rounding: ~1e-14)


SETTINGS = {"cpu": Settings(), "paper": Settings()}  # the lecture gives no numbers; the defaults run in seconds

# name -> (lecture's family: whether its steps stay in the span of the data rows)
ALGORITHMS = {"GD": True, "SGD": True, "heavy ball": True, "Nesterov": True, "Adam": False}
RUNS = [("GD", "zero"), ("SGD", "zero"), ("heavy ball", "zero"), ("Nesterov", "zero"), ("Adam", "zero"),
        ("GD", "w0"), ("SGD", "w0"), ("heavy ball", "w0")]


def problem(seed: int, s: Settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, b, w_0) of seed `seed`: `implicit-bias`'s least-squares problem at this size."""
    return least_squares_problem(seed, ProblemSettings(equations=s.equations, unknowns=s.unknowns))


def null_projector(a: np.ndarray) -> np.ndarray:
    """I - A^+ A, the orthogonal projector onto the null space of A (A^+ by numpy's pinv)."""
    return np.eye(a.shape[1]) - np.linalg.pinv(a) @ a


def _optimizer(name: str, w: torch.Tensor, a: np.ndarray, s: Settings):
    """(optimizer, scheduler or None, steps per epoch as index batches, epochs)."""
    lipschitz = float(np.linalg.norm(a, 2)) ** 2
    if name == "GD":
        return torch.optim.SGD([w], lr=1.0 / lipschitz), None, s.steps
    if name in ("heavy ball", "Nesterov"):
        return torch.optim.SGD([w], lr=1.0 / lipschitz, momentum=s.momentum, nesterov=name == "Nesterov"), None, s.steps
    if name == "SGD":
        return torch.optim.SGD([w], lr=1.0 / lipschitz), None, s.sgd_epochs
    if name == "Adam":
        opt = torch.optim.Adam([w], lr=s.adam_lr)
        decays = [k for k in (s.adam_steps // 2, 3 * s.adam_steps // 4) if k > 0]
        schedule = torch.optim.lr_scheduler.MultiStepLR(opt, decays, 0.1)
        return opt, schedule, s.adam_steps
    raise ValueError(f"unknown algorithm {name!r}")


def run_algorithm(name: str, a: np.ndarray, b: np.ndarray, w0: np.ndarray, s: Settings, seed: int = 0,
                  projector: np.ndarray | None = None) -> dict:
    """Run `name` from w0 on 1/2 ||A w - b||^2; {"w": the last iterate, "drift": max_k ||P_null (w_k - w_0)||}."""
    a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    w = torch.tensor(w0, dtype=torch.float64).requires_grad_(True)
    opt, schedule, epochs = _optimizer(name, w, a, s)
    rng = np.random.default_rng([seed, 1])  # SGD's batch order
    p = torch.tensor(null_projector(a) if projector is None else projector)
    start, drift = torch.tensor(w0, dtype=torch.float64), 0.0
    for _ in range(epochs):
        batches = ([rng.permutation(a.shape[0])[i:i + s.batch_size] for i in range(0, a.shape[0], s.batch_size)]
                   if name == "SGD" else [slice(None)])
        for rows in batches:
            opt.zero_grad()
            rows = torch.as_tensor(rows) if not isinstance(rows, slice) else rows
            (0.5 * ((a_t[rows] @ w - b_t[rows]) ** 2).sum()).backward()
            opt.step()
            if schedule is not None:
                schedule.step()
        drift = max(drift, float((p @ (w.detach() - start)).norm()))
    return {"w": w.detach().numpy().copy(), "drift": drift}


def seed_records(seed: int, s: Settings) -> list[dict]:
    a, b, w_random = problem(seed, s)
    pinv_solution = np.linalg.pinv(a) @ b
    p = null_projector(a)
    out = []
    for name, start in RUNS:
        w0 = np.zeros(s.unknowns) if start == "zero" else w_random
        result = run_algorithm(name, a, b, w0, s, seed, p)
        w = result["w"]
        in_span = ALGORITHMS[name]
        limit = pinv_solution + p @ w0  # the theorem's limit for an algorithm that stays in the span
        out.append({
            "algorithm": name, "start": start, "seed": seed, "stays_in_span": in_span,
            "residual": float(np.linalg.norm(a @ w - b)),
            "distance_to_pinv": float(np.linalg.norm(w - pinv_solution)),
            "null_space_part": float(np.linalg.norm(p @ w)),
            "start_null_space_part": float(np.linalg.norm(p @ w0)),
            "span_drift": result["drift"],
            "distance_to_limit": float(np.linalg.norm(w - limit)) if in_span else None,
            "norm": float(np.linalg.norm(w)), "pinv_norm": float(np.linalg.norm(pinv_solution))})
    return out


def records(ctx: Context) -> list[dict]:
    s = SETTINGS.get(ctx.preset, SETTINGS["cpu"])
    return [r | {"tolerance": s.tolerance, "equations": s.equations, "unknowns": s.unknowns}
            for seed in ctx.seeds for r in seed_records(seed, s)]


def outcome(r: dict) -> str:
    """What the record shows, in the theorem's terms."""
    tol = r["tolerance"]
    if r["residual"] > tol:
        return "does not interpolate"
    if r["stays_in_span"]:
        if r["distance_to_limit"] <= tol:
            return "min-norm A^+ b" if r["start"] == "zero" else "A^+ b + P_null w0"
        return "in span, limit missed"
    return "min-norm A^+ b" if r["distance_to_pinv"] <= tol else "interpolant, not min-norm"


def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


HEADER = ["algorithm", "start", "seed", "stays in span", "||A w - b||", "||w - A^+ b||", "||P_null w||",
          "||P_null w0||", "max_k ||P_null (w_k - w0)||", "||w - (A^+ b + P_null w0)||", "outcome"]


def table(recs: list[dict]) -> tuple[list[str], list[list]]:
    return HEADER, [[r["algorithm"], r["start"], r["seed"], "yes" if r["stays_in_span"] else "no", _fmt(r["residual"]),
                     _fmt(r["distance_to_pinv"]), _fmt(r["null_space_part"]), _fmt(r["start_null_space_part"]),
                     _fmt(r["span_drift"]), _fmt(r["distance_to_limit"]), outcome(r)] for r in recs]


def verdict(recs: list[dict]) -> str:
    """One line: do span-preserving algorithms from zero reach A^+ b (and from w0, A^+ b + P_null w0), while Adam
    and non-zero starts interpolate elsewhere?"""
    if not recs:
        return "theorem: no records"
    tol = recs[0]["tolerance"]
    span_zero = [r for r in recs if r["stays_in_span"] and r["start"] == "zero"]
    span_w0 = [r for r in recs if r["stays_in_span"] and r["start"] != "zero"]
    off = [r for r in recs if not r["stays_in_span"] or r["start"] != "zero"]
    worst_zero = max((r["distance_to_pinv"] for r in span_zero), default=None)
    worst_w0 = max((r["distance_to_limit"] for r in span_w0), default=None)
    closest_off = min((r["distance_to_pinv"] for r in off), default=None)
    worst_residual = max(r["residual"] for r in recs)
    holds = (worst_residual <= tol and (worst_zero is None or worst_zero <= tol)
             and (worst_w0 is None or worst_w0 <= tol) and (closest_off is None or closest_off > 1e3 * tol))
    fits = "every run interpolates" if worst_residual <= tol else "NOT every run interpolates"
    return (f"theorem {'HOLDS' if holds else 'DOES NOT HOLD'}: {fits} (largest ||A w - b|| "
            f"{_fmt(worst_residual)}); span-preserving algorithms from zero end within {_fmt(worst_zero)} of A^+ b, "
            f"from w0 within {_fmt(worst_w0)} of A^+ b + P_null w0; Adam and non-zero starts end at least "
            f"{_fmt(closest_off)} from A^+ b (tolerance {tol:g}; {len({r['seed'] for r in recs})} seeds)")


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    text = ("# span-theorem: lecture 002 (any algorithm that stays in the span of the data reaches the "
            "minimum-norm interpolant)\n\n"
            f"Ours: {scale}. Under-determined least squares 1/2 ||A w - b||^2, A of "
            f"{recs[0]['equations']} x {recs[0]['unknowns']} (see the module docstring of "
            "badminima/experiments/paper002/span_theorem.py). A^+ b by numpy's pinv; P_null = I - A^+ A. For an interpolant, "
            "||w - A^+ b|| = ||P_null w||: the distance to the minimum-norm solution is the part outside the row "
            "space.\n\n" + verdict(recs) + "\n\n" + markdown_table(*table(recs))) if recs else "# span-theorem\n"
    md = folder / "span-theorem.md"
    md.write_text(text)
    return [md]


register_experiment(Experiment(
    "span-theorem", records,
    table, render, scale=lambda ctx: f"synthetic least squares (float64, torch.optim), {ctx.preset} preset",
    default_seeds=(0, 1, 2), verdict=verdict))
