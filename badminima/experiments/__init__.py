"""Experiments: each paper artefact as a declarative grid of run specs plus how to summarize and draw it."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..spec import RunSpec
from ..store import Store


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    cells: Callable[[RunSpec, list[int]], list[RunSpec]]  # (base spec, seeds) -> the grid of runs
    table: Callable[[list[dict]], tuple[list[str], list[list]]]  # summary records -> (header, rows)
    render: Callable[[Path, Store, list[RunSpec], list[dict], str], list[Path]]  # writes report files


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


from . import bad_minima  # noqa: E402,F401  (registration)
