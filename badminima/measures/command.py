"""`badminima measure RUN [--measure NAME ...] [--out DIR]`: compute measures of a stored run's final
model, record them in the store (table `measures`, keyed by the final phase's id and the measure's
name) and print them.

Measures already stored are shown and not recomputed unless `force`. Without names, the default
set runs (the measures that take seconds on a CPU); `all` adds the Hessian, the NTK and PGD.
Subsets are seeded by the run's seed, so a measure is a function of the run alone:

- attacks: at most ATTACK_EXAMPLES test examples. Budgets in the units of `attacks.budget_unit`:
  1/255 of the pixel range for images (clamped to [0, 1]); for other data, 0.01564 of the inputs'
  mean training std (so that 8 units are 0.125 sigma, as 8/255 on CIFAR-10), without clamping. PGD
  starts at a random point of the ball (seeded by the run's seed), as the authors evaluate it.
- Hessian: at most HESSIAN_EXAMPLES training examples (paper 004 uses the full dataset); every eigenvalue is
  shown with its convergence flag and the Hessian-vector products it used.
- NTK: NTK_INPUTS training inputs (paper 004: 25 images), the run's random init vs its final model.
"""
from __future__ import annotations

import json
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
HESSIAN_LANCZOS_HVPS = 1000  # at most, per eigenvalue
HESSIAN_TOL = 1e-3  # converged: residual <= HESSIAN_TOL * |eigenvalue| (measures/curvature.py)
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
    progress: Callable[[int], None] | None = None  # told the Hessian-vector products used (long measures)

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
    version: int = 1  # raised when a measure's convention changes, so that values stored under the old one are not read

    @property
    def key(self) -> str:
        """The name its values are stored under."""
        return self.name if self.version == 1 else f"{self.name}.v{self.version}"


MEASURES: dict[str, Measure] = {}


def _measure(name: str, description: str, default: bool = True, applies=lambda target: True, version: int = 1):
    def wrap(fn):
        MEASURES[name] = Measure(name, fn, description, default, applies, version)
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


@_measure("spectral", "layers' spectral norms: conv operator with its zero padding (exact), with circular padding (FFT) "
          "and reshaped kernel; product over the chain (shortcut convs left out), sum", version=2)
def _spectral(t):
    from .norms import spectral_norm_product, spectral_norms
    norms = {method: spectral_norms(t.model, _sample(t), method) for method in ("zero-padding", "circular", "reshaped")}
    exact = norms["zero-padding"]
    product = spectral_norm_product(exact)
    return {"product": product["product"], "sum": sum(exact.values()), "left_out_of_product": product["left_out"],
            "circular_product": spectral_norm_product(norms["circular"])["product"],
            "reshaped_product": spectral_norm_product(norms["reshaped"])["product"],
            "layers": {k: {m: norms[m][k] for m in norms} for k in exact}}


@_measure("l1_path_norm", "l1 path norm, batch norm folded (000 sec 3.6; Neyshabur et al. 2015)")
def _l1_path(t):
    from .norms import l1_path_norm
    return l1_path_norm(t.model, t.data.input_shape)


@_measure("l2_path_norm", "l2 path norm, batch norm folded, average pools as linear layers (000 sec 3.6; Neyshabur et al. 2015)",
          version=2)
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


def _budgets(t: Target, budgets) -> dict:
    """The budgets in input units and as tables write them (see attacks.budget_unit)."""
    from .attacks import budget_label, budget_unit, unit_description
    unit = budget_unit(t.data)[0]
    return {"budgets": list(budgets), "eps": [b * unit for b in budgets], "labels": [budget_label(t.data, b) for b in budgets],
            "unit": unit_description(t.data)}


@_measure("fgsm", f"test accuracy under FGSM, eps = {FGSM_BUDGETS}/255 (non-images: x 0.0156 input std) (000 sec 3.7)",
          version=2)
