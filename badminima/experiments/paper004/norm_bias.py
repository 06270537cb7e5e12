"""`norm-bias`: paper 004 section 3 and appendix A.5 - no weight decay vs weight decay vs norm-bias vs negative
weight decay, for one model (the tables over the paper's models are `norm-bias-table2/3/8`, norm_bias_tables.py).

Norm-bias (equation 2) pulls ||theta||^2 towards mu^2 instead of 0; see train/regularizers.py for both forms:
"absolute" (the default, the paper's "R_0 is weight decay" and the authors' update), c/2 * | ||theta||^2 - mu^2 |,
whose gradient c * sign(||theta||^2 - mu^2) * theta is the authors' update at their coefficient c; and "squared",
c * (||theta||^2 - mu^2)^2 as equation 2 is printed. Negative weight decay (A.5: "negative weight decay
coefficients ... blowing up parameter norm", no coefficient given) is the absolute form at mu = 0 with coefficient
minus the model's weight decay. Weight decay is off in the norm-bias and negative-weight-decay runs. Test accuracy
is reported as mean (± standard error) over seeds, as the paper.

Coefficients (`Coefficients`, per model and dataset in PAPER_COEFFICIENTS): weight decay "from their respective
original papers" (section 3); the norm-bias coefficient c and mu^2 the paper gives (section 3 for CIFAR-10,
A.5 for CIFAR-100). mu follows the paper's heuristic where the paper gives no mu^2 (the cpu preset; the MLP;
a model outside the paper): train with weight decay first, record the parameter norm reached, and set mu
"slightly higher" - MU_FACTOR times the mean norm over seeds, 3 significant digits. Squared norm-bias coefficient
c / (2 mu^2), our choice (the paper has no coefficient for the printed form; with it both forms pull equally
hard, c * theta, at ||theta||^2 = mu^2 / 2 and 3 mu^2 / 2).

cpu preset: MNIST-1D, the 4-layer MLP of Table 3 (3 hidden layers of 256), 60 epochs with the paper's schedule
scaled (lr 0.1, x0.1 after epochs 20, 35, 45, 55; momentum 0.9; augmentation), weight decay WEIGHT_DECAY,
norm-bias NORM_BIAS. paper preset: 300 epochs, x0.1 after 100, 175, 225, 275 (appendix A.5), batch 128, random
crops and flips, the model's coefficients when the paper gives them (PAPER_COEFFICIENTS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from ...measures.norms import frobenius_norm
from ...presets import user_model
from ...report.figures import bars_figure
from ...report.tables import markdown_table
from ...runs import plan
from ...spec import InitSpec, PhaseSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, format_mean_se, phase_model, rounded
from .published import NEGATIVE_WEIGHT_DECAY_CLAIM, SOURCE, TABLE2, TABLE3, TABLE8

WEIGHT_DECAY = 5e-4
NORM_BIAS = 0.005
MU_FACTOR = 1.1
REGULARIZERS = ("none", "weight decay", "norm-bias (absolute)", "norm-bias (squared)", "negative weight decay")
NEEDS_MU = ("norm-bias (absolute)", "norm-bias (squared)")


@dataclass(frozen=True)
class Coefficients:
    """A model's regularization: weight decay, the norm-bias coefficient, and the paper's mu^2 (None: the
    heuristic, MU_FACTOR x the norm reached with weight decay)."""

    weight_decay: float = WEIGHT_DECAY
    norm_bias: float = NORM_BIAS
    mu_squared: float | None = None
    source: str = "our cpu choice"


# (dataset, model name) -> the paper's coefficients. Weight decay "from their respective original papers"
# (section 3): DenseNet 1e-4 (Huang et al. 2017), MobileNetV2 4e-5 (Sandler et al. 2018), Fixup 1e-4 (the Fixup
# release's CIFAR default); ResNet-18 5e-4 (kuangliu's pytorch-cifar, where the authors' ResNet-18 is from; He et
# al. 2016 used 1e-4 - our choice, as with it mu^2 = 2500 is "slightly higher" than the norm reached); the MLP has
# no original paper: 5e-4. Norm-bias c and mu^2: section 3 (CIFAR-10: ResNet-18 and DenseNet 0.005 / 2500,
# MobileNetV2 0.001 / 5000, ResNet-20 Fixup 0.0005 / 1000) and A.5 (CIFAR-100: 0.005 / 8100, 0.001 / 7500,
# 0.0005 / 2000); none for the MLP (the heuristic).
_CIFAR10 = {"resnet18": Coefficients(5e-4, 0.005, 2500.0, "section 3"),
            "densenet40": Coefficients(1e-4, 0.005, 2500.0, "section 3"),
            "mobilenetv2": Coefficients(4e-5, 0.001, 5000.0, "section 3"),
            "resnet20-fixup": Coefficients(1e-4, 0.0005, 1000.0, "section 3"),
            "mlp": Coefficients(5e-4, 0.005, None, "section 3 (mu: heuristic)")}
_CIFAR100 = {"resnet18": Coefficients(5e-4, 0.005, 8100.0, "appendix A.5"),
             "densenet40": Coefficients(1e-4, 0.001, 7500.0, "appendix A.5"),
             "resnet20-fixup": Coefficients(1e-4, 0.0005, 2000.0, "appendix A.5")}
PAPER_COEFFICIENTS = {**{("cifar10", m): c for m, c in _CIFAR10.items()},
                      **{("cifar100", m): c for m, c in _CIFAR100.items()}}


def coefficients_for(spec: RunSpec, preset: str) -> Coefficients:
    """The paper's coefficients for `spec`'s dataset and model (paper preset), else the defaults."""
    found = PAPER_COEFFICIENTS.get((spec.data.name, spec.model.name)) if preset == "paper" else None
    return found or Coefficients()


CPU_MODEL = {"width": 256, "depth": 3}
CPU_RECIPE = PhaseSpec(epochs=60, batch_size=128, lr=0.1, lr_milestones=(20, 35, 45, 55), momentum=0.9, augment=True,
                       stop_at_100=False)
PAPER_RECIPE = PhaseSpec(epochs=300, batch_size=128, lr=0.1, lr_milestones=(100, 175, 225, 275), momentum=0.9,
                         augment=True, stop_at_100=False)


def base_spec(base: RunSpec, preset: str) -> RunSpec:
    """The data of `base` (standardization and options included), its model (cpu: the MLP of CPU_MODEL unless
    --width/--depth), the preset's recipe."""
    model = user_model(base, preset)
    if preset != "paper" and model.name == "mlp":
        model = replace(model, width=model.width or CPU_MODEL["width"], depth=model.depth or CPU_MODEL["depth"])
    return RunSpec(base.data, model, InitSpec(), PAPER_RECIPE if preset == "paper" else CPU_RECIPE)


