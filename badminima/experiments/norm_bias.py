"""`norm-bias`: paper 004 section 3, Tables 2, 3 and 8 - no weight decay vs weight decay vs norm-bias.

Norm-bias (equation 2) pulls ||theta||^2 towards mu^2 instead of 0; see train/regularizers.py for both forms:
"absolute" (the default, the paper's "R_0 is weight decay" and the authors' update), c/2 * | ||theta||^2 - mu^2 |,
whose gradient c * sign(||theta||^2 - mu^2) * theta is the authors' update at their coefficient c; and "squared",
c * (||theta||^2 - mu^2)^2 as equation 2 is printed. mu follows the paper's heuristic: train with weight decay
first, record the parameter norm reached, and set mu "slightly higher" - MU_FACTOR times the mean norm over seeds,
3 significant digits (the paper preset on ResNet-18 uses the paper's mu^2 = 2500). Weight decay is off in the
norm-bias runs (R_0 is weight decay's role). Test accuracy is reported as mean (± standard error) over seeds, as
the paper.

Coefficients: weight decay WEIGHT_DECAY (ResNet-18's, section 3); absolute norm-bias NORM_BIAS (the paper's
ResNet-18/DenseNet value, 0.005, at the authors' scale: weight decay 0.005 above mu); squared norm-bias
NORM_BIAS / (2 mu^2), our choice (the paper has no coefficient for the printed form; with it both forms pull
equally hard, c * theta, at ||theta||^2 = mu^2 / 2 and 3 mu^2 / 2).

cpu preset: MNIST-1D, the 4-layer MLP of Table 3 (3 hidden layers of 256), 60 epochs with the paper's schedule
scaled (lr 0.1, x0.1 after epochs 20, 35, 45, 55; momentum 0.9; augmentation). paper preset: 300 epochs, x0.1
after 100, 175, 225, 275 (appendix A.5), batch 128, random crops and flips.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from ..measures.norms import frobenius_norm
from ..presets import user_model
from ..report.figures import bars_figure
from ..report.tables import markdown_table
from ..runs import plan
from ..spec import DataSpec, InitSpec, PhaseSpec, RunSpec
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, format_mean_se, phase_model, rounded
from .published004 import NORM_BIAS_RESNET18, SOURCE, TABLE3, TABLE8

WEIGHT_DECAY = 5e-4
NORM_BIAS = 0.005
MU_FACTOR = 1.1
REGULARIZERS = ("none", "weight decay", "norm-bias (absolute)", "norm-bias (squared)")
CPU_MODEL = {"width": 256, "depth": 3}
CPU_RECIPE = PhaseSpec(epochs=60, batch_size=128, lr=0.1, lr_milestones=(20, 35, 45, 55), momentum=0.9, augment=True,
                       stop_at_100=False)
PAPER_RECIPE = PhaseSpec(epochs=300, batch_size=128, lr=0.1, lr_milestones=(100, 175, 225, 275), momentum=0.9,
                         augment=True, stop_at_100=False)


def base_spec(base: RunSpec, preset: str) -> RunSpec:
    model = user_model(base, preset)
    if preset != "paper" and model.name == "mlp":
        model = replace(model, width=model.width or CPU_MODEL["width"], depth=model.depth or CPU_MODEL["depth"])
    return RunSpec(DataSpec(base.data.name, base.data.train_size), model, InitSpec(),
                   PAPER_RECIPE if preset == "paper" else CPU_RECIPE)


def regularized(spec: RunSpec, regularizer: str, mu: float | None = None) -> RunSpec:
    """`spec` with one of REGULARIZERS (norm-bias needs mu)."""
    recipe = replace(spec.recipe, weight_decay=0.0)
    if regularizer == "weight decay":
        recipe = replace(recipe, weight_decay=WEIGHT_DECAY)
    elif regularizer.startswith("norm-bias"):
        form = "absolute" if "absolute" in regularizer else "squared"
        coefficient = NORM_BIAS if form == "absolute" else float(f"{NORM_BIAS / (2 * mu ** 2):.4g}")
        recipe = replace(recipe, norm_bias=coefficient, norm_bias_mu=mu, norm_bias_form=form)
    return replace(spec, recipe=recipe)


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    """The runs that do not need mu (no weight decay, weight decay); the norm-bias runs follow from them."""
    spec = base_spec(base, "cpu")
    return [replace(regularized(spec, r), seed=s) for s in seeds for r in REGULARIZERS[:2]]


def _norm(ctx: Context, spec: RunSpec) -> float:
    return cached(ctx, plan(spec)[-1].id, "frobenius", lambda: frobenius_norm(phase_model(ctx, spec, -1)))


def choose_mu(norms: list[float]) -> float:
    """The paper's heuristic: slightly (MU_FACTOR) above the mean norm reached with weight decay, 3 digits."""
    return float(f"{MU_FACTOR * math.fsum(norms) / len(norms):.3g}")


