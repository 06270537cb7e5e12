"""`heuristics`: paper 000 Table 2 - the 8 combinations of {augmentation, l2, momentum}, from a random
and from an adversarial init; train and test accuracy, mean ± std over seeds, the paper's beside."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from statistics import mean, pstdev

from ..report.tables import markdown_table
from ..spec import RECIPES, InitSpec, RunSpec, apply_recipe
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .bad_minima import percent
from .published import PAPER_000_TABLE2, PAPER_000_TABLE2_SOURCE


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    adversarial = replace(base.init, name="adversarial")
    return [replace(base, init=InitSpec() if init == "random" else adversarial, recipe=apply_recipe(base.recipe, recipe),
                    seed=seed) for seed in seeds for recipe in RECIPES for init in ("random", "adversarial")]


def records(ctx: Context) -> list[dict]:
    return [percent(r) for r in train_grid(ctx, cells(ctx.base, ctx.seeds), "heuristics")]


def _stat(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    return f"{mean(values):.3f} ± {pstdev(values):.3f}" if values else "-"


def summary_rows(recs: list[dict]) -> list[list]:
    rows = []
    for recipe in RECIPES:
        row = [recipe]
        for init in ("random", "adversarial"):
            group = [r for r in recs if r["recipe"] == recipe and r["init"] == init]
            paper = PAPER_000_TABLE2[(init, recipe)]
            row += [_stat([r["train_acc"] for r in group]), _stat([r["test_acc"] for r in group]),
                    f"{paper[0]:.3f} ± {paper[1]:.3f}", f"{paper[2]:.3f} ± {paper[3]:.3f}"]
        rows.append(row)
    return rows


HEADER = ["mode"] + [f"{init} init {what}" for init in ("random", "adversarial")
                     for what in ("train % (ours)", "test % (ours)", "train % (paper)", "test % (paper)")]


def table(recs: list[dict]):
    return HEADER, summary_rows(recs)


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted({r["seed"] for r in recs})
    md = folder / "heuristics.md"
    md.write_text(f"# heuristics: paper 000 Table 2\n\nOurs: {scale}, mean ± std over {len(seeds)} seed(s). "
                  f"Paper: {PAPER_000_TABLE2_SOURCE}.\n\n" + markdown_table(HEADER, summary_rows(recs)))
    return [md]


register_experiment(Experiment("heuristics", "paper 000 Table 2: the 8 combinations of augmentation, l2 and momentum",
                               records, table, render, cells))