def regularized(spec: RunSpec, regularizer: str, coefficients: Coefficients = Coefficients(),
                mu: float | None = None) -> RunSpec:
    """`spec` with one of REGULARIZERS at `coefficients` (the norm-bias ones need mu)."""
    recipe = replace(spec.recipe, weight_decay=0.0)
    if regularizer == "weight decay":
        recipe = replace(recipe, weight_decay=coefficients.weight_decay)
    elif regularizer == "negative weight decay":
        recipe = replace(recipe, norm_bias=-coefficients.weight_decay, norm_bias_mu=0.0, norm_bias_form="absolute")
    elif regularizer in NEEDS_MU:
        form = "absolute" if "absolute" in regularizer else "squared"
        c = coefficients.norm_bias
        coefficient = c if form == "absolute" else float(f"{c / (2 * mu ** 2):.4g}")
        recipe = replace(recipe, norm_bias=coefficient, norm_bias_mu=mu, norm_bias_form=form)
    return replace(spec, recipe=recipe)


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    """The runs that do not need mu (all but norm-bias); the norm-bias runs follow from them."""
    spec = base_spec(base, "cpu")
    return [replace(regularized(spec, r), seed=s) for s in seeds for r in REGULARIZERS if r not in NEEDS_MU]


def _norm(ctx: Context, spec: RunSpec) -> float:
    return cached(ctx, plan(spec)[-1].id, "frobenius", lambda: frobenius_norm(phase_model(ctx, spec, -1)))


