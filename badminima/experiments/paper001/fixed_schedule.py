"""Paper 001, Figures 9, 10 and 14: the networks of `normalized-loss` trained a fixed number of epochs, so that
they end at different training losses. One grid of runs, three figures (three names, one set of records):

- `loss-independence` (Figure 10, appendix D: "Normalization is independent of training loss"): test against
  train cross-entropy, unnormalized and layer-wise Frobenius-normalized, with the least-squares line. The paper:
  networks "converged (and had zero train error) but not to the same loss" (1.5e-4 to 2.5e-3), and once
  normalized lie on one line (slope 0.836, intercept 0.377, R^2 0.9998).
- `l1-normalized-loss` (Figure 9): the same with every layer normalized by its entrywise L1 norm divided by 100
  (`measures.normalized_network(norm="l1", divisor=100)`, the caption's factor "to avoid numerical issues
  because the L1 norms are here very large"): test error and normalized test loss against normalized train loss.
  The records also hold the plain L1 normalization (divisor 1), whose losses sit at ln C to many decimals.
- `error-vs-normalized-loss` (Figure 14): test classification error against the normalized training loss.

Protocol: generalization.py's family (normal inits of several standard deviations; random pretraining on labels
a fraction p of which is random) without the random-label network (these figures have none), with the stop rule
off: every network trains its whole schedule and is measured at its end. Paper preset: the 3-layer ConvNet of
appendix L.1.1 (24 filters, as these captions say) for 300 epochs ("trained ... up to epoch 300"), appendix B's
rates 0.01, 0.001, 0.0001 switching after epochs 150 and 225 (our placement: appendix B's 200-epoch schedule
stretched). Cpu preset: generalization.py's recipe for 120 epochs.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ...measures import L1_DIVISOR, normalization_factors, normalized_cross_entropy
from ...report.figures import least_squares_line, scatter_figure
from ...report.tables import markdown_table
from ...spec import ModelSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment
from . import generalization as gen
from .norm_vs_error import spearman
from .published import (PAPER_001_FIGURE9_DIVISOR, PAPER_001_FIGURE9_L1_FIT, PAPER_001_FIGURE10_FIT,
                           PAPER_001_FIGURE10_TRAIN_LOSSES)

CPU_EPOCHS = 120
PAPER_EPOCHS, PAPER_MILESTONES = 300, (150, 225)
TRUE_LABEL_FAMILIES = ("init std", "random pretraining")


def protocol(preset: str, dataset: str) -> gen.Protocol:
    proto = gen.protocol(preset, dataset)
    if preset == "paper":
        recipe = replace(proto.recipe, epochs=PAPER_EPOCHS, lr_milestones=PAPER_MILESTONES, stop_at_train_loss=None)
        return replace(proto, model=ModelSpec("cnn3", width=24), recipe=recipe, random_labels_network=False)
    return replace(proto, recipe=replace(proto.recipe, epochs=CPU_EPOCHS, stop_at_train_loss=None),
                   random_labels_network=False)


def cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, proto = gen.experiment_base(base, preset, protocol(preset, base.data.name))
    return [s for _, s in gen.family(spec, proto, seeds)]


def both_normalizations(model, x, y, x_test, y_test) -> dict:
    """`generalization.losses` (Frobenius) plus the L1 normalization with Figure 9's divisor and without it."""
    return {**gen.losses(model, x, y, x_test, y_test),
            "l1_normalized_train_loss": normalized_cross_entropy(model, x, y, "l1", divisor=L1_DIVISOR),
            "l1_normalized_test_loss": normalized_cross_entropy(model, x_test, y_test, "l1", divisor=L1_DIVISOR),
            "l1_divisor": L1_DIVISOR,
            "product_of_l1_factors": math.prod(normalization_factors(model, "l1", L1_DIVISOR)),
            "plain_l1_normalized_train_loss": normalized_cross_entropy(model, x, y, "l1"),
            "num_classes": num_outputs(model, x)}


@torch.no_grad()
def num_outputs(model, x) -> int:
    """C, the number of classes: the width of the network's output."""
    was_training = model.training
    model.eval()
    try:
        return int(model(x[:1]).shape[-1])
    finally:
        model.train(was_training)


