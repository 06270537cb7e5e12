"""Experiments: each paper artefact as a declarative grid of run specs (or a direct computation),
plus how to tabulate and draw its records.

An experiment computes summary records (plain JSON-able dicts, accuracies in percent) from a `Context`;
its records are kept in the store per set - one (base spec, preset, seeds) - so `badminima report OUT`
can redraw every set of every experiment present in OUT. A set's files go to OUT/report/NAME/SET_ID/.
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..report.tables import records_csv
from ..spec import RunSpec, digest, non_default
from ..store import Store


@dataclass
class Context:
    """What an experiment needs: the base spec, seeds, the preset's name and the workspace."""

    base: RunSpec
    seeds: list[int]
    preset: str
    ws: "Workspace"  # noqa: F821  (badminima.runs.Workspace)
    quiet: bool = False
    executor: object = None  # badminima.executors: where training phases run (None: in this process)
    provenance: dict | None = None  # badminima.provenance: recorded with the experiment's records

    @property
    def store(self) -> Store:
        return self.ws.store

    @property
    def scale(self) -> str:
        return describe_scale(self.base, self.preset)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    records: Callable[[Context], list[dict]]  # computes (training what it needs) the summary records
    table: Callable[[list[dict]], tuple[list[str], list[list]]]  # records -> (header, rows) for the terminal
    render: Callable[[Path, Store, list[dict], str], list[Path]]  # (report folder, store, records, scale) -> files
    cells: Callable[[RunSpec, list[int]], list[RunSpec]] | None = None  # the grid of runs, if it trains any
    scale: Callable[[Context], str] | None = None  # what the records were computed on, if no run spec says it
    default_seeds: tuple[int, ...] | None = None  # seeds when none are given (None: the spec's seed)
    verdict: Callable[[list[dict]], str] | None = None  # one line: does the paper's claim hold in these records?

    def grid(self, base: RunSpec, seeds: list[int], preset: str) -> list[RunSpec]:
        """The runs of the experiment for `preset` (cells that take a `preset` keyword get it: their grid differs
        between presets beyond the base spec); [base] for an experiment that trains no grid."""
        if self.cells is None:
            return [base]
        if "preset" in inspect.signature(self.cells).parameters:
            return self.cells(base, seeds, preset=preset)
        return self.cells(base, seeds)


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(exp: Experiment) -> Experiment:
    EXPERIMENTS[exp.name] = exp
    return exp


def list_experiments(pattern: str = "*") -> list[str]:
    return sorted(n for n in EXPERIMENTS if fnmatch.fnmatch(n, pattern))


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise BadInput(f"unknown experiment {name!r} (known: {', '.join(list_experiments())})")
    return EXPERIMENTS[name]


def train_grid(ctx: Context, specs: list[RunSpec], label: str) -> list[dict]:
    """Execute every run of a grid (skipping finished phases) and return their summary records."""
    from ..executors import InProcess
    from ..executors.scheduler import execute
    from ..runs import revalidate

    revalidate(specs, ctx.ws)  # stale phases (changed model code or data, misplaced checkpoints) are recomputed
    return execute(specs, ctx.ws, ctx.executor or InProcess(), label)


def describe_scale(spec: RunSpec, preset: str) -> str:
    """What a result was computed on, so that no one mistakes a CPU-scale result for a paper-scale one."""
    what = f"{spec.data.name} / {spec.model.name}"
    if preset == "paper":
        return f"{what}, paper preset (the paper's protocol)"
    return f"{what}, cpu preset (scaled down; not paper scale)"


SHOWN = ("seed", "data.name", "data.train_size", "model.name", "model.width", "model.depth")  # in a set's label


def experiment_set(exp: Experiment, ctx: Context) -> tuple[str, dict]:
    """The set a run of `exp` belongs to: its id (a digest of the base spec, preset and seeds) and its label
    (dataset, model, width, depth, training-set size, preset, seeds, and the spec fields changed from the preset)."""
    from ..presets import base_spec

    spec = exp.grid(ctx.base, ctx.seeds, ctx.preset)[0]
    seeds = sorted(ctx.seeds)
    set_id = digest({"base": non_default(ctx.base), "preset": ctx.preset, "seeds": seeds})
    changed = _flatten(non_default(ctx.base, base_spec(ctx.preset, ctx.base.data.name)))
    label = {"dataset": spec.data.name, "train_size": spec.data.train_size, "model": spec.model.name,
             "width": spec.model.width, "depth": spec.model.depth, "preset": ctx.preset, "seeds": seeds,
             "changed": {k: v for k, v in changed.items() if k not in SHOWN}}
    return set_id, label


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        out |= _flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return out


def set_folder(store: Store, name: str, set_id: str) -> Path:
    return store.dir / "report" / name / set_id


def render_set(exp: Experiment, store: Store, set_id: str, records: list[dict], scale: str) -> list[Path]:
    """Write a set's report files (the experiment's Markdown and figures, and its records as CSV)."""
    folder = set_folder(store, exp.name, set_id)
    return exp.render(folder, store, records, scale) + [records_csv(folder / f"{exp.name}.csv", records)]


def run_experiment(exp: Experiment, ctx: Context) -> tuple[dict, list[Path]]:
    """Compute the experiment's records, keep them in the store as a set, and write the set's report files.
    Returns the set (as Store.experiments() lists it) and the files."""
    records = exp.records(ctx)
    scale = exp.scale(ctx) if exp.scale else describe_scale(exp.grid(ctx.base, ctx.seeds, ctx.preset)[0], ctx.preset)
    set_id, label = experiment_set(exp, ctx)
    ctx.store.record_experiment(exp.name, set_id, label, scale, records, ctx.provenance)
    entry = {"name": exp.name, "set_id": set_id, "label": label, "scale": scale, "records": records,
             "provenance": ctx.provenance}
    return entry, render_set(exp, ctx.store, set_id, records, scale)


from . import bad_minima, complexity, curves, distances, gap_vs_n, generalization, heuristics, implicit_bias, norm_vs_error, replication, toy  # noqa: E402,F401  (registration)
from . import local_minima, norm_bias, ntk_width, rank  # noqa: E402,F401  (registration: paper 004)
from . import error_vs_size, fixed_schedule, other_architectures, output_histogram  # noqa: E402,F401  (registration: paper 001 figures)