def _fgsm(t):
    from ..train import evaluate
    from .attacks import fgsm_accuracy
    _, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    budgets = _budgets(t, FGSM_BUDGETS)
    return {**budgets, "accuracy": [fgsm_accuracy(t.model, x, y, e, bounds) for e in budgets["eps"]],
            "clean_accuracy": evaluate(t.model, x, y)[1], "examples": len(y)}


@_measure("pgd", f"test accuracy under 20-step L-inf PGD from a random start, eps = {PGD_BUDGETS}/255 (non-images: x 0.0156 "
          "input std), step eps/4 (004 sec 5)", default=False, version=2)
def _pgd(t):
    from ..train import derive_seed
    from .attacks import pgd_accuracy
    _, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    budgets = _budgets(t, PGD_BUDGETS)
    accuracy = [pgd_accuracy(t.model, x, y, e, PGD_STEPS, bounds=bounds, random_start=True,
                             generator=torch.Generator().manual_seed(derive_seed(t.spec.seed, "measure", f"pgd {b}")))
                for b, e in zip(PGD_BUDGETS, budgets["eps"])]
    return {**budgets, "steps": PGD_STEPS, "random_start": True, "accuracy": accuracy, "examples": len(y)}


@_measure("effective_rank", "ranks of every layer's raw weights (||s||_1/||s||_2, entropy, stable, numerical); conv "
          "operators by FFT, circular padding (004 sec 5)", version=2)
def _ranks(t):
    from .rank import layer_ranks, mean_effective_rank
    ranks = layer_ranks(t.model, _sample(t))
    return {"mean_effective_rank": mean_effective_rank(ranks), "layers": ranks}


@_measure("effective_rank_folded", "as effective_rank, batch norm folded into the layer before it first", default=False)
def _ranks_folded(t):
    from .rank import layer_ranks, mean_effective_rank
    ranks = layer_ranks(t.model, _sample(t), fold=True)
    return {"mean_effective_rank": mean_effective_rank(ranks), "layers": ranks}


@_measure("loss_gradient", "full training-set loss and gradient norm, eval mode (004 Table 1)")
def _loss_gradient(t):
    from .curvature import full_batch_loss_and_gradient
    loss, grad = full_batch_loss_and_gradient(t.model, t.data.x_train, t.data.y_train)
    return {"loss": loss, "gradient_norm": float(grad.double().norm()), "examples": len(t.data.y_train)}


@_measure("hessian", f"smallest and largest Hessian eigenvalues by Lanczos and by the shifted power method (004 Table 1), float64 products, each with its convergence flag and products, {HESSIAN_EXAMPLES} train examples", default=False)
def _hessian(t):
    from .curvature import HessianOperator, extreme_eigenvalues_power, lanczos_eigenvalue
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    op = HessianOperator(t.model, x, y, dtype=torch.float64, progress=t.progress)
    out = {}
    for end, which in (("min", "SA"), ("max", "LA")):
        r = lanczos_eigenvalue(op, which, HESSIAN_TOL, max_hvps=HESSIAN_LANCZOS_HVPS)
        out |= {f"{end}_lanczos": r["eigenvalue"], f"{end}_lanczos_converged": r["converged"], f"{end}_lanczos_hvps": r["hvps"]}
    power = extreme_eigenvalues_power(op, HESSIAN_POWER_ITERATIONS, HESSIAN_TOL)
    for end in ("min", "max"):
        out |= {f"{end}_power": power[end], f"{end}_power_converged": power[f"{end}_converged"],
                f"{end}_power_hvps": power[f"{end}_hvps"]}
    return out | {"examples": len(y)}


@_measure("hessian_trace", f"Hessian trace by Hutchinson ({HUTCHINSON_SAMPLES} Rademacher vectors), {HESSIAN_EXAMPLES} train examples", default=False)
def _hessian_trace(t):
    from .curvature import HessianOperator, hutchinson_trace
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    return {**hutchinson_trace(HessianOperator(t.model, x, y, progress=t.progress), HUTCHINSON_SAMPLES), "examples": len(y)}


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
        rows.append({**cached_measure(target.store, target.phase_id, MEASURES[name].key, run, force), "name": name})
    return rows


