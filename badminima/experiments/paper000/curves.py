"""`curves`: paper 000 Figures 2-3 - train and test accuracy per epoch of the true-label phase,
random/adversarial init x vanilla/SOTA SGD, min/mean/max over seeds. Same runs as `bad-minima`."""
from __future__ import annotations

from pathlib import Path

from ...report.figures import curves_figure
from ...report.tables import markdown_table
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .bad_minima import DEFAULT_SEEDS, cells, percent


def records(ctx: Context) -> list[dict]:
    return [percent(r) for r in train_grid(ctx, cells(ctx.base, ctx.seeds), "curves")]


def table(recs: list[dict]):
    header = ["init", "recipe", "seed", "epochs", "epoch_100", "final train acc %", "final test acc %"]
    return header, [[r["init"], r["recipe"], r["seed"], r["epochs"], "never" if r.get("epoch_100") is None
                     else r["epoch_100"], r["train_acc"], r["test_acc"]] for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "curves.md"
    md.write_text("# curves: paper 000 Figures 2-3\n\nTraining accuracy (running over each epoch) and test accuracy "
                  f"per epoch of the true-label phase; ours: {scale}.\n\n" + markdown_table(*table(recs)))
    paths = [md]
    for key, name, label in (("train_acc", "train", "training accuracy (%, running over the epoch)"),
                             ("test_acc", "test", "test accuracy (%)")):
        series: dict[str, list[list[float]]] = {}
        for r in recs:
            history = store.epochs(r["run_id"])
            if history:
                series.setdefault(f"{r['init']} init, {r['recipe']}", []).append([100 * h[key] for h in history])
        if series:
            series = {f"{k} (n = {len(runs)})": runs for k, runs in series.items()}
            paths.append(curves_figure(folder / f"curves-{name}.png", series, label,
                                       f"Figure {2 if name == 'train' else 3} of paper 000 (min/mean/max over seeds)\n{scale}"))
    return paths


register_experiment(Experiment("curves", records, table, render, cells, default_seeds=DEFAULT_SEEDS))
