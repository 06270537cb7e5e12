"""`badminima measure RUN [--measure NAME ...] [--out DIR]`, and what experiments use of it: the measures of
`measures.registry` applied to a stored run's final model (`Target`), each recorded in the store (table
`measures`, keyed by the final phase's id and the measure's key) and read back, not recomputed, unless
`force`. Without names, the default set runs; `all` adds the expensive ones."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import BadInput
from .fingerprints import fingerprint, recorded_fingerprint, stale_reason
from .measures.attacks import budget_unit
from .measures.registry import MEASURES, resolve_names
from .progress import Measures
from .runs import Workspace, load_final
from .spec import RunSpec, merge
from .store import Store
from .store.checkpoints import CorruptCheckpoint
from .store.db import FILENAME
from .train import derive_seed


@dataclass
class Target:
    """A stored run's final model and its data (what every measure reads)."""

    store: Store
    run_id: str
    phases: list[str]
    spec: RunSpec
    workspace: Workspace
    progress: Callable[[int], None] | None = None  # told the Hessian-vector products used (long measures)

    @property
    def phase_id(self) -> str:
        return self.phases[-1]

    @cached_property
    def data(self):
        return self.workspace.dataset(self.spec)

    @cached_property
    def model(self):
        return load_final(self.store, self.phase_id, self.workspace.skeleton(self.spec)).eval()

    @cached_property
    def initial_model(self):
        """The run's random initialization (its first phase)."""
        return load_final(self.store, self.phases[0], self.workspace.skeleton(self.spec)).eval()

    def subset(self, split: str, n: int, label: str) -> tuple[torch.Tensor, torch.Tensor]:
        """At most n examples of `split` ("train" | "test"), a seeded random choice."""
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        if len(y) <= n:
            return x, y
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(self.spec.seed, "measure", label)))[:n]
        keep = keep.to(y.device)
        return x[keep], y[keep]

    def attack_scale(self) -> tuple[float, tuple[float, float] | None]:
        """(the unit of the budgets, the clamping range): (1/255, [0, 1]) for images, else (std/255, None)."""
        return budget_unit(self.data)


def open_target(out: str | Path, run: str, data_dir=None, device: str = "cpu"):
    """The store in `out` and the run `run` (an id or a unique prefix of one); BadInput if missing or unfinished."""
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
