"""`bad-minima`: the core experiment of paper 000 (Algorithm 1, sections 2-3, Table 2's first and
last rows): random vs adversarial initialization x vanilla vs SOTA SGD on the true labels.

Every true-label phase trains its whole schedule (as the paper and the authors' code do) and records
`epoch_100`, the first epoch with 100% un-augmented training accuracy. Over seeds the tables give n,
min, mean and max (the paper's statistics, section 3) with the sample std beside them; the verdict
says whether the paper's direction holds beyond the seed spread: the best adversarial-init vanilla
run below the worst random-init vanilla run, every vanilla run at 100% training accuracy.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...report.figures import curves_figure
from ...report.stats import STATS_HEADER, over_seeds, stats_cells
from ...report.tables import markdown_table
from ...spec import InitSpec, RunSpec, apply_recipe
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .published import PAPER_000_TABLE2, PAPER_000_TABLE2_SOURCE

INITS = ("random", "adversarial")
RECIPES = ("vanilla", "sota")
DEFAULT_SEEDS = (0, 1, 2)


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    adversarial = base.init if base.init.name == "adversarial" else replace(base.init, name="adversarial")
    return [replace(base, init=InitSpec() if init == "random" else adversarial,
                    recipe=apply_recipe(base.recipe, recipe), seed=seed)
            for seed in seeds for init in INITS for recipe in RECIPES]


def records(ctx: Context) -> list[dict]:
    return [percent(r) for r in train_grid(ctx, cells(ctx.base, ctx.seeds), "bad-minima")]


def percent(record: dict) -> dict:
    """A summary record with its accuracies in percent (as the paper reports them)."""
    keys = [k for k in ("train_acc", "test_acc", "pretrain_train_acc") if k in record]
    return {**record, **{k: None if record[k] is None else round(100 * record[k], 4) for k in keys}}


def _epoch_100_cell(group: list[dict]) -> str:
    """'first-last' epoch at which the seeds reached 100% training accuracy, and how many never did."""
    reached = [r["epoch_100"] for r in group if r.get("epoch_100") is not None]
    never = len(group) - len(reached)
    text = (f"{min(reached)}" if min(reached) == max(reached) else f"{min(reached)}-{max(reached)}") if reached else ""
    return (text + (f"; never: {never}" if never else "")) if text else f"never ({never})"


SUMMARY_HEADER = (["init", "recipe"] + [f"test acc % {s}" for s in STATS_HEADER]
                  + ["train acc % min", "train acc % max", "epoch_100"])


def summary_rows(recs: list[dict]) -> list[list]:
    rows = []
    for init in INITS:
        for recipe in RECIPES:
            group = [r for r in recs if r["init"] == init and r["recipe"] == recipe]
            if group:
                train = over_seeds(r["train_acc"] for r in group)
                rows.append([init, recipe, *stats_cells(r["test_acc"] for r in group), train["min"], train["max"],
                             _epoch_100_cell(group)])
    return rows


def table(recs: list[dict]) -> tuple[list[str], list[list]]:
    return SUMMARY_HEADER, summary_rows(recs)


def verdict(recs: list[dict]) -> str:
    """Whether paper 000's direction holds beyond the seed spread at 100% training accuracy."""
    rv = [r for r in recs if r["init"] == "random" and r["recipe"] == "vanilla"]
    av = [r for r in recs if r["init"] == "adversarial" and r["recipe"] == "vanilla"]
    if not rv or not av:
        return "direction: not tested (needs vanilla runs from both inits)"
    fitted = all(r["train_acc"] == 100.0 for r in rv + av)
    tests_av, tests_rv = [r["test_acc"] for r in av], [r["test_acc"] for r in rv]
    if None in tests_av or None in tests_rv:
        return "direction: not tested (a vanilla run has no result: diverged or missing)"
    best_av, worst_rv = max(tests_av), min(tests_rv)
    holds = fitted and best_av < worst_rv
    return (f"direction {'HOLDS' if holds else 'does NOT hold'}: best adversarial-init vanilla test acc "
            f"{best_av:.2f}% {'<' if best_av < worst_rv else '>='} worst random-init vanilla {worst_rv:.2f}% "
            f"(n = {len(av)} and {len(rv)} seeds); every vanilla run at 100% training accuracy: "
            f"{'yes' if fitted else 'NO'}")


RUN_HEADER = ["init", "recipe", "seed", "train acc %", "test acc %", "epochs", "epoch_100", "distance travelled",
              "pretrain train acc %", "pretrain epochs", "pretrain epoch_100", "pretrain stop", "status"]


def run_rows(recs: list[dict]) -> list[list]:
    return [[r["init"], r["recipe"], r["seed"], r["train_acc"], r["test_acc"], r["epochs"],
             "never" if r.get("epoch_100") is None else r["epoch_100"], r["distance_travelled"],
             r.get("pretrain_train_acc"), r.get("pretrain_epochs"),
             ("never" if r.get("pretrain_epoch_100") is None else r["pretrain_epoch_100"]) if r["init"] != "random" else None,
             r.get("pretrain_stop_reason"), r["status"]] for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    """bad-minima.md (n/min/mean/max over seeds, the paper's Table 2 beside, the verdict, every run)
    and bad-minima-test-acc.png (test accuracy per epoch, min-max band over seeds)."""
    folder.mkdir(parents=True, exist_ok=True)
    paper_rows = [[init, recipe, f"{PAPER_000_TABLE2[(init, recipe)][0]:.3f} ± {PAPER_000_TABLE2[(init, recipe)][1]:.3f}",
                   f"{PAPER_000_TABLE2[(init, recipe)][2]:.3f} ± {PAPER_000_TABLE2[(init, recipe)][3]:.3f}"]
                  for init in INITS for recipe in RECIPES]
    text = (f"# bad-minima: random vs adversarial init, vanilla vs SOTA SGD\n\n"
            f"Ours: {scale}. Accuracies in percent at the end of the whole true-label schedule; `epoch_100` is "
            f"the first epoch with 100% un-augmented training accuracy (\"never\": not reached within the "
            f"schedule). Statistics over seeds: n, min, mean, max, sample std.\n\n"
            f"**{verdict(recs)}**\n\n"
            + markdown_table(SUMMARY_HEADER, summary_rows(recs))
            + f"\n## The paper\n\n{PAPER_000_TABLE2_SOURCE}; mean ± std as published.\n\n"
            + markdown_table(["init", "recipe", "train acc % (paper)", "test acc % (paper)"], paper_rows)
            + "\n## Every run\n\nPretraining columns: Algorithm 1's phase on the random labels (its fit, length "
              "and why it stopped).\n\n" + markdown_table(RUN_HEADER, run_rows(recs)))
    md = folder / "bad-minima.md"
    md.write_text(text)
    series: dict[tuple, list[list[float]]] = {}
    for record in recs:
        history = store.epochs(record["run_id"])
        if history:
            series.setdefault((record["init"], record["recipe"]), []).append([100 * h["test_acc"] for h in history])
    paths = [md]
    if series:
        labelled = {f"{init} init, {recipe} (n = {len(runs)})": runs for (init, recipe), runs in series.items()}
        paths.append(curves_figure(folder / "bad-minima-test-acc.png", labelled, "test accuracy (%)",
                                   f"Test accuracy per epoch (true-label phase), mean and min-max over seeds\n{scale}"))
    return paths


register_experiment(Experiment(
    "bad-minima", records, table, render, cells, default_seeds=DEFAULT_SEEDS, verdict=verdict))
