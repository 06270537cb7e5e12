"""Paper 001's normalized-loss relation on two more architectures (appendix D: "Independence from Network
Architecture"): the family of `normalized-loss` (generalization.py: normal inits of several standard
deviations, random pretraining on partially random labels) on

- `normalized-loss-bn` (Figures 11 and 12, appendix L.2): the 5-layer ConvNet with batch normalization
  (`cnn5bn`), trained as Figure 5 says: 30 epochs of pretraining, then up to 80 epochs on the true labels,
  the snapshot with 0% training error closest to the reference loss 0.006. Batch norm is folded into the
  convolutions before normalizing ("the means and standard deviations of BN are absorbed into the network's
  weights and biases"), then every layer is divided by its Frobenius norm. Figure 11 is the random-pretraining
  family, Figure 12 the init-std family with the "RL" network (init std 0.05, "training and testing on
  completely random labels": its test loss is on random test labels). Each figure: test against train loss,
  unnormalized and normalized; unnormalized test loss against the product of the layers' norms; test error
  against normalized train loss.
- `normalized-loss-resnet` (Figure 2c-d, appendices B and H, L.3): ResNet-56 (`resnet56`), normalized by the
  norm of its output on one example ("using the norm of the output of each network on one example from
  CIFAR-10 (randomly chosen)", `measures.output_normalized_cross_entropy`): f(x) / ||f(x_ref)||_2, with one
  x_ref for every network of the set ("the same single image"), drawn from the test split by a fixed seed.
  No random-label network ("we did not plot the RL point because this shortcut to normalization does not
  apply"). Appendix B's schedule: 200 epochs, lr 0.01 then 0.001 after epoch 100, batch 128, random crop and
  flip (no momentum or weight decay stated, none used); no stop rule, each network measured at its end.

Choices where the paper is silent: Figure 5-6's learning rate and batch size (appendix B's 0.01 and Figure 1's
100); Figures 11-12's init stds and corruption fractions are the numbers printed beside their points; the
ResNets' initializations (the paper says only that they differ) are ours: both families, as in Figure 2a-b.
Cpu preset: MNIST-1D (1000 examples); the batch-norm net with generalization.py's cpu recipe and corruption
fractions; the ResNet at depth 20 (ResNet-20, the same family; `--depth 56` for ResNet-56), 40 epochs of SGD with
momentum 0.9, lr 0.05 then 0.005 after epoch 25, random shifts, 10 pretraining epochs.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ...measures import output_normalized_cross_entropy
from ...report.figures import least_squares_line, scatter_figure
from ...report.tables import markdown_table
from ...spec import ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from ...train import evaluate
from .. import Context, Experiment, register_experiment
from . import generalization as gen
from .norm_vs_error import NORM, spearman
from .published import PAPER_001_RESNET56_TEST_ERROR_PERCENT

# ---- normalized-loss-bn (Figures 11-12) --------------------------------------------------------------

BN_FIGURES = (("Figure 11", "random pretraining", ("random pretraining",)),
              ("Figure 12", "init std", ("init std", "random labels")))


def bn_protocol(preset: str, dataset: str) -> gen.Protocol:
    proto = gen.protocol(preset, dataset)
    if preset == "paper":
        return replace(proto, model=ModelSpec("cnn5bn"), recipe=replace(proto.recipe, epochs=80, lr_milestones=()),
                       init_stds=(0.001, 0.01, 0.05, 0.1, 0.15, 0.2),
                       corrupted_fractions=(0.0, 0.01, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0), random_labels_std=0.05,
                       random_labels_test=True)
    return replace(proto, model=ModelSpec("cnn5bn"), init_stds=(0.01, 0.05, 0.1, 0.2), random_labels_std=0.05,
                   random_labels_test=True)


def bn_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, proto = gen.experiment_base(base, preset, bn_protocol(preset, base.data.name))
    return [s for _, s in gen.family(spec, proto, seeds)]


def bn_records(ctx: Context) -> list[dict]:
    return gen.family_records(ctx, bn_protocol(ctx.preset, ctx.base.data.name))


def _fit(points: list[dict], prefix: str) -> dict:
    return least_squares_line([r[prefix + "train_loss"] for r in points], [r[prefix + "test_loss"] for r in points])


def bn_rows(records: list[dict]) -> list[list]:
    """Per figure: the normalized and unnormalized least-squares lines and Spearman(norm product, test loss)."""
    points = gen._measured(records)
    rows = []
    for figure, family, families in BN_FIGURES:
        rs = [r for r in points if r["family"] in families]
        norm_fit, raw_fit = _fit(rs, "normalized_"), _fit(rs, "")
        true = [r for r in rs if r["family"] == family]
        rows.append([figure, len(rs), gen._fmt(norm_fit["slope"]), gen._fmt(norm_fit["intercept"]),
                     gen._fmt(norm_fit["r2"], 6), gen._fmt(norm_fit["rmse"], 3), gen._fmt(raw_fit["r2"], 4),
                     gen._fmt(spearman([r[NORM] for r in true], [r["test_loss"] for r in true]), 3)])
    return rows


BN_HEADER = ["figure", "points", "normalized: slope", "intercept", "R^2", "RMSE", "unnormalized: R^2",
             "Spearman: norm product vs test loss"]


def bn_table(records: list[dict]) -> tuple[list[str], list[list]]:
    return BN_HEADER, bn_rows(records)


def bn_verdict(records: list[dict]) -> str:
    parts = [f"{row[0]}: normalized R^2 {row[4]} (unnormalized {row[6]}), Spearman(norm product, test loss) {row[7]}"
             for row in bn_rows(records)]
    return "; ".join(parts) + " (the paper: a tight line once normalized, none before; test loss rising with the product)"


def _groups(points: list[dict], families, x_key: str, y_key: str) -> dict:
    return {fam: ([r[x_key] for r in points if r["family"] == fam], [r[y_key] for r in points if r["family"] == fam],
                  [gen._label(r) for r in points if r["family"] == fam])
            for fam in families if any(r["family"] == fam for r in points)}


def bn_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """normalized-loss-bn-figure-11.png and -figure-12.png (four panels each) and normalized-loss-bn.md."""
    folder.mkdir(parents=True, exist_ok=True)
    points = gen._measured(records)
    figures = []
    for figure, _, families in BN_FIGURES:
        panels = [{"groups": _groups(points, families, "train_loss", "test_loss"), "colors": gen.COLORS,
                   "xlabel": "train loss (unnormalized)", "ylabel": "test loss (unnormalized)", "title": "unnormalized"},
                  {"groups": _groups(points, families, "normalized_train_loss", "normalized_test_loss"),
                   "colors": gen.COLORS, "fit": True, "diagonal": True, "xlabel": "train loss (normalized)",
                   "ylabel": "test loss (normalized)", "title": "normalized (batch norm folded, Frobenius)"},
                  {"groups": _groups(points, families, NORM, "test_loss"), "colors": gen.COLORS, "logx": True,
                   "xlabel": "product of the layers' Frobenius norms (folded)", "ylabel": "test loss (unnormalized)",
                   "title": "capacity"},
                  {"groups": _groups(points, families, "normalized_train_loss", "test_error_percent"),
                   "colors": gen.COLORS, "xlabel": "train loss (normalized)", "ylabel": "test error (%)",
                   "title": "test error (unchanged by normalization)"}]
        name = f"normalized-loss-bn-{figure.lower().replace(' ', '-')}.png"
        figures.append(scatter_figure(folder / name, panels, f"Paper 001 {figure}: the 5-layer batch-norm ConvNet; "
                                                             f"labels: init std, pretraining fraction p, RL\n{scale}")[0])
    text = ("# normalized-loss-bn: paper 001 Figures 11 and 12 (the 5-layer ConvNet with batch norm)\n\n"
            f"Ours: {scale}. The family of `normalized-loss` on the batch-norm ConvNet: Figure 11 the random-pretraining "
            "networks, Figure 12 the init-std networks and one network trained and tested on random labels (RL), each "
            "the snapshot with 0% training error closest to the reference loss; batch norm folded into the "
            "convolutions, then every layer divided by its Frobenius norm.\n\n"
            "Paper 001 (CIFAR-10): unnormalized, no apparent relation between train and test loss; normalized, \"a "
            "surprisingly good linear relationship\" (Figure 11: normalized train losses 2.2992-2.3010, test "
            "2.2998-2.3014); a positive correlation between the product of norms and the test loss. The paper prints "
            "no fitted numbers for these figures.\n\n" + markdown_table(*bn_table(records)) + "\n"
            + f"{bn_verdict(records)}.\n\n" + gen._unreached_note(records)
            + "## Every network\n\n" + markdown_table(gen.NETWORK_HEADER, gen.network_rows(records)))
    md = folder / "normalized-loss-bn.md"
    md.write_text(text)
    return [md, *figures]


register_experiment(Experiment(
    "normalized-loss-bn", bn_records, bn_table, bn_render, bn_cells, verdict=bn_verdict))


# ---- normalized-loss-resnet (Figure 2c-d) ------------------------------------------------------------

REFERENCE_SEED = 2019  # the one test example every network of a set is normalized by
PAPER_RESNET_RECIPE = PhaseSpec(epochs=200, batch_size=128, lr=0.01, lr_milestones=(100,), augment=True,
                                stop_at_100=False)
CPU_RESNET_RECIPE = PhaseSpec(epochs=40, batch_size=128, lr=0.05, lr_milestones=(25,), momentum=0.9, augment=True,
                              stop_at_100=False)
CPU_RESNET_DEPTH = 20  # ResNet-20, the family's smallest, so that the cpu preset ends in minutes (--depth 56: ResNet-56)


def resnet_protocol(preset: str, dataset: str) -> gen.Protocol:
    proto = gen.protocol(preset, dataset)
    if preset == "paper":
        return replace(proto, model=ModelSpec("resnet56"), recipe=PAPER_RESNET_RECIPE,
                       pretrain=replace(proto.pretrain, batch_size=128), init_stds=(0.01, 0.03, 0.1),
                       corrupted_fractions=(0.0, 0.2, 0.5, 1.0), random_labels_network=False)
    return replace(proto, model=ModelSpec("resnet56", depth=CPU_RESNET_DEPTH), recipe=CPU_RESNET_RECIPE,
                   pretrain=replace(proto.pretrain, epochs=10), init_stds=(0.01, 0.03, 0.1),
                   corrupted_fractions=(0.0, 0.5, 1.0), random_labels_network=False)


def resnet_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, proto = gen.experiment_base(base, preset, resnet_protocol(preset, base.data.name))
    return [s for _, s in gen.family(spec, proto, seeds)]


def reference_index(num_test: int) -> int:
    return int(torch.randint(num_test, (1,), generator=torch.Generator().manual_seed(REFERENCE_SEED)))


def output_normalized_losses(model, x, y, x_test, y_test) -> dict:
    """Unnormalized losses and errors, and the cross-entropies of f(x) / ||f(x_ref)||_2 (Figure 2c-d), x_ref the
    test example `reference_index`; stored as normalized_train_loss / normalized_test_loss."""
    index = reference_index(len(y_test))
    train_loss, train_acc = evaluate(model, x, y)
    test_loss, test_acc = evaluate(model, x_test, y_test)
    with torch.no_grad():
        scale = float(model.eval()(x_test[index:index + 1]).double().norm())
    return {"train_loss": train_loss, "test_loss": test_loss,
            "train_error_percent": 100 * (1 - train_acc), "test_error_percent": 100 * (1 - test_acc),
            "normalized_train_loss": output_normalized_cross_entropy(model, x, y, x_test[index]),
            "normalized_test_loss": output_normalized_cross_entropy(model, x_test, y_test, x_test[index]),
            "normalization": "output norm on one test example", "reference_index": index, "reference_output_norm": scale}


def resnet_records(ctx: Context) -> list[dict]:
    return gen.family_records(ctx, resnet_protocol(ctx.preset, ctx.base.data.name), output_normalized_losses)


def resnet_table(records: list[dict]) -> tuple[list[str], list[list]]:
    points = gen._measured(records)
    rows = []
    for kind, prefix in (("output-normalized", "normalized_"), ("unnormalized", "")):
        f = _fit(points, prefix)
        rows.append([kind, f["n"], gen._fmt(f["slope"]), gen._fmt(f["intercept"]), gen._fmt(f["r2"], 6),
                     gen._fmt(f["adjusted_r2"], 6), gen._fmt(f["rmse"], 3)])
    return gen.FIT_HEADER, rows


def resnet_verdict(records: list[dict]) -> str:
    points = gen._measured(records)
    norm_fit, raw_fit = _fit(points, "normalized_"), _fit(points, "")
    if norm_fit["slope"] is None:
        return "Figure 2c-d: too few networks measured"
    errors = [r["test_error_percent"] for r in points]
    low, high = PAPER_001_RESNET56_TEST_ERROR_PERCENT
    return (f"Figure 2c-d: output-normalized line R^2 {norm_fit['r2']:.4f}, slope {norm_fit['slope']:.3g} (unnormalized "
            f"R^2 {gen._fmt(raw_fit['r2'], 4)}); test errors {min(errors):.3g}-{max(errors):.3g}% (paper, CIFAR-10: "
            f"{low:g}-{high:g}%, a linear relation once normalized)")


def resnet_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """normalized-loss-resnet.png (Figure 2c: unnormalized, 2d: output-normalized) and normalized-loss-resnet.md."""
    folder.mkdir(parents=True, exist_ok=True)
    panels = gen.loss_panels(records)
    panels[1] = {**panels[1], "title": "normalized by the output norm on one example",
                 "xlabel": "train cross-entropy of f / ||f(x_ref)||", "ylabel": "test cross-entropy of f / ||f(x_ref)||"}
    figure, _ = scatter_figure(folder / "normalized-loss-resnet.png", panels,
                               f"Paper 001 Figure 2c-d: ResNet; labels: init std, pretraining fraction p\n{scale}")
    index = next((r["reference_index"] for r in records if r.get("reference_index") is not None), None)
    low, high = PAPER_001_RESNET56_TEST_ERROR_PERCENT
    text = ("# normalized-loss-resnet: paper 001 Figure 2c-d (ResNet-56, normalized by the output norm)\n\n"
            f"Ours: {scale}. ResNets from normal inits N(0, s^2) and after random pretraining, each trained a fixed "
            "schedule and measured at its end; normalized by dividing the logits by ||f(x_ref)||_2, x_ref the test "
            f"example {index} for every network.\n\n"
            f"Paper 001 (CIFAR-10, ResNet-56, 200 epochs): test errors {low:g}% to {high:g}%; unnormalized, test loss "
            "does not follow train loss; normalized by the output norm, the same linear relation as the 3-layer net "
            "(no fitted numbers printed).\n\n" + markdown_table(*resnet_table(records)) + "\n"
            + f"{resnet_verdict(records)}.\n\n## Every network\n\n" + markdown_table(
                ["family", "value", "seed", "epochs", "train loss", "test loss", "norm. train loss", "norm. test loss",
                 "||f(x_ref)||", "train err %", "test err %"],
                [[r["family"], r["value"], r["seed"], r["epochs"], gen._fmt(r.get("train_loss")),
                  gen._fmt(r.get("test_loss")), gen._fmt(r.get("normalized_train_loss"), 8),
                  gen._fmt(r.get("normalized_test_loss"), 8), gen._fmt(r.get("reference_output_norm"), 5),
                  gen._fmt(r.get("train_error_percent"), 3), gen._fmt(r.get("test_error_percent"), 3)] for r in records]))
    md = folder / "normalized-loss-resnet.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "normalized-loss-resnet", resnet_records, resnet_table, resnet_render, resnet_cells,
    verdict=resnet_verdict))
