"""`replication`: paper 000 Figure 4 - test accuracy of vanilla and SOTA SGD from adversarial inits
made with several replication factors R (zeroed fraction fixed), random-init runs as references."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...report.figures import lines_figure
from ...report.stats import STATS_HEADER, stats_cells
from ...report.tables import markdown_table
from ...spec import InitSpec, RunSpec, apply_recipe
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .bad_minima import percent

FACTORS = {"cpu": (1, 2, 3), "paper": (1, 2, 5, 10)}


def _cells(base: RunSpec, seeds: list[int], factors: tuple[int, ...]) -> list[RunSpec]:
    adversarial = replace(base.init, name="adversarial")
    out = []
    for seed in seeds:
        for recipe in ("vanilla", "sota"):
            out.append(replace(base, init=InitSpec(), recipe=apply_recipe(base.recipe, recipe), seed=seed))
            out += [replace(base, init=replace(adversarial, replication_factor=r), recipe=apply_recipe(base.recipe, recipe),
                            seed=seed) for r in factors]
    return out


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return _cells(base, seeds, FACTORS["cpu"])


def records(ctx: Context) -> list[dict]:
    specs = _cells(ctx.base, ctx.seeds, FACTORS.get(ctx.preset, FACTORS["cpu"]))
    summaries = train_grid(ctx, specs, "replication")
    return [{**percent(s), "replication_factor": spec.init.replication_factor if spec.init.name == "adversarial" else 0}
            for spec, s in zip(specs, summaries)]


def table(recs: list[dict]):
    """One row per (R, recipe): test accuracy over seeds as n, min, mean, max, sample std."""
    header = ["R (0: random init)", "recipe"] + [f"test acc % {s}" for s in STATS_HEADER]
    keys = sorted({(r["replication_factor"], r["recipe"]) for r in recs}, key=lambda k: (k[1] != "vanilla", k[0]))
    return header, [[factor, recipe, *stats_cells(r["test_acc"] for r in recs
                                                  if r["replication_factor"] == factor and r["recipe"] == recipe)]
                    for factor, recipe in keys]


def run_table(recs: list[dict]):
    header = ["R (0: random init)", "recipe", "seed", "train acc %", "test acc %", "epochs", "epoch_100"]
    return header, [[r["replication_factor"], r["recipe"], r["seed"], r["train_acc"], r["test_acc"], r["epochs"],
                     "never" if r.get("epoch_100") is None else r["epoch_100"]] for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    factors = sorted({r["replication_factor"] for r in recs if r["replication_factor"] > 0})
    n = len({r["seed"] for r in recs})
    series = {f"{recipe}, adversarial init (n = {n})": [[r["test_acc"] for r in recs if r["recipe"] == recipe
                                                         and r["replication_factor"] == f] for f in factors]
              for recipe in ("vanilla", "sota")}
    refs = {}
    for recipe in ("vanilla", "sota"):
        values = [r["test_acc"] for r in recs if r["recipe"] == recipe and r["replication_factor"] == 0
                  and r["test_acc"] is not None]
        if values:
            refs[f"{recipe}, random init (mean of n = {len(values)})"] = sum(values) / len(values)
    figure = lines_figure(folder / "replication.png", factors, series, "replication factor R", "test accuracy (%)",
                          f"Figure 4 of paper 000: effect of R (mean, min-max band over seeds)\n{scale}", refs)
    md = folder / "replication.md"
    md.write_text("# replication: paper 000 Figure 4\n\nTest accuracy (%) after training on the true labels from an "
                  "adversarial init made with R replicas (R = 0: from the random init), over seeds.\n\n"
                  + markdown_table(*table(recs)) + "\n## Every run\n\n" + markdown_table(*run_table(recs)))
    return [md, figure]


register_experiment(Experiment("replication", records, table, render, cells))