def records(ctx: Context) -> list[dict]:
    proto = protocol(ctx.preset, ctx.base.data.name)
    gen.check_normalizable(ctx, gen.experiment_base(ctx.base, ctx.preset, proto)[0])
    return gen.family_records(ctx, proto, both_normalizations)


def _groups(points: list[dict], x_key: str, y_key: str) -> dict:
    return {fam: ([r[x_key] for r in points if r["family"] == fam], [r[y_key] for r in points if r["family"] == fam],
                  [gen._label(r) for r in points if r["family"] == fam])
            for fam in TRUE_LABEL_FAMILIES if any(r["family"] == fam for r in points)}


def _fit(points: list[dict], prefix: str) -> dict:
    return least_squares_line([r[prefix + "train_loss"] for r in points], [r[prefix + "test_loss"] for r in points])


def _fit_row(name: str, f: dict) -> list:
    return [name, f.get("n", "-"), gen._fmt(f["slope"]), gen._fmt(f["intercept"]), gen._fmt(f["r2"], 6),
            gen._fmt(f["adjusted_r2"], 6), gen._fmt(f["rmse"], 3)]


def _zero_error_note(points: list[dict]) -> str:
    missed = [r for r in points if r.get("zero_train_error") is False]
    if not missed:
        return "Every network ends with 0% training error, as the paper's.\n\n"
    return ("Networks with training errors at the end of the schedule (the paper's had none): "
            + ", ".join(f"{r['family']} {gen._label(r)} (seed {r['seed']}, {r['train_error_percent']:.3g}%)"
                        for r in missed) + ".\n\n")


# ---- loss-independence (Figure 10) -------------------------------------------------------------------

def train_loss_spread(points: list[dict]) -> tuple[float, float] | None:
    losses = [r["train_loss"] for r in points]
    return (min(losses), max(losses)) if losses else None


def residual_correlation(points: list[dict]) -> float | None:
    """Spearman correlation between each network's unnormalized training loss and its residual from the
    normalized (Frobenius) least-squares line: near 0 if the line does not depend on the training loss."""
    fit = _fit(points, "normalized_")
    if fit["slope"] is None:
        return None
    residuals = [r["normalized_test_loss"] - (fit["slope"] * r["normalized_train_loss"] + fit["intercept"])
                 for r in points]
    return spearman([r["train_loss"] for r in points], residuals)


def independence_table(recs: list[dict]) -> tuple[list[str], list[list]]:
    points = gen._measured(recs)
    return gen.FIT_HEADER, [_fit_row("normalized (Frobenius)", _fit(points, "normalized_")),
                            _fit_row("unnormalized", _fit(points, "")),
                            _fit_row("paper 001 Figure 10, normalized", PAPER_001_FIGURE10_FIT)]


def independence_verdict(recs: list[dict]) -> str:
    points = gen._measured(recs)
    spread, fit = train_loss_spread(points), _fit(points, "normalized_")
    if spread is None or fit["slope"] is None:
        return "Figure 10: too few networks measured"
    rho = residual_correlation(points)
    return (f"Figure 10: unnormalized train losses {spread[0]:.3g} to {spread[1]:.3g} (x{spread[1] / spread[0]:.3g}; "
            f"paper x{PAPER_001_FIGURE10_TRAIN_LOSSES[1] / PAPER_001_FIGURE10_TRAIN_LOSSES[0]:.3g}); normalized line "
            f"slope {fit['slope']:.3g}, R^2 {fit['r2']:.4f} (paper {PAPER_001_FIGURE10_FIT['slope']}, "
            f"{PAPER_001_FIGURE10_FIT['r2']}); Spearman(train loss, residual) {gen._fmt(rho, 3)}")