def choose_mu(norms: list[float]) -> float:
    """The paper's heuristic: slightly (MU_FACTOR) above the mean norm reached with weight decay, 3 digits."""
    return float(f"{MU_FACTOR * math.fsum(norms) / len(norms):.3g}")


def regularizer_records(ctx: Context, spec: RunSpec, regularizers, coefficients: Coefficients,
                        label: str = "norm-bias") -> list[dict]:
    """Train `spec` (every seed of ctx) under each regularizer, the runs without mu first; then mu (the paper's
    mu^2, or the heuristic from the weight-decay runs) and the norm-bias runs. One record per run."""
    first = [(r, replace(regularized(spec, r, coefficients), seed=s)) for s in ctx.seeds for r in regularizers
             if r not in NEEDS_MU]
    summaries = train_grid(ctx, [run for _, run in first], f"{label}: without mu")
    if coefficients.mu_squared is not None:
        mu, how = math.sqrt(coefficients.mu_squared), f"the paper's mu^2 = {coefficients.mu_squared:g} ({coefficients.source})"
    else:
        decayed = [_norm(ctx, run) for (r, run), summ in zip(first, summaries) if r == "weight decay" and summ["status"] == "done"]
        mu = choose_mu(decayed) if decayed else 1.0
        how = f"{MU_FACTOR} x the mean norm with weight decay ({', '.join(f'{n:.4g}' for n in decayed)})"
    second = [(r, replace(regularized(spec, r, coefficients, mu), seed=s)) for s in ctx.seeds for r in regularizers
              if r in NEEDS_MU]
    summaries += train_grid(ctx, [run for _, run in second], label)
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


def records(ctx: Context) -> list[dict]:
    spec = base_spec(ctx.base, ctx.preset)
    return regularizer_records(ctx, spec, REGULARIZERS, coefficients_for(spec, ctx.preset))


def table(recs: list[dict]):
    header = ["regularizer", "seed", "test acc %", "train acc %", "param norm", "mu", "coefficient", "status"]
    return header, [[r["regularizer"], r["seed"], r["test_acc"], r["train_acc"], r["parameter_norm"],
                     r["mu"] if r["norm_bias"] else None, f"{r['norm_bias'] or r['weight_decay']:g}", r["status"]]
                    for r in recs]


def summary_rows(recs: list[dict], regularizers=REGULARIZERS) -> list[list]:
    return [[reg, len([r for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["test_acc"] for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["train_acc"] for r in recs if r["regularizer"] == reg]),
             format_mean_se([r["parameter_norm"] for r in recs if r["regularizer"] == reg])]
            for reg in regularizers if any(r["regularizer"] == reg for r in recs)]


def paper_rows(tables) -> list[list]:
    """The paper's rows of `tables` ((name, {model: three (mean, se) pairs})) as "m (±s)" cells."""
    return [[f"{name} ({table_name})", *(f"{m:.2f} (±{s:.2f})" for m, s in values)]
            for table_name, rows in tables for name, values in rows.items()]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mu_rule = recs[0]["mu_rule"] if recs else "-"
    paper = paper_rows((("Table 2, non-normalized CIFAR-10", TABLE2), ("Table 3, CIFAR-10", TABLE3),
                        ("Table 8, CIFAR-100", TABLE8)))
    md = folder / "norm-bias.md"
    md.write_text(f"# norm-bias: paper 004 Tables 2, 3 and 8, appendix A.5\n\nOurs: {scale}. mu = {recs[0]['mu'] if recs else '-'}: "
                  f"{mu_rule}. Test accuracy %, mean (± standard error) over seeds; param norm is the l2 norm of all "
                  "parameters after training.\n\n"
                  + markdown_table(["regularizer", "seeds", "test acc %", "train acc %", "param norm"], summary_rows(recs))
                  + "\n## Every run\n\n" + markdown_table(*table(recs))
                  + f"\n## Paper ({SOURCE}), test accuracy %, mean (± standard error) over 10 runs\n\n"
                  + markdown_table(["model", "no weight decay", "weight decay", "norm-bias"], paper)
                  + f"\nNegative weight decay (appendix A.5, no table): {NEGATIVE_WEIGHT_DECAY_CLAIM}\n")
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


register_experiment(Experiment("norm-bias", records, table, render, cells))
