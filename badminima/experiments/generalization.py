"""Paper 001, "Generalization Puzzles in Deep Networks": the normalized network's training loss predicts
its test loss.

- `normalized-loss` (Figure 2a-b; appendix D and F, Figures 10-12 and 15-16): networks of one architecture
  on the same data that reach the same small training loss but differ in test performance, made two ways
  (appendix C): normal inits N(0, s^2) with a range of standard deviations s (Figure 6), and pretraining
  for some epochs on labels of which a fraction p is random, then training on the true labels (Figure 5);
  plus one network trained on random labels only (the red point). Test against train cross-entropy,
  before and after layer-wise Frobenius normalization (`measures.normalized`), with the least-squares line.
(`norm-vs-error`, Figures 4c and 13, on the same networks, is in norm_vs_error.py.)
(`gap-vs-n`, appendix I, Figure 19, is in gap_vs_n.py and shares this module's protocol.)

Choices, where the paper leaves room:
- A network is the first snapshot (epoch) whose un-augmented training cross-entropy is at or below the
  reference loss (`PhaseSpec.stop_at_train_loss`); the paper picks the saved snapshot closest to it.
  Networks that never get there (the epoch cap) are kept, and flagged `reached_reference: false`.
- Random pretraining replaces a fraction p of the labels by uniform random classes (Algorithm 1 of paper
  000 with R = 1 and nothing zeroed: the `partial-random-labels` init); the paper swaps labels among a
  fraction p of the examples. Pretraining runs a fixed number of epochs, then the true-label phase starts.
- The random-label network trains on the training inputs with all labels uniform random until its loss on
  those labels reaches the reference. Its train losses are measured on its own random labels, its test
  losses on the true test labels (the paper randomized the test labels too; for a network at chance level
  either gives the same loss in expectation).
- The product of norms in `norm-vs-error` is `measures.product_of_frobenius_norms` (weight matrices only);
  the normalization divides the first layer's [weight, bias] by its norm (see `measures.normalized`).
  Both products are recorded.
- Model, recipe and training-set size come from the experiment's protocol below unless the preset's
  values were overridden (flags or --config), in which case the override wins, field by field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

import torch

from ..measures import (normalization_factors, normalized_cross_entropy, normalized_network,
                        product_of_frobenius_norms)
from ..presets import base_spec
from ..report.figures import least_squares_line, scatter_figure
from ..report.tables import markdown_table
from ..runs import load_final, plan, pretraining_data
from ..spec import InitSpec, ModelSpec, PhaseSpec, RunSpec
from ..store import Store
from ..train import evaluate
from . import Context, Experiment, register_experiment, train_grid

FAMILIES = ("init std", "random pretraining", "random labels")
COLORS = {"init std": "tab:green", "random pretraining": "tab:orange", "random labels": "tab:red"}


@dataclass(frozen=True)
class Protocol:
    """What the experiments fix beyond the preset's base spec."""

    model: ModelSpec
    train_size: int | None  # None: the whole training split
    recipe: PhaseSpec  # the true-label phase; its stop_at_train_loss is the reference training loss
    pretrain: PhaseSpec  # random pretraining (appendix C)
    init_stds: tuple[float, ...]  # standard deviations of the normal inits (appendix B)
    corrupted_fractions: tuple[float, ...]  # fractions p of random labels in pretraining (appendix C)
    random_labels_std: float | None  # init std of the random-label network (None: the default init)
    random_labels_epochs: int  # epoch cap of the random-label network
    size_fractions: tuple[float, ...]  # gap-vs-n: training-set sizes as fractions of the whole split


# cpu: paper 001's 3-layer ConvNet (`cnn3`, widened to 64 filters on MNIST-1D so that it can fit random labels),
# MNIST-1D with 1000 training examples (a seeded subset), SGD with momentum 0.9 at lr 0.05, batch 128, no
# augmentation or l2, until the training cross-entropy is <= 0.01. Pretraining: 30 epochs (Figure 5's count).
CPU_RECIPE = PhaseSpec(epochs=300, batch_size=128, lr=0.05, momentum=0.9, stop_at_100=False, stop_at_train_loss=0.01)
CPU_PROTOCOL = Protocol(
    model=ModelSpec("cnn3", width=64), train_size=1000, recipe=CPU_RECIPE,
    pretrain=PhaseSpec(epochs=30, batch_size=128, lr=0.05, momentum=0.9, stop_at_100=False),
    init_stds=(0.01, 0.03, 0.1, 0.2, 0.3), corrupted_fractions=(0.0, 0.25, 0.5, 0.75, 1.0),
    random_labels_std=None, random_labels_epochs=600, size_fractions=(0.025, 0.05, 0.125, 0.25, 0.5, 1.0))