def independence_render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    points = gen._measured(recs)
    panels = [{"groups": _groups(points, "normalized_train_loss", "normalized_test_loss"), "colors": gen.COLORS,
               "fit": True, "diagonal": True, "xlabel": "train cross-entropy (normalized network)",
               "ylabel": "test cross-entropy (normalized network)", "title": "normalized (Frobenius)"},
              {"groups": _groups(points, "train_loss", "test_loss"), "colors": gen.COLORS, "logx": True,
               "xlabel": "train cross-entropy (unnormalized network)", "ylabel": "test cross-entropy (unnormalized)",
               "title": "unnormalized"}]
    figure, _ = scatter_figure(folder / "loss-independence.png", panels,
                               f"Paper 001 Figure 10: networks at different training losses; labels: init std, "
                               f"pretraining fraction p\n{scale}")
    text = ("# loss-independence: paper 001 Figure 10 (normalization is independent of the training loss)\n\n"
            f"Ours: {scale}. {_protocol_text()}\n\n"
            f"Paper 001 (CIFAR-10, 50 000 examples, 300 epochs): training losses from "
            f"{PAPER_001_FIGURE10_TRAIN_LOSSES[0]:g} to {PAPER_001_FIGURE10_TRAIN_LOSSES[1]:g}; normalized, one line "
            "(the last row below).\n\n" + markdown_table(*independence_table(recs)) + "\n"
            + f"{independence_verdict(recs)}.\n\n" + _zero_error_note(points)
            + "## Every network\n\n" + markdown_table(gen.NETWORK_HEADER, gen.network_rows(recs)))
    md = folder / "loss-independence.md"
    md.write_text(text)
    return [md, figure]


def _protocol_text() -> str:
    return ("Networks of one architecture from normal inits N(0, s^2) and after pretraining on labels of which a "
            "fraction p is random, each trained a fixed number of epochs (no stop at a reference loss) and measured "
            "at its end, so that they end at different training losses.")


# ---- l1-normalized-loss (Figure 9) -------------------------------------------------------------------

def l1_table(recs: list[dict]) -> tuple[list[str], list[list]]:
    points = gen._measured(recs)
    return gen.FIT_HEADER, [_fit_row(f"L1 / {L1_DIVISOR:g} normalized", _fit(points, "l1_normalized_")),
                            _fit_row("Frobenius normalized", _fit(points, "normalized_")),
                            _fit_row(f"paper 001 Figure 9, L1 / {PAPER_001_FIGURE9_DIVISOR}", PAPER_001_FIGURE9_L1_FIT)]


def distance_below_chance(points: list[dict], key: str) -> tuple[float, float] | None:
    """(min, max) over networks of ln C - the normalized training loss `key`: how far from flat the loss is."""
    gaps = [math.log(r["num_classes"]) - r[key] for r in points]
    return (min(gaps), max(gaps)) if gaps else None


def l1_verdict(recs: list[dict]) -> str:
    points = gen._measured(recs)
    fit = _fit(points, "l1_normalized_")
    scaled, plain = distance_below_chance(points, "l1_normalized_train_loss"), distance_below_chance(
        points, "plain_l1_normalized_train_loss")
    if fit["slope"] is None or scaled is None:
        return "Figure 9: too few networks measured"
    return (f"Figure 9: L1/{L1_DIVISOR:g}-normalized line slope {fit['slope']:.3g}, intercept {fit['intercept']:.3g}, "
            f"R^2 {fit['r2']:.4f} (paper {PAPER_001_FIGURE9_L1_FIT['slope']}, {PAPER_001_FIGURE9_L1_FIT['intercept']}, "
            f"{PAPER_001_FIGURE9_L1_FIT['r2']}); ln C minus the normalized train loss {scaled[0]:.3g} to {scaled[1]:.3g} "
            f"(plain L1, no divisor: {plain[0]:.2g} to {plain[1]:.2g}, flat at ln C)")


