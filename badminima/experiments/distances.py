"""`distances`: paper 000 Table 1 - relative distances between the weights of the bad-minima grid.

d(A -> B) = ||W_B - W_A||_F / ||W_A||_F over all parameters (measures.relative_distance), A being
the earlier model. W0R: the random init; W0A: the adversarial init (the random-label fit grown from
W0R); WVR, WSR: vanilla and SOTA solutions from W0R; WVA, WSA: vanilla and SOTA solutions from W0A.
"""
from __future__ import annotations

from pathlib import Path
from statistics import mean

from ..measures import relative_distance
from ..report.tables import markdown_table
from ..runs import load_final, plan
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .bad_minima import DEFAULT_SEEDS, cells
from .published import PAPER_000_TABLE1, PAPER_000_TABLE1_SOURCE

COLUMNS = [  # (name, start model, end model)
    ("W0R->W0A", "W0R", "W0A"), ("W0R->WSR", "W0R", "WSR"), ("W0R->WVR", "W0R", "WVR"),
    ("W0R->WVA", "W0R", "WVA"), ("W0R->WSA", "W0R", "WSA"), ("W0A->WVA", "W0A", "WVA"), ("W0A->WSA", "W0A", "WSA"),
]


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
        out.append(row)
    return out


def table(recs: list[dict]):
    return ["seed"] + [c[0] for c in COLUMNS], [[r["seed"]] + [r[c[0]] for c in COLUMNS] for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ours = [["ours: " + scale + f" (mean of {len(recs)} seeds)"]
            + [mean(r[c[0]] for r in recs) if all(r[c[0]] is not None for r in recs) else None for c in COLUMNS]]
    paper = [[f"paper: {model}"] + list(values) for model, values in PAPER_000_TABLE1.items()]
    text = ("# distances: paper 000 Table 1\n\n"
            "d(A->B) = ||W_B - W_A||_F / ||W_A||_F. W0R random init; W0A adversarial init (fit to random labels "
            "from W0R); WVR/WSR vanilla/SOTA solutions from W0R; WVA/WSA vanilla/SOTA solutions from W0A.\n\n"
            f"Paper rows: {PAPER_000_TABLE1_SOURCE}.\n\n"
            + markdown_table(["model"] + [c[0] for c in COLUMNS], ours + paper)
            + "\n## Every seed\n\n" + markdown_table(*table(recs)))
    path = folder / "distances.md"
    path.write_text(text)
    return [path]


register_experiment(Experiment("distances", "paper 000 Table 1: distances between random/adversarial inits and the "
                               "vanilla/SOTA solutions", records, table, render, cells,
                               default_seeds=DEFAULT_SEEDS))