CPU_DATASETS = {"mnist1d": {}, "digits": {"model": ModelSpec("cnn3", width=32), "train_size": None}}

# paper: appendix B and L.1.1 - the 24-filter 3-layer ConvNet on the whole training set, plain SGD (batch 100
# as in Figure 1), lr 0.01, 0.01, 0.001, 0.0001 over 200 epochs (50 each), no augmentation; the reference
# loss 0.006 and 30 pretraining epochs of Figure 5; the init stds of appendix B; the random-label network
# from N(0, 0.1^2), 800 epochs (Figures 15-16); Figure 19's sizes from 100 to 50 000 (on CIFAR-10).
PAPER_STDS = (0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.0009, 0.001, 0.0016, 0.0032,
              0.0064, 0.0128, 0.0256, 0.0512, 0.06, 0.07, 0.08, 0.09, 0.1, 0.1024, 0.11, 0.12, 0.14)
PAPER_PROTOCOL = Protocol(
    model=ModelSpec("cnn3", width=24), train_size=None,
    recipe=PhaseSpec(epochs=200, batch_size=100, lr=0.01, lr_milestones=(100, 150), stop_at_100=False,
                     stop_at_train_loss=0.006),
    pretrain=PhaseSpec(epochs=30, batch_size=100, lr=0.01, stop_at_100=False),
    init_stds=PAPER_STDS, corrupted_fractions=(0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
    random_labels_std=0.1, random_labels_epochs=800, size_fractions=(0.002, 0.01, 0.02, 0.1, 0.2, 0.5, 1.0))


def protocol(preset: str, dataset: str) -> Protocol:
    if preset == "paper":
        return PAPER_PROTOCOL
    return replace(CPU_PROTOCOL, **CPU_DATASETS.get(dataset, {"train_size": None}))


def _overlay(given, preset, default):
    """Field by field: the value given (preset, config, flags) where it differs from the preset's, else the
    experiment's default."""
    if is_dataclass(given):
        return replace(default, **{f.name: _overlay(getattr(given, f.name), getattr(preset, f.name),
                                                     getattr(default, f.name)) for f in fields(given)})
    return given if given != preset else default


def experiment_base(base: RunSpec, preset: str) -> tuple[RunSpec, Protocol]:
    """The base spec of these experiments (protocol values unless overridden) and the protocol."""
    proto = protocol(preset, base.data.name)
    preset_base = base_spec(preset, base.data.name)
    if base.model.name != preset_base.model.name:  # another architecture named: keep it as given
        model = base.model
    else:
        model = _overlay(base.model, preset_base.model, proto.model)
    train_size = base.data.train_size if base.data.train_size != preset_base.data.train_size else proto.train_size
    pretrain = _overlay(base.init.pretrain, preset_base.init.pretrain, proto.pretrain)
    spec = replace(base, data=replace(base.data, train_size=train_size), model=model, init=InitSpec(),
                   recipe=_overlay(base.recipe, preset_base.recipe, proto.recipe))
    return spec, replace(proto, pretrain=pretrain)


# ---- the family of networks (normalized-loss, norm-vs-error) ------------------------------------------

def family(base: RunSpec, proto: Protocol, seeds: list[int]) -> list[tuple[dict, RunSpec]]:
    """(label, spec) of every network: normal inits, random pretraining, and the random-label network."""
    out = []
    for seed in seeds:
        out += [({"family": "init std", "value": s}, replace(base, init=InitSpec("normal", init_std=s), seed=seed))
                for s in proto.init_stds]
        out += [({"family": "random pretraining", "value": p},
                 replace(base, init=InitSpec("partial-random-labels", random_label_fraction=p, pretrain=proto.pretrain),
                         seed=seed)) for p in proto.corrupted_fractions]
        random_labels = InitSpec("partial-random-labels", random_label_fraction=1.0, init_std=proto.random_labels_std,
                                 pretrain=replace(base.recipe, epochs=proto.random_labels_epochs))
        out.append(({"family": "random labels", "value": 1.0},
                    replace(base, init=random_labels, recipe=replace(base.recipe, epochs=0), seed=seed)))
    return out


def family_cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    spec, proto = experiment_base(base, "cpu")
    return [s for _, s in family(spec, proto, seeds)]


def check_normalizable(ctx: Context, spec: RunSpec) -> None:
    """BadInput before any training if the architecture cannot be normalized layer-wise (not a chain of
    linear/conv layers and positively homogeneous modules: residual or dense nets)."""
    normalized_network(ctx.ws.skeleton(spec))


def family_records(ctx: Context) -> list[dict]:
    base, proto = experiment_base(ctx.base, ctx.preset)
    check_normalizable(ctx, base)
    cells = family(base, proto, ctx.seeds)
    summaries = train_grid(ctx, [spec for _, spec in cells], "generalization puzzles")
    return [{**label, "seed": spec.seed, **measure_network(ctx, spec, summary, label["family"] == "random labels")}
            for (label, spec), summary in zip(cells, summaries)]


def measure_network(ctx: Context, spec: RunSpec, summary: dict, on_random_labels: bool = False) -> dict:
    """Losses (unnormalized and layer-wise normalized), errors and norms of a run's final network. The
    random-label network (trained only in its pretraining phase) is measured on its pretraining labels."""
    phases = plan(spec)
    reached_phase = ctx.store.phase(phases[1 if on_random_labels else -1].id) or {}
    reference = (spec.init.pretrain if on_random_labels else spec.recipe).stop_at_train_loss
    out = {"run_id": summary["run_id"], "status": summary["status"], "reference_loss": reference,
           "reached_reference": reached_phase.get("stop_reason") == "reference train loss",
           "epochs": reached_phase.get("epochs"), "train_labels": "random" if on_random_labels else "true",
           "train_size": None}
    if summary["status"] != "done":
        return out
    data = ctx.ws.dataset(spec)
    model = load_final(ctx.store, summary["run_id"], ctx.ws.skeleton(spec)).eval()
    x, y = pretraining_data(spec, ctx.ws) if on_random_labels else (data.x_train, data.y_train)
    return {**out, "train_size": len(y), **losses(model, x, y, data.x_test, data.y_test)}


def losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor) -> dict:
    train_loss, train_acc = evaluate(model, x, y)
    test_loss, test_acc = evaluate(model, x_test, y_test)
    normalized = normalized_network(model)
    with torch.no_grad():
        same = all(torch.equal(normalized(a).argmax(1), model(a).argmax(1)) for a in (x, x_test))
    return {"train_loss": train_loss, "test_loss": test_loss,
            "train_error_percent": 100 * (1 - train_acc), "test_error_percent": 100 * (1 - test_acc),
            "normalized_train_loss": normalized_cross_entropy(model, x, y),
            "normalized_test_loss": normalized_cross_entropy(model, x_test, y_test),
            "normalized_predictions_unchanged": same,
            "product_of_frobenius_norms": product_of_frobenius_norms(model),
            "product_of_normalization_factors": math.prod(normalization_factors(model))}


