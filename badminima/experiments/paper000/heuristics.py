"""`heuristics`: paper 000 Table 2 - the 8 combinations of {augmentation, l2, momentum}, from a random
and from an adversarial init; test accuracy as n, min, mean, max and sample std over seeds (the
paper's statistics, section 3), training accuracy min and max, the paper's published mean ± std beside."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...report.stats import STATS_HEADER, over_seeds, stats_cells
from ...report.tables import markdown_table
from ...spec import RECIPES, InitSpec, RunSpec, apply_recipe
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .bad_minima import percent
from .published import PAPER_000_TABLE2, PAPER_000_TABLE2_SOURCE


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    adversarial = replace(base.init, name="adversarial")
    return [replace(base, init=InitSpec() if init == "random" else adversarial, recipe=apply_recipe(base.recipe, recipe),
                    seed=seed) for seed in seeds for recipe in RECIPES for init in ("random", "adversarial")]


def records(ctx: Context) -> list[dict]:
    return [percent(r) for r in train_grid(ctx, cells(ctx.base, ctx.seeds), "heuristics")]


def summary_rows(recs: list[dict]) -> list[list]:
    rows = []
    for recipe in RECIPES:
        for init in ("random", "adversarial"):
            group = [r for r in recs if r["recipe"] == recipe and r["init"] == init]
            if not group:
                continue
            paper = PAPER_000_TABLE2[(init, recipe)]
            train = over_seeds(r["train_acc"] for r in group)
            rows.append([recipe, init, *stats_cells(r["test_acc"] for r in group), train["min"], train["max"],
                         f"{paper[0]:.3f} ± {paper[1]:.3f}", f"{paper[2]:.3f} ± {paper[3]:.3f}"])
    return rows


HEADER = (["mode", "init"] + [f"test acc % {s}" for s in STATS_HEADER] + ["train acc % min", "train acc % max",
          "train % (paper, mean ± std)", "test % (paper, mean ± std)"])


def table(recs: list[dict]):
    return HEADER, summary_rows(recs)


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted({r["seed"] for r in recs})
    md = folder / "heuristics.md"
    md.write_text(f"# heuristics: paper 000 Table 2\n\nOurs: {scale}, {len(seeds)} seed(s). "
                  f"Paper: {PAPER_000_TABLE2_SOURCE}.\n\n" + markdown_table(HEADER, summary_rows(recs)))
    return [md]


register_experiment(Experiment("heuristics", records, table, render, cells))
