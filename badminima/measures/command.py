"""`badminima measure RUN [--measure NAME ...] [--out DIR]`: compute measures of a stored run's final
model, record them in the store (table `measures`, keyed by the final phase's id and the measure's
name) and print them.

Measures already stored are shown and not recomputed unless `force`. Without names, the default
set runs (the measures that take seconds on a CPU); `all` adds the Hessian, the NTK and PGD.
Subsets are seeded by the run's seed, so a measure is a function of the run alone:

- attacks: at most ATTACK_EXAMPLES test examples. Budgets are in the input's units: for images
  eps/255 with clamping to [0, 1]; for other data the same numbers times the mean training std of
  the input (the standardization's std), without clamping.
- Hessian: at most HESSIAN_EXAMPLES training examples (paper 004 uses the full dataset).
- NTK: NTK_INPUTS training inputs (paper 004: 25 images), the run's random init vs its final model.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import BadInput
from ..store.checkpoints import CorruptCheckpoint

ATTACK_EXAMPLES = 1000
FGSM_BUDGETS = (1, 2, 4, 8)  # in 1/255 of the image range (paper 000's Figure 6 budgets are not in its text)
PGD_BUDGETS = (8, 1)  # paper 004, Tables 4, 9, 10: eps 8/255 and 1/255, 20 steps of eps/4
PGD_STEPS = 20
HESSIAN_EXAMPLES = 1000
HESSIAN_POWER_ITERATIONS = 500  # paper 004, Table 1
HUTCHINSON_SAMPLES = 100
NTK_INPUTS = 25
GRID_POINTS = 400  # decision-boundary grid: points along the longer side


@dataclass
class Target:
    """A stored run's final model and its data (what every measure reads)."""

    store: Any
    run_id: str
    phases: list[str]
    spec: Any
    workspace: Any

    @property
    def phase_id(self) -> str:
        return self.phases[-1]

    @cached_property
    def data(self):
        return self.workspace.dataset(self.spec)

    @cached_property
    def model(self):
        from ..runs import load_final
        return load_final(self.store, self.phase_id, self.workspace.skeleton(self.spec)).eval()

    @cached_property
    def initial_model(self):
        """The run's random initialization (its first phase)."""
        from ..runs import load_final
        return load_final(self.store, self.phases[0], self.workspace.skeleton(self.spec)).eval()

    def subset(self, split: str, n: int, label: str) -> tuple[torch.Tensor, torch.Tensor]:
        """At most n examples of `split` ("train" | "test"), a seeded random choice."""
        from ..train import derive_seed
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        if len(y) <= n:
            return x, y
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(self.spec.seed, "measure", label)))[:n]
        keep = keep.to(y.device)
        return x[keep], y[keep]

    @property
    def is_image(self) -> bool:
        return self.data.kind == "image"

    def attack_scale(self) -> tuple[float, tuple[float, float] | None]:
        """(the unit of the budgets, the clamping range): (1/255, [0, 1]) for images, else (std/255, None)."""
        from .attacks import budget_unit
        return budget_unit(self.data)


@dataclass(frozen=True)
class Measure:
    name: str
    compute: Callable[[Target], Any]
    description: str
    default: bool = True
    applies: Callable[[Target], bool] = lambda target: True


MEASURES: dict[str, Measure] = {}


def _measure(name: str, description: str, default: bool = True, applies=lambda target: True):
    def wrap(fn):
        MEASURES[name] = Measure(name, fn, description, default, applies)
        return fn
    return wrap


def _sample(t: Target) -> torch.Tensor:
    return t.data.x_train[:1]


@_measure("frobenius", "Frobenius norm of all parameters (000 sec 3.6)")
def _frobenius(t):
    from .norms import frobenius_norm
    return frobenius_norm(t.model)


@_measure("frobenius_product", "product of the layers' Frobenius norms, batch norm folded (001 Fig. 4)")
def _frobenius_product(t):
    from .norms import product_of_frobenius_norms
    return product_of_frobenius_norms(t.model)


@_measure("frobenius_sum", "sum of the layers' Frobenius norms, batch norm folded")
def _frobenius_sum(t):
    from .norms import sum_of_frobenius_norms
    return sum_of_frobenius_norms(t.model)


