"""Statistics over seeds, as paper 000 reports them (section 3: "we ran each setup 5 times with
different random seeds and reported the min, max and average"): n, min, mean, max, and beside them
the *sample* standard deviation (n - 1 in the denominator; None for a single seed)."""
from __future__ import annotations

import math
import statistics


def over_seeds(values) -> dict:
    """{'n', 'min', 'mean', 'max', 'std'} of the finite values among `values` (None and NaN are
    left out and not counted in n); every entry None when nothing is left."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not kept:
        return {"n": 0, "min": None, "mean": None, "max": None, "std": None}
    return {"n": len(kept), "min": min(kept), "mean": statistics.fmean(kept), "max": max(kept),
            "std": statistics.stdev(kept) if len(kept) > 1 else None}


STATS_HEADER = ("n", "min", "mean", "max", "sample std")


def stats_cells(values) -> list:
    """The cells n, min, mean, max, sample std of `values` (tables format the numbers)."""
    s = over_seeds(values)
    return [s[k] for k in ("n", "min", "mean", "max", "std")]