def value_lines(value: Any, indent: str = "    ") -> list[str]:
    """A measure's value in full, one line per entry (nested dicts indented; floats as Python's repr,
    which round-trips); a scalar or a list of scalars is one line."""
    if isinstance(value, dict):
        lines = []
        flagged = {k for k in value if f"{k}_converged" in value and f"{k}_hvps" in value}  # eigenvalues
        for key, item in value.items():
            if any(key in (f"{f}_converged", f"{f}_hvps") for f in flagged):
                continue  # shown beside its eigenvalue
            if key in flagged:
                state = "converged" if value[f"{key}_converged"] else "NOT converged"
                lines.append(f"{indent}{key}: {_flat(item)} ({state}, {value[f'{key}_hvps']} products)")
            elif _is_flat(item):
                lines.append(f"{indent}{key}: {_flat(item)}")
            else:
                lines += [f"{indent}{key}:"] + value_lines(item, indent + "  ")
        return lines
    if isinstance(value, list) and not _is_flat(value):
        return [line for i, item in enumerate(value)
                for line in ([f"{indent}[{i}]: {_flat(item)}"] if _is_flat(item) else
                             [f"{indent}[{i}]:"] + value_lines(item, indent + "  "))]
    return [f"{indent}{_flat(value)}"]


def _is_flat(value: Any) -> bool:
    return not isinstance(value, dict) and not (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value))


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def in_percent(value: Any) -> Any:
    """A measure value as users read it: the store keeps accuracies as fractions (entries named `accuracy` or
    `*_accuracy`); shown, they are percent and named `*_percent`."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "accuracy" or k.endswith("_accuracy"):
                out[k + "_percent"] = [100 * a for a in v] if isinstance(v, list) else None if v is None else 100 * v
            else:
                out[k] = in_percent(v)
        return out
    return value


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
                    as_json: bool = False, force: bool = False, quiet: bool = False,
                    provenance: dict | None = None) -> int:
    """The whole command: check the input, compute, record, print. Returns the exit status."""
    chosen = resolve_names(names)
    target = open_target(out, run, data_dir, device)
    shown = None
    try:
        target.data  # noqa: B018  (load, and so check, the data before anything is computed)
        check_final_model(target)
        explicit = set(names or []) - {"all", "default"}
        bad = [n for n in chosen if n in explicit and not MEASURES[n].applies(target)]
        if bad:
            raise BadInput(f"measure {bad[0]!r} does not apply to run {target.run_id} "
                           f"({MEASURES[bad[0]].description.split(':')[0]})")
        chosen = [n for n in chosen if MEASURES[n].applies(target)]
        from ..progress import Measures
        shown = None if quiet else Measures()
        target.progress = shown and shown.products
        try:
            rows = compute(target, chosen, force, shown and shown.start)
        except (CorruptCheckpoint, FileNotFoundError) as exc:  # the random init's checkpoint (ntk, distance)
            raise BadInput(f"run {target.run_id}: {_checkpoint_problem(exc)}; measures computed before it are kept, "
                           f"and `badminima run` recomputes the checkpoint") from None
    finally:
        target.store.close()
        if shown is not None:
            shown.close()
    if as_json:
        print(json.dumps({"run_id": target.run_id, "phase_id": target.phase_id,
                          "measures": {r["name"]: in_percent(r["value"]) for r in rows},
                          "seconds": {r["name"]: r["seconds"] for r in rows}, "provenance": provenance}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 0
    print(f"run {target.run_id} ({target.spec.data.name} / {target.spec.model.name}, init {target.spec.init.name}, "
          f"seed {target.spec.seed}): measures of its final model")
    for r in rows:
        when = "stored" if r["stored"] else f"{r['seconds']:.2f} s"
        if _is_flat(in_percent(r["value"])):
            print(f"  {r['name'].ljust(width)}  {_flat(in_percent(r['value']))}  ({when})")
        else:
            print(f"  {r['name']}  ({when})")
            print("\n".join(value_lines(in_percent(r["value"]))))
    return 0