def l1_render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    points = gen._measured(recs)
    xlabel = f"train cross-entropy (network normalized by L1 / {L1_DIVISOR:g})"
    panels = [{"groups": _groups(points, "l1_normalized_train_loss", "test_error_percent"), "colors": gen.COLORS,
               "xlabel": xlabel, "ylabel": "test error (%, unchanged by normalization)", "title": "test error"},
              {"groups": _groups(points, "l1_normalized_train_loss", "l1_normalized_test_loss"), "colors": gen.COLORS,
               "fit": True, "diagonal": True, "xlabel": xlabel, "ylabel": "test cross-entropy (normalized network)",
               "title": "test loss"}]
    figure, _ = scatter_figure(folder / "l1-normalized-loss.png", panels,
                               f"Paper 001 Figure 9: layer-wise L1 normalization (norms divided by {L1_DIVISOR:g}); "
                               f"labels: init std, pretraining fraction p\n{scale}")
    text = ("# l1-normalized-loss: paper 001 Figure 9 (layer-wise L1 normalization)\n\n"
            f"Ours: {scale}. {_protocol_text()} Every layer divided by its entrywise L1 norm over {L1_DIVISOR:g} "
            "(the first layer's bias with its weights), as the paper's caption: \"normalized layerwise by the L1 norm "
            "(divided by 100 to avoid numerical issues because the L1 norms are here very large)\". Without the "
            "divisor (plain L1) the logits are so small that the loss is ln C to many decimals.\n\n"
            + markdown_table(*l1_table(recs)) + "\n" + f"{l1_verdict(recs)}.\n\n" + _zero_error_note(points)
            + "## Every network\n\n" + markdown_table(
                ["family", "value", "seed", "train loss", "L1/100 train loss", "L1/100 test loss", "plain L1 train loss",
                 "test err %", "prod. of L1/100 factors"],
                [[r["family"], r["value"], r["seed"], gen._fmt(r["train_loss"]), gen._fmt(r["l1_normalized_train_loss"], 8),
                  gen._fmt(r["l1_normalized_test_loss"], 8), gen._fmt(r["plain_l1_normalized_train_loss"], 12),
                  gen._fmt(r["test_error_percent"], 3), gen._fmt(r["product_of_l1_factors"], 5)] for r in points]))
    md = folder / "l1-normalized-loss.md"
    md.write_text(text)
    return [md, figure]


# ---- error-vs-normalized-loss (Figure 14) ------------------------------------------------------------

def error_correlations(recs: list[dict]) -> list[list]:
    """[which, points, Spearman(normalized train loss, test error)] per family and pooled."""
    points = gen._measured(recs)
    rows = []
    for which in (*TRUE_LABEL_FAMILIES, "all networks"):
        rs = points if which == "all networks" else [r for r in points if r["family"] == which]
        rows.append([which, len(rs), gen._fmt(spearman([r["normalized_train_loss"] for r in rs],
                                                       [r["test_error_percent"] for r in rs]), 3)])
    return rows


def error_table(recs: list[dict]) -> tuple[list[str], list[list]]:
    return ["networks", "points", "Spearman: normalized train loss vs test error"], error_correlations(recs)


def error_verdict(recs: list[dict]) -> str:
    pooled = error_correlations(recs)[-1]
    return (f"Figure 14: Spearman(normalized train loss, test error) over {pooled[1]} networks {pooled[2]} "
            "(the paper: the test error rises with the normalized train loss)")


def error_render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    points = gen._measured(recs)
    panel = {"groups": _groups(points, "normalized_train_loss", "test_error_percent"), "colors": gen.COLORS,
             "xlabel": "train cross-entropy (network normalized, Frobenius)", "ylabel": "test classification error (%)",
             "title": "test error vs normalized train loss"}
    figure, _ = scatter_figure(folder / "error-vs-normalized-loss.png", [panel],
                               f"Paper 001 Figure 14; labels: init std, pretraining fraction p\n{scale}")
    values = np.array([[r["normalized_train_loss"], r["test_error_percent"]] for r in points]).reshape(-1, 2)
    text = ("# error-vs-normalized-loss: paper 001 Figure 14 (test error vs normalized train loss)\n\n"
            f"Ours: {scale}. The networks of `loss-independence` (same runs). {_protocol_text()}\n\n"
            "Paper 001 (CIFAR-10, the 3-layer net): the test error rises with the normalized training loss (its axes "
            "span train losses 2.284-2.302 and errors 0.38-0.52); the dependence differs from the psi^-1 upper bound "
            "of Bartlett et al. The paper prints no fitted numbers for this figure.\n\n"
            + (f"Ours span normalized train losses {values[:, 0].min():.6g}-{values[:, 0].max():.6g} and test errors "
               f"{values[:, 1].min():.3g}-{values[:, 1].max():.3g}%.\n\n" if len(values) else "")
            + markdown_table(*error_table(recs)) + "\n" + f"{error_verdict(recs)}.\n")
    md = folder / "error-vs-normalized-loss.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "loss-independence", records, independence_table, independence_render, cells,
    verdict=independence_verdict))
register_experiment(Experiment(
    "l1-normalized-loss", records, l1_table, l1_render, cells,
    verdict=l1_verdict))
register_experiment(Experiment(
    "error-vs-normalized-loss", records, error_table, error_render, cells, verdict=error_verdict))
