"""`distances`: paper 000 Table 1 - relative distances between the weights of the bad-minima grid.

d(A -> B) = ||W_B - W_A||_F / ||W_A||_F over all parameters (measures.relative_distance), A being
the earlier model. W0R: the random init; W0A: the adversarial init (the random-label fit grown from
W0R); WVR, WSR: vanilla and SOTA solutions from W0R; WVA, WSA: vanilla and SOTA solutions from W0A.
Columns in the order of the paper's table (derived in experiments/paper000/published.py), then
rho = ||W0A||_F / ||W0R||_F, which the paper's rows bound (published.table1_rho_bounds).
"""
from __future__ import annotations

from pathlib import Path
from statistics import mean

from ...measures import frobenius_norm, relative_distance
from ...report.tables import markdown_table
from ...runs import load_final, plan
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .bad_minima import DEFAULT_SEEDS, cells
from .published import PAPER_000_TABLE1, PAPER_000_TABLE1_COLUMNS, PAPER_000_TABLE1_SOURCE, table1_rho_bounds

COLUMNS = [(name, *name.split("->")) for name in PAPER_000_TABLE1_COLUMNS]  # (name, start model, end model)
RHO = "rho"  # the record key of ||W0A||_F / ||W0R||_F
RHO_HEADER = "rho = ||W0A||/||W0R||"


def records(ctx: Context) -> list[dict]:
    specs = cells(ctx.base, ctx.seeds)
    summaries = train_grid(ctx, specs, "distances")
    out = []
    for seed in ctx.seeds:
        models = {}
        for spec, summary in zip(specs, summaries):
            if spec.seed != seed or summary["status"] != "done":
                continue
            phases = plan(spec)
            key = ("A" if spec.init.name == "adversarial" else "R")
            models["W0R"] = phases[0].id
            if key == "A":
                models["W0A"] = phases[1].id
            models[("WS" if summary["recipe"] == "sota" else "WV") + key] = phases[-1].id
        loaded = {k: load_final(ctx.store, pid, ctx.ws.skeleton(specs[0])) for k, pid in models.items()}
        row = {"seed": seed}
        for name, a, b in COLUMNS:
            row[name] = relative_distance(loaded[b], loaded[a]) if a in loaded and b in loaded else None
        row[RHO] = (frobenius_norm(loaded["W0A"]) / frobenius_norm(loaded["W0R"])
                    if "W0A" in loaded and "W0R" in loaded else None)
        out.append(row)
    return out


def table(recs: list[dict]):
    names = [c[0] for c in COLUMNS] + [RHO]
    return ["seed"] + names[:-1] + [RHO_HEADER], [[r["seed"]] + [r.get(n) for n in names] for r in recs]


def _mean(values: list) -> float | None:
    return mean(values) if values and all(v is not None for v in values) else None


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [c[0] for c in COLUMNS]
    ours = [["ours", scale + f" (mean of {len(recs)} seeds)"]
            + [_mean([r.get(n) for r in recs]) for n in names + [RHO]]]
    paper = []
    for (dataset, model), values in PAPER_000_TABLE1.items():
        low, high = table1_rho_bounds(dict(zip(PAPER_000_TABLE1_COLUMNS, values)))
        paper.append(["paper", f"{dataset} / {model}"] + list(values) + [f"{low:.3f} to {high:.3f}"])
    text = ("# distances: paper 000 Table 1\n\n"
            "d(A->B) = ||W_B - W_A||_F / ||W_A||_F. W0R random init; W0A adversarial init (fit to random labels "
            "from W0R); WVR/WSR vanilla/SOTA solutions from W0R; WVA/WSA vanilla/SOTA solutions from W0A. "
            f"The last column is ||W0A||_F / ||W0R||_F; for the paper's rows, the interval its distances allow.\n\n"
            f"Paper rows: {PAPER_000_TABLE1_SOURCE}.\n\n"
            + markdown_table(["source", "setting"] + names + [RHO_HEADER], ours + paper)
            + "\n## Every seed\n\n" + markdown_table(*table(recs)))
    path = folder / "distances.md"
    path.write_text(text)
    return [path]


register_experiment(Experiment("distances", records, table, render, cells,
                               default_seeds=DEFAULT_SEEDS))
