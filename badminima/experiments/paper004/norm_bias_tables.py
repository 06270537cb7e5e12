"""`norm-bias-table2`, `norm-bias-table3`, `norm-bias-table8`: paper 004's Tables 2, 3 and 8 - no weight decay vs
weight decay vs norm-bias over the paper's models, each model trained as `norm-bias` trains one
(norm_bias.regularizer_records: the same runs, mu rule and coefficients).

- Table 2: non-normalized CIFAR-10 (the model sees the inputs in [0, 1]: data.standardize = false; the authors'
  `--no_norm`), ResNet-18, DenseNet-40, MobileNetV2.
- Table 3: normalized CIFAR-10 (per-channel standardization), ResNet-18, DenseNet-40, MobileNetV2, ResNet-20 with
  Fixup and the 4-layer MLP (3 hidden layers of 2048, the authors' default width; the paper gives none).
- Table 8: normalized CIFAR-100, ResNet-18, DenseNet-40, ResNet-20 with Fixup.

Norm-bias is the absolute form, the authors' update that produced the tables. Coefficients: the paper's for each
model and dataset (norm_bias.PAPER_COEFFICIENTS: weight decay of the original papers, the norm-bias coefficient and
mu^2 of section 3 and A.5). paper preset: the table's dataset and models at full size, norm_bias.PAPER_RECIPE
(300 epochs, A.5), the paper's 10 runs with `--seeds 0-9`. cpu preset: 8x8 digits (or --dataset), the same models
made small (CPU_MODELS), CPU_RECIPE (16 epochs, the paper's decays at the same fractions of training), each
model's CIFAR-10 weight decay and norm-bias coefficient with mu from the paper's heuristic (the paper's mu^2 fits
full-size networks only). The cpu Table 8 runs on the same 10-class data: it differs from Table 3 in its models
and coefficients only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ...report.figures import bars_figure
from ...report.tables import markdown_table
from ...spec import InitSpec, ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment
from .backpropaganda import format_mean_se, mean_se
from .norm_bias import PAPER_COEFFICIENTS, PAPER_RECIPE, Coefficients, regularized, regularizer_records
from .published import FIXUP_PARAMETER_NORMS, SOURCE, TABLE2, TABLE3, TABLE8

REGULARIZERS = ("none", "weight decay", "norm-bias (absolute)")
PAPER_MODELS = {"ResNet-18": ModelSpec("resnet18"), "DenseNet-40": ModelSpec("densenet40"),
                "MobileNetV2": ModelSpec("mobilenetv2"), "ResNet-20 Fixup": ModelSpec("resnet20-fixup"),
                "MLP (4 layers)": ModelSpec("mlp", width=2048, depth=3)}
CPU_MODELS = {"ResNet-18": ModelSpec("resnet18", width=4), "DenseNet-40": ModelSpec("densenet40", width=4, depth=10),
              "MobileNetV2": ModelSpec("mobilenetv2", width=4), "ResNet-20 Fixup": ModelSpec("resnet20-fixup", width=4),
              "MLP (4 layers)": ModelSpec("mlp", width=64, depth=3)}
CPU_DATA = "digits"
# 16 epochs of batches of 32 (about 670 steps on digits' 1348 examples; at batch 128 the MLP stays below 40% train
# accuracy), the decays at A.5's fractions (100, 175, 225, 275 of 300); lr 0.05: at 0.1 the Fixup ResNet without
# batch norm fits digits, then collapses to chance within 8 epochs, weight decay or not (at 0.05 it reaches 97%)
CPU_RECIPE = PhaseSpec(epochs=16, batch_size=32, lr=0.05, lr_milestones=(5, 9, 12, 15), momentum=0.9, augment=True,
                       stop_at_100=False)


@dataclass(frozen=True)
class PaperTable:
    name: str
    title: str
    dataset: str  # the paper's
    standardize: bool
    models: tuple[str, ...]
    published: dict  # model label -> three (mean, standard error) pairs: none, weight decay, norm-bias


TABLES = {t.name: t for t in (
    PaperTable("norm-bias-table2", "Table 2 (non-normalized CIFAR-10)", "cifar10", False,
               ("ResNet-18", "DenseNet-40", "MobileNetV2"), TABLE2),
    PaperTable("norm-bias-table3", "Table 3 (normalized CIFAR-10)", "cifar10", True,
               ("ResNet-18", "DenseNet-40", "MobileNetV2", "ResNet-20 Fixup", "MLP (4 layers)"), TABLE3),
    PaperTable("norm-bias-table8", "Table 8 (normalized CIFAR-100)", "cifar100", True,
               ("ResNet-18", "DenseNet-40", "ResNet-20 Fixup"), TABLE8))}


def model_specs(table: PaperTable, base: RunSpec, preset: str) -> list[tuple[str, RunSpec, Coefficients]]:
    """(model label, base run spec, coefficients) of every model of the table at `preset`."""
    paper = preset == "paper"
    name = table.dataset if paper else (base.data.name if base.data.name != "mnist1d" else CPU_DATA)
    data = replace(base.data, name=name, standardize=table.standardize)
    out = []
    for label in table.models:
        model = (PAPER_MODELS if paper else CPU_MODELS)[label]
        found = PAPER_COEFFICIENTS[(table.dataset if paper else "cifar10", model.name)]
        coefficients = found if paper else replace(found, mu_squared=None, source="cpu: heuristic mu")
        out.append((label, RunSpec(data, model, InitSpec(), PAPER_RECIPE if paper else CPU_RECIPE), coefficients))
    return out


def _experiment(table: PaperTable) -> Experiment:
    def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
        return [replace(regularized(spec, r, c), seed=s) for _, spec, c in model_specs(table, base, "cpu")
                for s in seeds for r in REGULARIZERS[:2]]

    def records(ctx: Context) -> list[dict]:
        out = []
        for label, spec, coefficients in model_specs(table, ctx.base, ctx.preset):
            recs = regularizer_records(ctx, spec, REGULARIZERS, coefficients, f"{table.name}: {label}")
            out += [{"model": label, "model_name": spec.model.name, "dataset": spec.data.name,
                     "standardize": spec.data.standardize, **r} for r in recs]
        return out

    def scale(ctx: Context) -> str:
        specs = model_specs(table, ctx.base, ctx.preset)
        models = ", ".join(f"{s.model.name}" + (f" (width {s.model.width}" + (f", depth {s.model.depth}" if s.model.depth else "")
                                                + ")" if s.model.width else "") for _, s, _ in specs)
        what = "paper preset (the paper's protocol)" if ctx.preset == "paper" else "cpu preset (scaled down; not paper scale)"
        return f"{specs[0][1].data.name} (standardize={specs[0][1].data.standardize}) / {models}, {what}"

    return Experiment(table.name, records, table_rows, lambda *a: render(table, *a), cells, scale,
                      verdict=verdict)


def table_rows(recs: list[dict]):
    header = ["model", "regularizer", "seed", "test acc %", "train acc %", "param norm", "mu", "coefficient", "status"]
    return header, [[r["model"], r["regularizer"], r["seed"], r["test_acc"], r["train_acc"], r["parameter_norm"],
                     r["mu"] if r["norm_bias"] else None, f"{r['norm_bias'] or r['weight_decay']:g}", r["status"]]
                    for r in recs]


def _accuracies(recs: list[dict], model: str, regularizer: str) -> list[float]:
    return [r["test_acc"] for r in recs if r["model"] == model and r["regularizer"] == regularizer
            and r["test_acc"] is not None]


def directions(recs: list[dict]) -> dict[str, dict[str, bool | None]]:
    """Per model, the paper's two directions in mean test accuracy: weight decay above none, norm-bias above
    weight decay (None when a side has no finished run)."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in recs):
        none, wd, nb = (mean_se(_accuracies(recs, model, reg))[0] for reg in REGULARIZERS)
        out[model] = {"weight decay > none": None if none is None or wd is None else wd > none,
                      "norm-bias > weight decay": None if wd is None or nb is None else nb > wd}
    return out