def _measured(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("normalized_train_loss") is not None]


def _label(r: dict) -> str:
    return "RL" if r["family"] == "random labels" else f"{r['value']:g}"


def _fmt(v, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


# ---- normalized-loss ---------------------------------------------------------------------------------

def loss_panels(records: list[dict]) -> list[dict]:
    """The two scatter panels of Figure 2a-b: every measured network, grouped by family."""
    points = _measured(records)
    panels = []
    for kind, prefix in (("unnormalized", ""), ("normalized", "normalized_")):
        groups = {}
        for fam in FAMILIES:
            rs = [r for r in points if r["family"] == fam]
            if rs:
                groups[fam] = ([r[prefix + "train_loss"] for r in rs], [r[prefix + "test_loss"] for r in rs],
                               [_label(r) for r in rs])
        panels.append({"groups": groups, "colors": COLORS, "fit": True, "diagonal": kind == "normalized",
                       "xlabel": f"train cross-entropy ({kind} network)", "ylabel": f"test cross-entropy ({kind} network)",
                       "title": f"{kind}"})
    return panels


def loss_fits(records: list[dict]) -> list[tuple[str, dict]]:
    """The least-squares lines of the plotted points (all networks), and without the random-label network."""
    points = _measured(records)
    fits = []
    for kind, prefix in (("unnormalized", ""), ("normalized", "normalized_")):
        for which, rs in (("all networks", points), ("without random labels", [r for r in points if r["family"] != "random labels"])):
            fits.append((f"{kind}, {which}", least_squares_line([r[prefix + "train_loss"] for r in rs],
                                                                [r[prefix + "test_loss"] for r in rs])))
    return fits


def _fit_rows(fits: list[tuple[str, dict]]) -> list[list]:
    return [[name, f["n"], _fmt(f["slope"]), _fmt(f["intercept"]), _fmt(f["r2"], 6), _fmt(f["adjusted_r2"], 6),
             _fmt(f["rmse"], 3)] for name, f in fits]


FIT_HEADER = ["test vs train loss", "points", "slope", "intercept", "R^2", "adjusted R^2", "RMSE"]


def loss_table(records: list[dict]) -> tuple[list[str], list[list]]:
    return FIT_HEADER, _fit_rows(loss_fits(records))


NETWORK_HEADER = ["family", "value", "seed", "train labels", "epochs", "reached ref", "train loss", "test loss",
                  "norm. train loss", "norm. test loss", "train err %", "test err %", "prod. Frobenius norms",
                  "same predictions"]


def network_rows(records: list[dict]) -> list[list]:
    return [[r["family"], r["value"], r["seed"], r["train_labels"], r["epochs"], r["reached_reference"],
             _fmt(r.get("train_loss")), _fmt(r.get("test_loss")), _fmt(r.get("normalized_train_loss"), 8),
             _fmt(r.get("normalized_test_loss"), 8), _fmt(r.get("train_error_percent"), 3),
             _fmt(r.get("test_error_percent"), 3), _fmt(r.get("product_of_frobenius_norms"), 5),
             r.get("normalized_predictions_unchanged")] for r in records]


def _unreached_note(records: list[dict]) -> str:
    missed = [r for r in records if not r["reached_reference"]]
    if not missed:
        return "Every network reached the reference training loss.\n\n"
    return ("Networks that did not reach the reference loss within the epoch cap (kept, at the cap): "
            + ", ".join(f"{r['family']} {_label(r)} (seed {r['seed']})" for r in missed) + ".\n\n")


def loss_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """normalized-loss.png (Figure 2a-b: test vs train loss, unnormalized and normalized, least-squares
    lines) and normalized-loss.md (the fits and every network)."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = next((r["reference_loss"] for r in records if r["family"] != "random labels"), None)
    figure, _ = scatter_figure(folder / "normalized-loss.png", loss_panels(records),
                               f"Paper 001 Figure 2: test vs train cross-entropy at train loss <= {reference}; "
                               f"labels: init std, pretraining fraction p, RL = random labels\n{scale}")
    text = ("# normalized-loss: paper 001 Figure 2 (test vs train loss, unnormalized and normalized)\n\n"
            f"Ours: {scale}. Networks of one architecture trained until their training cross-entropy is <= "
            f"{reference} (first epoch at or below), from normal inits N(0, s^2) and after pretraining on labels of "
            "which a fraction p is random, plus one network trained on random labels (RL; its train losses are on "
            "its own random labels, its test losses on the true test labels). Normalized: every layer divided by "
            "its Frobenius norm (the first layer's bias with its weights), which leaves every prediction unchanged.\n\n"
            "Least squares over the plotted points (RMSE with n - 2 degrees of freedom). Paper 001 (CIFAR-10, "
            "normalized): slope 0.836, intercept 0.377, R^2 0.9998, RMSE 4.77e-5 (Figure 10); MNIST with the RL "
            "point: slope 1.0083, intercept -0.0191, R^2 1.0000 (Figure 16).\n\n"
            + markdown_table(*loss_table(records)) + "\n" + _unreached_note(records)
            + "## Every network\n\n" + markdown_table(NETWORK_HEADER, network_rows(records)))
    md = folder / "normalized-loss.md"
    md.write_text(text)
    return [md, figure]


# ---- norm-vs-error -----------------------------------------------------------------------------------

register_experiment(Experiment(
    "normalized-loss", "paper 001 Figure 2: test vs train cross-entropy of networks at the same train loss, "
    "unnormalized and layer-wise normalized, with least-squares lines", family_records, loss_table, loss_render,
    family_cells))