@_measure("spectral", "layers' spectral norms: conv operator by FFT (circular padding) and reshaped kernel; product, sum")
def _spectral(t):
    import math

    from .norms import spectral_norms
    fft = spectral_norms(t.model, _sample(t), "fft")
    reshaped = spectral_norms(t.model, method="reshaped")
    return {"product": math.prod(fft.values()), "sum": sum(fft.values()),
            "reshaped_product": math.prod(reshaped.values()),
            "layers": {k: {"fft": fft[k], "reshaped": reshaped[k]} for k in fft}}


@_measure("l1_path_norm", "l1 path norm, batch norm folded (000 sec 3.6; Neyshabur et al. 2015)")
def _l1_path(t):
    from .norms import l1_path_norm
    return l1_path_norm(t.model, t.data.input_shape)


@_measure("l2_path_norm", "l2 path norm, batch norm folded (000 sec 3.6; Neyshabur et al. 2015)")
def _l2_path(t):
    from .norms import l2_path_norm
    return l2_path_norm(t.model, t.data.input_shape)


@_measure("normalized_cross_entropy", "cross-entropy of the layer-wise (Frobenius) normalized net on train and test (001 Fig. 2)")
def _normalized_ce(t):
    from .normalized import normalized_cross_entropy, normalized_network, output_normalized_cross_entropy
    d = t.data
    try:
        normalized_network(t.model)
    except BadInput:  # residual / dense nets: 001's normalization by the output norm on one example
        x_ref, _ = t.subset("train", 1, "normalized_cross_entropy")
        return {"method": "output norm on one training example",
                "train": output_normalized_cross_entropy(t.model, d.x_train, d.y_train, x_ref[0]),
                "test": output_normalized_cross_entropy(t.model, d.x_test, d.y_test, x_ref[0])}
    return {"method": "layer-wise Frobenius", "train": normalized_cross_entropy(t.model, d.x_train, d.y_train),
            "test": normalized_cross_entropy(t.model, d.x_test, d.y_test)}


@_measure("margins", "output margins f_y - max_{j!=y} f_j on train and test: percentiles, mean, fraction negative")
def _margins(t):
    from .margins import margin_summary, output_margins
    d = t.data
    return {"train": margin_summary(output_margins(t.model, d.x_train, d.y_train)),
            "test": margin_summary(output_margins(t.model, d.x_test, d.y_test))}


@_measure("fgsm", f"test accuracy under FGSM, eps = {FGSM_BUDGETS}/255 (times the std for non-images) (000 sec 3.7)")
def _fgsm(t):
    from ..train import evaluate
    from .attacks import fgsm_accuracy
    unit, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    eps = [b * unit for b in FGSM_BUDGETS]
    return {"eps": eps, "accuracy": [fgsm_accuracy(t.model, x, y, e, bounds) for e in eps],
            "clean_accuracy": evaluate(t.model, x, y)[1], "examples": len(y)}


@_measure("pgd", f"test accuracy under 20-step L-inf PGD, eps = {PGD_BUDGETS}/255, step eps/4 (004 sec 5)", default=False)
def _pgd(t):
    from .attacks import pgd_accuracy
    unit, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    eps = [b * unit for b in PGD_BUDGETS]
    return {"eps": eps, "steps": PGD_STEPS, "accuracy": [pgd_accuracy(t.model, x, y, e, PGD_STEPS, bounds=bounds) for e in eps],
            "examples": len(y)}


@_measure("effective_rank", "ranks of every layer (||s||_1/||s||_2, entropy, stable, numerical); conv operators by FFT (004 sec 5)")
def _ranks(t):
    from .rank import layer_ranks, mean_effective_rank
    ranks = layer_ranks(t.model, _sample(t))
    return {"mean_effective_rank": mean_effective_rank(ranks), "layers": ranks}


@_measure("loss_gradient", "full training-set loss and gradient norm, eval mode (004 Table 1)")
def _loss_gradient(t):
    from .curvature import full_batch_loss_and_gradient
    loss, grad = full_batch_loss_and_gradient(t.model, t.data.x_train, t.data.y_train)
    return {"loss": loss, "gradient_norm": float(grad.double().norm()), "examples": len(t.data.y_train)}