def verdict(recs: list[dict]) -> str:
    found = directions(recs)
    parts = []
    for key in ("weight decay > none", "norm-bias > weight decay"):
        holds = [m for m, d in found.items() if d[key]]
        parts.append(f"{key} (mean test accuracy) in {len(holds)} of {len(found)} models"
                     + (f" ({', '.join(holds)})" if holds else ""))
    return "; ".join(parts) + " - the paper: weight decay >= none for every model, norm-bias >= weight decay for every model"


def render(table: PaperTable, folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(r["model"] for r in recs))
    beside = []
    for model in models:
        ours = [format_mean_se(_accuracies(recs, model, reg)) for reg in REGULARIZERS]
        paper = [f"{m:.2f} (±{s:.2f})" for m, s in table.published[model]] if model in table.published else ["-"] * 3
        norms = [format_mean_se([r["parameter_norm"] for r in recs if r["model"] == model and r["regularizer"] == reg])
                 for reg in REGULARIZERS]
        beside.append([model, *ours, *paper, *norms])
    mus = {m: next(r["mu_rule"] for r in recs if r["model"] == m) for m in models}
    found = directions(recs)
    text = (f"# {table.name}: paper 004 {table.title}\n\nOurs: {scale}. Test accuracy %, mean (± standard error) over "
            f"seeds, beside the paper's ({SOURCE}; 10 runs). Norm-bias is the absolute form (the authors' update).\n\n"
            f"**{verdict(recs)}**\n\n"
            + markdown_table(["model", "ours: none", "ours: weight decay", "ours: norm-bias", "paper: none",
                              "paper: weight decay", "paper: norm-bias", "param norm: none", "param norm: weight decay",
                              "param norm: norm-bias"], beside)
            + "\n## Directions per model (ours)\n\n"
            + markdown_table(["model", "weight decay > none", "norm-bias > weight decay"],
                             [[m, d["weight decay > none"], d["norm-bias > weight decay"]] for m, d in found.items()])
            + "\n## mu per model\n\n" + markdown_table(["model", "mu rule"], [[m, rule] for m, rule in mus.items()]))
    if "ResNet-20 Fixup" in models and table.dataset == "cifar10":
        text += ("\nAppendix A.5 (ResNet-20 Fixup, CIFAR-10): mean parameter norm after training "
                 + ", ".join(f"{k} {v}" for k, v in FIXUP_PARAMETER_NORMS.items()) + ".\n")
    text += "\n## Every run\n\n" + markdown_table(*table_rows(recs))
    md = folder / f"{table.name}.md"
    md.write_text(text)
    figure = bars_figure(folder / f"{table.name}.png", models,
                         {reg: [_accuracies(recs, m, reg) or [float("nan")] for m in models] for reg in REGULARIZERS},
                         "test accuracy (%)", f"paper 004 {table.title} (min-max over seeds)\n{scale}")
    return [md, figure]


for _table in TABLES.values():
    register_experiment(_experiment(_table))
