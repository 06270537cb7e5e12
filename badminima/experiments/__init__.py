"""Experiments: each paper artefact as a declarative grid of run specs (or a direct computation),
plus how to tabulate and draw its records.

An experiment computes summary records (plain JSON-able dicts) from a `Context`; its records are
kept in the store, so `badminima report OUT` can redraw every experiment present in OUT.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..spec import RunSpec
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


def run_experiment(exp: Experiment, ctx: Context) -> tuple[list[dict], list[Path], str]:
    """Compute the experiment's records, keep them in the store, and write its report files."""
    records = exp.records(ctx)
    scale = exp.scale(ctx) if exp.scale else describe_scale(exp.cells(ctx.base, ctx.seeds)[0] if exp.cells else ctx.base,
                                                             ctx.preset)
    ctx.store.record_experiment(exp.name, scale, records)
    paths = exp.render(ctx.store.dir / "report", ctx.store, records, scale)
    return records, paths, scale


from . import bad_minima, complexity, curves, distances, gap_vs_n, generalization, heuristics, implicit_bias, norm_vs_error, replication, toy  # noqa: E402,F401  (registration)
from . import local_minima, norm_bias, ntk_width, rank  # noqa: E402,F401  (registration: paper 004)