@_measure("hessian", f"largest Hessian eigenvalue by Lanczos and by power iteration, smallest by the shifted power method (004 Table 1), {HESSIAN_EXAMPLES} train examples", default=False)
def _hessian(t):
    from .curvature import HessianOperator, extreme_eigenvalues_power, lanczos_eigenvalue
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    op = HessianOperator(t.model, x, y)
    lanczos = lanczos_eigenvalue(op, "LA")
    power = extreme_eigenvalues_power(op, HESSIAN_POWER_ITERATIONS)
    return {"max_lanczos": lanczos["eigenvalue"], "hvps_lanczos": lanczos["hvps"], "max_power": power["max"],
            "min_power": power["min"], "hvps_power": power["hvps"], "power_converged": power["converged"],
            "examples": len(y)}


@_measure("hessian_trace", f"Hessian trace by Hutchinson ({HUTCHINSON_SAMPLES} Rademacher vectors), {HESSIAN_EXAMPLES} train examples", default=False)
def _hessian_trace(t):
    from .curvature import HessianOperator, hutchinson_trace
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    return {**hutchinson_trace(HessianOperator(t.model, x, y), HUTCHINSON_SAMPLES), "examples": len(y)}


@_measure("ntk", f"empirical NTK on {NTK_INPUTS} train inputs at random init vs final: norms, relative change, correlation (004 sec 4)", default=False)
def _ntk(t):
    from .ntk import ntk_change
    x, _ = t.subset("train", NTK_INPUTS, "ntk")
    return {**ntk_change(t.initial_model, t.model, x), "inputs": len(x)}


@_measure("distance_from_init", "||W - W_0||_F / ||W_0||_F from the run's random init (000 sec 3.3)")
def _distance(t):
    from .distance import relative_distance
    return relative_distance(t.model, t.initial_model)


def _is_2d(t: Target) -> bool:
    return t.data.input_shape == (2,)


@_measure("decision_boundary", "2-D inputs: decision-boundary length and connected class regions on a grid (000 Fig. 1)",
          applies=_is_2d)
def _boundary(t):
    from .margins import decision_boundary_summary
    points = torch.cat([t.data.x_train, t.data.x_test]).cpu()
    lo, hi = points.min(0).values, points.max(0).values
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    spacing = float((hi - lo).max()) / (GRID_POINTS - 1)
    return decision_boundary_summary(t.model, (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])), spacing)


# ---- the command ----

def resolve_names(names: list[str] | None) -> list[str]:
    """The measures to compute: the default set, `all`, or the given names in order; BadInput on an unknown name."""
    if not names:
        return [n for n, m in MEASURES.items() if m.default]
    out: list[str] = []
    for name in names:
        if name == "all":
            chosen = list(MEASURES)
        elif name == "default":
            chosen = [n for n, m in MEASURES.items() if m.default]
        elif name in MEASURES:
            chosen = [name]
        else:
            raise BadInput(f"unknown measure {name!r} (known: all, default, {', '.join(MEASURES)})")
        out += [n for n in chosen if n not in out]
    return out


def open_target(out: str | Path, run: str, data_dir=None, device: str = "cpu"):
    """The store in `out` and the run `run` (an id or a unique prefix of one); BadInput if missing or unfinished."""
    from ..runs import Workspace
    from ..spec import RunSpec, merge
    from ..store import Store
    from ..store.db import FILENAME

    if not (Path(out) / FILENAME).exists():
        raise BadInput(f"no results database in {out} (run an experiment with --out {out} first)")
    store = Store(out)
    record = store.run(run)
    if record is None:
        matches = [r[0] for r in store.conn.execute("SELECT id FROM runs WHERE id LIKE ?", (run + "%",))]
        if len(matches) != 1:
            store.close()
            raise BadInput(f"no run {run!r} in {out}" if not matches else
                           f"run id prefix {run!r} is ambiguous ({', '.join(sorted(matches))})")
        record = store.run(matches[0])
    phase = store.phase(record["phases"][-1]) or {}
    if phase.get("status") != "done":
        store.close()
        raise BadInput(f"run {record['id']} is not finished (status {phase.get('status', 'missing')}); nothing to measure")
    spec = merge(RunSpec(), record["spec"])
    workspace = Workspace(store=store, data_dir=data_dir, device=device, quiet=True)
    return Target(store, record["id"], record["phases"], spec, workspace)


def cached_measure(store, phase_id: str, name: str, fn: Callable[[], Any], force: bool = False) -> dict:
    """The measure `name` of a phase, read from the store or computed by `fn` and recorded there with its
    seconds: {"name", "value", "seconds", "stored"} ("stored": it was already there)."""
    row = store.conn.execute("SELECT value, seconds FROM measures WHERE phase_id=? AND name=?", (phase_id, name)).fetchone()
    if row is not None and not force:
        return {"name": name, "value": json.loads(row[0]), "seconds": row[1], "stored": True}
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    store.record_measure(phase_id, name, value, seconds)
    return {"name": name, "value": value, "seconds": seconds, "stored": False}