def records(ctx: Context) -> list[dict]:
    spec = base_spec(ctx.base, ctx.preset)
    first = [(r, replace(regularized(spec, r), seed=s)) for s in ctx.seeds for r in REGULARIZERS[:2]]
    summaries = train_grid(ctx, [run for _, run in first], "norm-bias: no weight decay, weight decay")
    if ctx.preset == "paper" and spec.model.name == "resnet18":
        mu, how = math.sqrt(NORM_BIAS_RESNET18["mu_squared"]), "the paper's mu^2 = 2500 (ResNet-18)"
    else:
        decayed = [_norm(ctx, run) for (r, run), summ in zip(first, summaries) if r == "weight decay" and summ["status"] == "done"]
        mu = choose_mu(decayed) if decayed else 1.0
        how = f"{MU_FACTOR} x the mean norm with weight decay ({', '.join(f'{n:.4g}' for n in decayed)})"
    second = [(r, replace(regularized(spec, r, mu), seed=s)) for s in ctx.seeds for r in REGULARIZERS[2:]]
    summaries += train_grid(ctx, [run for _, run in second], "norm-bias")
    out = []
    for (regularizer, run), summary in zip(first + second, summaries):
        done = summary["status"] == "done"
        out.append({"regularizer": regularizer, "seed": run.seed, "run_id": summary["run_id"], "status": summary["status"],
                    "test_acc": None if not done else round(100 * summary["test_acc"], 3),
                    "train_acc": None if not done else round(100 * summary["train_acc"], 3),
                    "parameter_norm": rounded(_norm(ctx, run)) if done else None, "mu": mu, "mu_rule": how,
                    "weight_decay": run.recipe.weight_decay, "norm_bias": run.recipe.norm_bias,
                    "norm_bias_form": run.recipe.norm_bias_form if run.recipe.norm_bias else None})
    return out


def table(recs: list[dict]):
    header = ["regularizer", "seed", "test acc %", "train acc %", "param norm", "mu", "coefficient", "status"]
    return header, [[r["regularizer"], r["seed"], r["test_acc"], r["train_acc"], r["parameter_norm"],
                     r["mu"] if r["norm_bias"] else None, f"{r['norm_bias'] or r['weight_decay']:g}", r["status"]]
                    for r in recs]


def summary_rows(recs: list[dict]) -> list[list]:
    return [[reg, len([r for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["test_acc"] for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["train_acc"] for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["parameter_norm"] for r in recs if r["regularizer"] == reg])] for reg in REGULARIZERS]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mu_rule = recs[0]["mu_rule"] if recs else "-"
    paper = [[f"{name} ({table_name})", *(f"{m:.2f} (±{s:.2f})" for m, s in values)]
             for table_name, rows in (("Table 3, CIFAR-10", TABLE3), ("Table 8, CIFAR-100", TABLE8))
             for name, values in rows.items()]
    md = folder / "norm-bias.md"
    md.write_text(f"# norm-bias: paper 004 Tables 2, 3 and 8\n\nOurs: {scale}. mu = {recs[0]['mu'] if recs else '-'}: "
                  f"{mu_rule}. Test accuracy %, mean (± standard error) over seeds; param norm is the l2 norm of all "
                  "parameters after training.\n\n"
                  + markdown_table(["regularizer", "seeds", "test acc %", "train acc %", "param norm"], summary_rows(recs))
                  + "\n## Every run\n\n" + markdown_table(*table(recs))
                  + f"\n## Paper ({SOURCE}), test accuracy %, mean (± standard error) over 10 runs\n\n"
                  + markdown_table(["model", "no weight decay", "weight decay", "norm-bias"], paper))
    groups = list(REGULARIZERS)

    def values(key):
        return [[r[key] for r in recs if r["regularizer"] == g and r[key] is not None] or [float("nan")] for g in groups]
    figure = bars_figure(folder / "norm-bias.png", [g.replace(" (", "\n(") for g in groups],
                         {"test accuracy %": values("test_acc")}, "test accuracy (%)",
                         f"Tables 2-3 of paper 004: regularizers (min-max over seeds)\n{scale}")
    norms = bars_figure(folder / "norm-bias-norms.png", [g.replace(" (", "\n(") for g in groups],
                        {"param norm after training": values("parameter_norm")}, "parameter l2 norm",
                        f"Parameter norm reached under each regularizer\n{scale}")
    return [md, figure, norms]


register_experiment(Experiment("norm-bias", "paper 004 Tables 2, 3, 8: no weight decay vs weight decay vs norm-bias "
                               "(squared and absolute forms), mean ± standard error", records, table, render, cells))
