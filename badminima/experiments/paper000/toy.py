"""`toy`: paper 000 Figure 1 - decision boundaries of a 2-100-100-2 ReLU MLP on two 2-D Gaussian
classes (50 points each), batch size 10 (the earlier version, paper 003), in four settings:
(a) random init + true labels; (b) random init + random labels; (c) random labels, then true labels;
(d) as (c) with augmentation (two Gaussian-noise copies of each point), l2 and momentum.

Choices: (b) is the pretraining phase of (c) and (d) (Algorithm 1 with R = 1 and nothing zeroed).
The true-label phase runs a fixed 300 epochs rather than stopping at the first 100% epoch: the
classes are separable, so every setting fits them within a few epochs, and stopping there would
leave the regularizers of (d) no time to act; each panel reports its final training accuracy.
The toy's spec is fixed by the paper; only --seeds (and --out, --json) apply.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ...measures.margins import boundary_length, class_regions, decision_grid
from ...report.figures import decision_panels
from ...report.tables import markdown_table
from ...runs import load_final, plan, pretraining_data
from ...spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec, apply_recipe
from ...store import Store
from ...train import evaluate
from .. import Context, Experiment, register_experiment, train_grid

PRETRAIN = PhaseSpec(epochs=10000, batch_size=10, lr=0.1, patience=1500)
RECIPE = PhaseSpec(epochs=300, batch_size=10, lr=0.01, momentum=0.9, weight_decay=5e-3, augment=True,
                   stop_at_100=False)
TOY = RunSpec(DataSpec("gaussians2d"), ModelSpec("mlp", width=100, depth=2),
              InitSpec("adversarial", replication_factor=1, zeroed_percent=0.0, pretrain=PRETRAIN), RECIPE)
SETTINGS = ("a: true labels", "b: random labels", "c: random, then true labels", "d: random, then true + DA, l2, momentum")
GRID_SPACING = 0.05


def cells(_base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for seed in seeds for spec in (
        replace(TOY, init=InitSpec(), recipe=apply_recipe(RECIPE, "vanilla"), seed=seed),
        replace(TOY, recipe=apply_recipe(RECIPE, "vanilla"), seed=seed),
        replace(TOY, recipe=apply_recipe(RECIPE, "sota"), seed=seed))]


def _bounds(x: torch.Tensor) -> tuple[float, float, float, float]:
    lo, hi = x.min(0).values - 1.0, x.max(0).values + 1.0
    return (round(lo[0].item(), 1), round(hi[0].item(), 1), round(lo[1].item(), 1), round(hi[1].item(), 1))


def records(ctx: Context) -> list[dict]:
    specs = cells(ctx.base, ctx.seeds)
    train_grid(ctx, specs, "toy")
    out = []
    for i, seed in enumerate(ctx.seeds):
        true_run, adv_vanilla, adv_sota = specs[3 * i:3 * i + 3]
        data = ctx.ws.dataset(true_run)
        random_labels = pretraining_data(adv_vanilla, ctx.ws)[1]  # what panel b was fitted to
        panels = [(true_run, plan(true_run)[-1].id, data.y_train), (adv_vanilla, plan(adv_vanilla)[1].id, random_labels),
                  (adv_vanilla, plan(adv_vanilla)[-1].id, data.y_train), (adv_sota, plan(adv_sota)[-1].id, data.y_train)]
        bounds = _bounds(data.x_train)
        for setting, (spec, phase_id, labels) in zip(SETTINGS, panels):
            model = load_final(ctx.store, phase_id, ctx.ws.skeleton(spec))
            grid = decision_grid(model, bounds, GRID_SPACING)
            out.append({"seed": seed, "setting": setting, "phase_id": phase_id,
                        "train_acc": round(100 * evaluate(model, data.x_train, labels)[1], 3),
                        "test_acc": round(100 * evaluate(model, data.x_test, data.y_test)[1], 3),
                        "boundary_length": round(boundary_length(grid, GRID_SPACING), 3),
                        "class_regions": class_regions(grid)["total"], "bounds": list(bounds),
                        "grid": grid.tolist(), "points": data.x_train.tolist(), "labels": labels.tolist()})
    return out


def table(recs: list[dict]):
    header = ["seed", "setting", "train acc % (own labels)", "test acc %", "boundary length", "class regions"]
    return header, [[r["seed"], r["setting"], r["train_acc"], r["test_acc"], r["boundary_length"], r["class_regions"]]
                    for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    first_seed = recs[0]["seed"]
    panels = [{**r, "title": r["setting"], "caption": f"test {r['test_acc']:.1f}%, boundary {r['boundary_length']:.1f}, "
               f"{r['class_regions']} regions"} for r in recs if r["seed"] == first_seed]
    figure = decision_panels(folder / "toy.png", panels, f"Figure 1 of paper 000 (seed {first_seed}): gaussians2d, "
                             "MLP 2-100-100-2, batch 10")
    md = folder / "toy.md"
    md.write_text("# toy: paper 000 Figure 1\n\nTwo 2-D Gaussian classes (50 training points each), test accuracy "
                  "on 1000 fresh samples; boundary length and class regions on a grid of spacing "
                  f"{GRID_SPACING} over the data's range +-1. Panel (b) is scored on its own random labels.\n\n"
                  + markdown_table(*table(recs)))
    return [md, figure]


register_experiment(Experiment("toy", records, table, render, cells))
