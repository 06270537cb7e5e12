"""What paper 004's experiments share (`local-minima`, `norm-bias`, `ntk-width`, `rank`, `rank-adversarial`):
models of a run's phases, measure values cached in the store, and mean ± standard error."""
from __future__ import annotations

import math
from typing import Any, Callable

from ...measuring import cached_measure
from ...runs import load_final, plan
from ...spec import RunSpec
from .. import Context


def phase_model(ctx: Context, spec: RunSpec, index: int):
    """The final model of phase `index` of `spec`'s run (0: its initialization, -1: the run), in eval mode."""
    return load_final(ctx.store, plan(spec)[index].id, ctx.ws.skeleton(spec)).eval()


def cached(ctx: Context, phase_id: str, name: str, compute: Callable[[], Any]) -> Any:
    """The measure `name` of a phase: read from the store, or computed and recorded there (with its seconds)."""
    return cached_measure(ctx.store, phase_id, name, compute)["value"]


def mean_se(values: list[float | None]) -> tuple[float | None, float | None]:
    """(mean, standard error = sample std / sqrt(n)) of the values that are not None; se None below 2 values."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = math.fsum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def format_mean_se(values: list[float | None], digits: int = 2) -> str:
    """"m (±s)" as the paper's tables print it; "m" with a single value; "-" with none."""
    m, s = mean_se(values)
    if m is None:
        return "-"
    return f"{m:.{digits}f}" if s is None else f"{m:.{digits}f} (±{s:.{digits}f})"


def rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")
