"""`bad-minima`: the core experiment of paper 000 (Algorithm 1, sections 2-3, Table 2's first and
last rows): random vs adversarial initialization x vanilla vs SOTA SGD on the true labels."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from statistics import mean, pstdev

from ..report.figures import curves_figure
from ..report.tables import markdown_table
from ..spec import InitSpec, RunSpec, apply_recipe
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .published import PAPER_000_TABLE2, PAPER_000_TABLE2_SOURCE

INITS = ("random", "adversarial")
RECIPES = ("vanilla", "sota")


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    adversarial = base.init if base.init.name == "adversarial" else replace(base.init, name="adversarial")
    return [replace(base, init=InitSpec() if init == "random" else adversarial,
                    recipe=apply_recipe(base.recipe, recipe), seed=seed)
            for seed in seeds for init in INITS for recipe in RECIPES]


HEADER = ["init", "recipe", "seed", "train acc %", "test acc %", "epochs", "distance travelled", "status"]


def table(records: list[dict]) -> tuple[list[str], list[list]]:
    return HEADER, [[r["init"], r["recipe"], r["seed"], r["train_acc"], r["test_acc"], r["epochs"],
                     r["distance_travelled"], r["status"]] for r in records]


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{mean(values):.2f} ± {pstdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def records(ctx: Context) -> list[dict]:
    return [percent(r) for r in train_grid(ctx, cells(ctx.base, ctx.seeds), "bad-minima")]


def percent(record: dict) -> dict:
    """A summary record with its accuracies in percent (as the paper reports them)."""
    return {**record, **{k: None if record[k] is None else round(100 * record[k], 4) for k in ("train_acc", "test_acc")}}


def render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """bad-minima.md (per-run table, mean ± std over seeds beside paper 000's Table 2) and
    bad-minima-test-acc.png (test accuracy per epoch)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for init in INITS:
        for recipe in RECIPES:
            group = [r for r in records if r["init"] == init and r["recipe"] == recipe]
            paper = PAPER_000_TABLE2[(init, recipe)]
            rows.append([init, recipe, len(group), _mean_std([r["train_acc"] for r in group]),
                         _mean_std([r["test_acc"] for r in group]),
                         _mean_std([r["distance_travelled"] for r in group]),
                         f"{paper[0]:.3f} ± {paper[1]:.3f}", f"{paper[2]:.3f} ± {paper[3]:.3f}"])
    text = (f"# bad-minima: random vs adversarial init, vanilla vs SOTA SGD\n\n"
            f"Ours: {scale}. Paper: {PAPER_000_TABLE2_SOURCE}. Accuracies in percent, at the end of "
            f"the true-label phase (100% training accuracy or the epoch cap).\n\n"
            + markdown_table(["init", "recipe", "seeds", "train acc % (ours)", "test acc % (ours)",
                              "distance travelled (ours)", "train acc % (paper)", "test acc % (paper)"], rows)
            + "\n## Every run\n\n" + markdown_table(*table(records)))
    md = folder / "bad-minima.md"
    md.write_text(text)
    series: dict[str, list[list[float]]] = {}
    for record in records:
        history = store.epochs(record["run_id"])
        if history:
            series.setdefault(f"{record['init']} init, {record['recipe']}", []).append(
                [100 * h["test_acc"] for h in history])
    paths = [md]
    if series:
        paths.append(curves_figure(folder / "bad-minima-test-acc.png", series, "test accuracy (%)",
                                   f"Test accuracy per epoch (true-label phase)\n{scale}"))
    return paths


register_experiment(Experiment(
    "bad-minima", "paper 000: random vs adversarial (Algorithm 1) init x vanilla vs SOTA SGD; Table 2 style summary",
    records, table, render, cells))