def compute(target: Target, names: list[str], force: bool = False, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Compute (or read back) each named measure of `target`, recording new values in its store.
    Returns [{"name", "value", "seconds", "stored"}]; "stored" is True when the value was already there."""
    rows = []
    for name in names:
        def run(name=name):
            if progress:
                progress(name)
            return MEASURES[name].compute(target)
        rows.append(cached_measure(target.store, target.phase_id, name, run, force))
    return rows


def _brief(value: Any, width: int = 90) -> str:
    """One line for the table: numbers, and a dict's numeric entries and its train/test parts (--json gives all)."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_brief(v) for v in value) + "]"
    elif isinstance(value, dict):
        parts = [f"{k}={_brief(v)}" for k, v in value.items() if isinstance(v, (int, float, str)) or
                 (isinstance(v, list) and all(isinstance(a, (int, float)) for a in v))]
        nested = [f"{k}: {_brief(v)}" for k, v in value.items() if isinstance(v, dict) and k in ("train", "test")]
        text = "; ".join(([", ".join(parts)] if parts else []) + nested) or f"{{{len(value)} entries}}"
    else:
        text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _checkpoint_problem(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"checkpoint {exc.filename} is missing"
    return f"checkpoint {exc}"


def check_final_model(target: Target) -> None:
    """BadInput unless the run's final phase may be measured: trained with the architecture and data that the
    code gives now (its fingerprint), and its final checkpoint present, intact, its own and fitting the model."""
    from ..runs import fingerprint, recorded_fingerprint, stale_reason

    row = target.store.phase(target.phase_id)
    reason = stale_reason(recorded_fingerprint(row), fingerprint(target.spec, target.workspace))
    if reason:
        raise BadInput(f"run {target.run_id}: phase {target.phase_id} is stale: {reason}; re-run its experiment "
                       f"(badminima run) to recompute it before measuring")
    try:
        target.model  # noqa: B018
    except (CorruptCheckpoint, FileNotFoundError) as exc:
        raise BadInput(f"run {target.run_id}: {_checkpoint_problem(exc)}; re-run its experiment (badminima run), "
                       f"which recomputes it, then measure again") from None


def measure_command(run: str, names: list[str] | None, out: str | Path, data_dir=None, device: str = "cpu",
                    as_json: bool = False, force: bool = False, quiet: bool = False) -> int:
    """The whole command: check the input, compute, record, print. Returns the exit status."""
    chosen = resolve_names(names)
    target = open_target(out, run, data_dir, device)
    try:
        target.data  # noqa: B018  (load, and so check, the data before anything is computed)
        check_final_model(target)
        explicit = set(names or []) - {"all", "default"}
        bad = [n for n in chosen if n in explicit and not MEASURES[n].applies(target)]
        if bad:
            raise BadInput(f"measure {bad[0]!r} does not apply to run {target.run_id} "
                           f"({MEASURES[bad[0]].description.split(':')[0]})")
        chosen = [n for n in chosen if MEASURES[n].applies(target)]
        say = None if quiet else (lambda n: print(f"measuring {n} ...", file=sys.stderr, flush=True))
        try:
            rows = compute(target, chosen, force, say)
        except (CorruptCheckpoint, FileNotFoundError) as exc:  # the random init's checkpoint (ntk, distance)
            raise BadInput(f"run {target.run_id}: {_checkpoint_problem(exc)}; measures computed before it are kept, "
                           f"and `badminima run` recomputes the checkpoint") from None
    finally:
        target.store.close()
    if as_json:
        print(json.dumps({"run_id": target.run_id, "phase_id": target.phase_id,
                          "measures": {r["name"]: r["value"] for r in rows},
                          "seconds": {r["name"]: r["seconds"] for r in rows}}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 0
    print(f"run {target.run_id} ({target.spec.data.name} / {target.spec.model.name}, init {target.spec.init.name}, "
          f"seed {target.spec.seed}): measures of its final model")
    for r in rows:
        when = "stored" if r["stored"] else f"{r['seconds']:.2f} s"
        print(f"  {r['name'].ljust(width)}  {_brief(r['value'])}  ({when})")
    return 0
