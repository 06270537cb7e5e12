"""Paper 001, "Generalization Puzzles in Deep Networks": the normalized network's training loss predicts
its test loss.

- `normalized-loss` (Figure 2a-b; appendix D and F, Figures 10-12 and 15-16): networks of one architecture
  on the same data that reach the same small training loss but differ in test performance, made two ways
  (appendix C): normal inits N(0, s^2) with a range of standard deviations s (Figure 6), and pretraining
  for some epochs on labels of which a fraction p is random, then training on the true labels (Figure 5);
  plus one network trained on random labels only (the red point). Test against train cross-entropy,
  before and after layer-wise Frobenius normalization (`measures.normalized`), with the least-squares line.
(`norm-vs-error`, Figures 4c and 13, on the same networks, is in norm_vs_error.py.)
(`gap-vs-n`, appendix I, Figure 19, is in gap_vs_n.py and shares this module's protocol; so do Figures 1 and 3
(error_vs_size.py), 9, 10 and 14 (fixed_schedule.py), 2c-d and 11-12 (other_architectures.py) and 20
(output_histogram.py).)

Choices, where the paper leaves room:
- A network is the snapshot (epoch) with 0% training error whose un-augmented training cross-entropy is
  closest to the reference loss: the paper's rule ("among the network snapshots saved from all the epochs
  we pick a network that is closest to ... [the] reference training loss", Figure 5; "all points have zero
  classification error at training", appendix B). Training stops at the first epoch at or below the
  reference (`PhaseSpec.stop_at_train_loss`); the epoch before it is the other candidate, and when its
  recorded loss is the closer one it is rebuilt by the same run capped one epoch earlier (training is
  deterministic; the rebuilt loss is checked against the recorded one). Snapshots that are further away in
  loss are never closer, the loss falling epoch by epoch this near the end. Networks that never reach the
  reference (the epoch cap) are kept at the cap and flagged `reached_reference: false`; a network without
  0% training error at either candidate is kept at the first and flagged `zero_train_error: false`.
- Random pretraining replaces a fraction p of the labels by uniform random classes (Algorithm 1 of paper
  000 with R = 1 and nothing zeroed: the `partial-random-labels` init); the paper swaps labels among a
  fraction p of the examples. Pretraining runs a fixed number of epochs, then the true-label phase starts.
- The random-label network trains on the training inputs with all labels uniform random until its loss on
  those labels reaches the reference. Its train losses are measured on its own random labels, its test
  losses on the true test labels (the paper randomized the test labels too; for a network at chance level
  either gives the same loss in expectation). In `gap-vs-n` (Figure 19 part 2, Figure 1b) the random-label
  networks are tested on random test labels, as the paper's.
- The product of norms in `norm-vs-error` is the product of the normalization's factors
  (`measures.normalization_factors`): the first layer's [weight, bias] with its weights, as the normalization
  divides them, so that normalized loss and norm product describe the same scaling.
- Model, recipe and training-set size come from the experiment's protocol below unless the preset's
  values were overridden (flags or --config), in which case the override wins, field by field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ...data.corruptions import random_labels as randomize_labels
from ...measures import normalization_factors, normalized_cross_entropy, normalized_network
from ...presets import base_spec, overlay
from ...report.figures import least_squares_line, scatter_figure
from ...report.tables import markdown_table
from ...runs import load_final, plan, pretraining_data
from ...spec import InitSpec, ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from ...train import derive_seed, evaluate
from .. import Context, Experiment, register_experiment, train_grid

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
    random_labels_epochs: int | None  # epoch cap of the random-label network (None: the recipe's)
    size_fractions: tuple[float, ...]  # gap-vs-n: training-set sizes as fractions of the whole split
    random_labels_network: bool = True  # the family includes the network trained on random labels only
    random_labels_test: bool = False  # ... and tests it on random test labels (else on the true ones)


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

# paper: appendix B - the 3-layer ConvNet of Figure 2 with 64 filters of 5x5 (148 224 parameters on CIFAR-10
# with the first layer's bias; L.1.1 calls the net "overparametrized" with "154, 464 parameters", a count that
# matches neither its 24 filters, 31 584, nor 64), on the whole training set, plain SGD (batch 100 as in
# Figure 1), lr 0.01, 0.01, 0.001, 0.0001 over 200 epochs (50 each), no augmentation; the reference loss
# 0.006 and 30 pretraining epochs of Figure 5; the init stds of appendix B; the random-label network from
# N(0, 0.1^2), 800 epochs (Figures 15-16); Figure 19's sizes from 100 to 50 000 (on CIFAR-10).
PAPER_STDS = (0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.0009, 0.001, 0.0016, 0.0032,
              0.0064, 0.0128, 0.0256, 0.0512, 0.06, 0.07, 0.08, 0.09, 0.1, 0.1024, 0.11, 0.12, 0.14)
PAPER_PROTOCOL = Protocol(
    model=ModelSpec("cnn3", width=64), train_size=None,
    recipe=PhaseSpec(epochs=200, batch_size=100, lr=0.01, lr_milestones=(100, 150), stop_at_100=False,
                     stop_at_train_loss=0.006),
    pretrain=PhaseSpec(epochs=30, batch_size=100, lr=0.01, stop_at_100=False),
    init_stds=PAPER_STDS, corrupted_fractions=(0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
    random_labels_std=0.1, random_labels_epochs=800, size_fractions=(0.002, 0.01, 0.02, 0.1, 0.2, 0.5, 1.0))


def protocol(preset: str, dataset: str) -> Protocol:
    if preset == "paper":
        return PAPER_PROTOCOL
    return replace(CPU_PROTOCOL, **CPU_DATASETS.get(dataset, {"train_size": None}))


def experiment_base(base: RunSpec, preset: str, proto: Protocol | None = None) -> tuple[RunSpec, Protocol]:
    """The base spec of these experiments (protocol values unless overridden) and the protocol (`proto`, or else
    this module's for the preset and dataset)."""
    proto = proto or protocol(preset, base.data.name)
    preset_base = base_spec(preset, base.data.name)
    if base.model.name != preset_base.model.name:  # another architecture named: keep it as given
        model = base.model
    else:
        model = overlay(base.model, preset_base.model, proto.model)
    train_size = base.data.train_size if base.data.train_size != preset_base.data.train_size else proto.train_size
    pretrain = overlay(base.init.pretrain, preset_base.init.pretrain, proto.pretrain)
    spec = replace(base, data=replace(base.data, train_size=train_size), model=model, init=InitSpec(),
                   recipe=overlay(base.recipe, preset_base.recipe, proto.recipe))
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
        if not proto.random_labels_network:
            continue
        random_labels = InitSpec("partial-random-labels", random_label_fraction=1.0, init_std=proto.random_labels_std,
                                 pretrain=replace(base.recipe, epochs=base.recipe.epochs if proto.random_labels_epochs is None
                                                  else proto.random_labels_epochs))
        out.append(({"family": "random labels", "value": 1.0},
                    replace(base, init=random_labels, recipe=replace(base.recipe, epochs=0), seed=seed)))
    return out


def family_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, proto = experiment_base(base, preset)
    return [s for _, s in family(spec, proto, seeds)]


def check_normalizable(ctx: Context, spec: RunSpec) -> None:
    """BadInput before any training if the architecture cannot be normalized layer-wise (not a chain of
    linear/conv layers and positively homogeneous modules: residual or dense nets)."""
    normalized_network(ctx.ws.skeleton(spec))


def family_records(ctx: Context, proto: Protocol | None = None, measure=None) -> list[dict]:
    """Train the family of `proto` (default: this module's protocol) and measure every network with `measure`
    (see `measure_network`; default `losses`, after checking that the architecture can be normalized layer-wise:
    a caller giving its own measure checks what it needs before calling)."""
    base, proto = experiment_base(ctx.base, ctx.preset, proto)
    if measure is None:
        check_normalizable(ctx, base)
    cells = family(base, proto, ctx.seeds)
    summaries = train_grid(ctx, [spec for _, spec in cells], "generalization puzzles")
    out = []
    for (label, spec), summary in zip(cells, summaries):
        random = label["family"] == "random labels"
        out.append({**label, "seed": spec.seed, **measure_network(ctx, spec, summary, random,
                                                                   random and proto.random_labels_test, measure)})
    return out


def closest_snapshot(candidates: list[dict], reference: float) -> dict | None:
    """Of the candidates {"epoch", "train_loss", "train_error_percent", ...}, the one with 0% training error
    whose training loss is closest to `reference` (ties: the earlier epoch); None if none has 0% error."""
    fitted = [c for c in candidates if c["train_error_percent"] == 0.0]
    return min(fitted, key=lambda c: (abs(c["train_loss"] - reference), c["epoch"])) if fitted else None


def _capped(spec: RunSpec, on_random_labels: bool, epochs: int) -> RunSpec:
    """The same run with its stopping phase capped at `epochs` and no stop rule (its first `epochs` epochs)."""
    if on_random_labels:
        return replace(spec, init=replace(spec.init, pretrain=replace(spec.init.pretrain, epochs=epochs,
                                                                       stop_at_train_loss=None)))
    return replace(spec, recipe=replace(spec.recipe, epochs=epochs, stop_at_train_loss=None))


def _snapshot(ctx: Context, spec: RunSpec, on_random_labels: bool, x, y, reference: float | None):
    """(model, {"epoch", "zero_train_error"}) of the paper's snapshot rule (see the module doc); without a
    reference loss (a fixed schedule), the network at the end of its schedule."""
    phases = plan(spec)
    stopping = phases[1 if on_random_labels else -1].id
    row = ctx.store.phase(stopping) or {}
    last = row.get("epochs") or 0
    final = load_final(ctx.store, phases[-1].id, ctx.ws.skeleton(spec)).eval()
    if reference is None:
        return final, {"epoch": last, "zero_train_error": evaluate(final, x, y)[1] == 1.0}
    candidates = [{"epoch": last, "model": final}]
    history = ctx.store.epochs(stopping)
    before = history[last - 2].get("clean_train_loss") if row.get("stop_reason") == "reference train loss" and last >= 2 else None
    after = history[last - 1].get("clean_train_loss") if len(history) >= last >= 1 else None
    if before is not None and after is not None and abs(before - reference) < abs(after - reference):
        earlier = _capped(spec, on_random_labels, last - 1)
        train_grid(ctx, [earlier], "snapshot one epoch earlier")
        model = load_final(ctx.store, plan(earlier)[-1].id, ctx.ws.skeleton(spec)).eval()
        rebuilt = evaluate(model, x, y)[0]
        if abs(rebuilt - before) <= 1e-5 * max(abs(before), 1e-12):
            candidates.append({"epoch": last - 1, "model": model})
        else:
            ctx.ws.warn(f"run {phases[-1].id}: epoch {last - 1} rebuilt with train loss {rebuilt:.6g}, recorded "
                        f"{before:.6g}; keeping epoch {last}")
    for c in candidates:
        loss, acc = evaluate(c["model"], x, y)
        c.update(train_loss=loss, train_error_percent=100 * (1 - acc))
    chosen = closest_snapshot(candidates, reference)
    return (chosen or candidates[0])["model"], {"epoch": (chosen or candidates[0])["epoch"], "zero_train_error": chosen is not None}


def random_test_labels(spec: RunSpec, data) -> torch.Tensor:
    """Uniformly random test labels, seeded by the run's seed (Figure 19 part 2: random training and test labels)."""
    generator = torch.Generator().manual_seed(derive_seed(spec.seed, "random test labels"))
    return randomize_labels(data.y_test.cpu(), data.num_classes, 1.0, generator).to(data.y_test.device)


def measure_network(ctx: Context, spec: RunSpec, summary: dict, on_random_labels: bool = False,
                    random_test: bool = False, measure=None) -> dict:
    """Losses (unnormalized and layer-wise normalized), errors and norms of a run's network at the paper's
    snapshot (see the module doc): `measure(model, x, y, x_test, y_test) -> dict`, default `losses`. The
    random-label network (trained only in its pretraining phase) is measured on its pretraining labels, and on
    random test labels if `random_test`."""
    phases = plan(spec)
    reached_phase = ctx.store.phase(phases[1 if on_random_labels else -1].id) or {}
    reference = (spec.init.pretrain if on_random_labels else spec.recipe).stop_at_train_loss
    out = {"run_id": summary["run_id"], "status": summary["status"], "reference_loss": reference,
           "reached_reference": reached_phase.get("stop_reason") == "reference train loss",
           "epochs": reached_phase.get("epochs"), "train_labels": "random" if on_random_labels else "true",
           "test_labels": "random" if random_test else "true", "train_size": None}
    if summary["status"] != "done":
        return out
    data = ctx.ws.dataset(spec)
    x, y = pretraining_data(spec, ctx.ws) if on_random_labels else (data.x_train, data.y_train)
    model, snapshot = _snapshot(ctx, spec, on_random_labels, x, y, reference)
    y_test = random_test_labels(spec, data) if random_test else data.y_test
    return {**out, "train_size": len(y), "snapshot_epoch": snapshot["epoch"],
            "zero_train_error": snapshot["zero_train_error"], **(measure or losses)(model, x, y, data.x_test, y_test)}


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


def line_residuals(records: list[dict]) -> list[float | None]:
    """Each record's residual from the least-squares line of normalized test against normalized train loss
    fitted to the networks trained on true labels (the random-label point left out of the fit, so that its
    residual tests the paper's claim that it lies on the same line): test - (slope * train + intercept);
    None where the network was not measured or no line can be fitted."""
    fitted = [r for r in _measured(records) if r["family"] != "random labels"]
    fit = least_squares_line([r["normalized_train_loss"] for r in fitted], [r["normalized_test_loss"] for r in fitted])
    if fit["slope"] is None:
        return [None] * len(records)
    return [None if r.get("normalized_train_loss") is None else
            r["normalized_test_loss"] - (fit["slope"] * r["normalized_train_loss"] + fit["intercept"]) for r in records]


def _fit_rows(fits: list[tuple[str, dict]]) -> list[list]:
    return [[name, f["n"], _fmt(f["slope"]), _fmt(f["intercept"]), _fmt(f["r2"], 6), _fmt(f["adjusted_r2"], 6),
             _fmt(f["rmse"], 3)] for name, f in fits]


FIT_HEADER = ["test vs train loss", "points", "slope", "intercept", "R^2", "adjusted R^2", "RMSE"]


def loss_table(records: list[dict]) -> tuple[list[str], list[list]]:
    return FIT_HEADER, _fit_rows(loss_fits(records))


NETWORK_HEADER = ["family", "value", "seed", "train labels", "epochs", "snapshot epoch", "reached ref", "train loss",
                  "test loss", "norm. train loss", "norm. test loss", "residual from the line", "train err %",
                  "test err %", "prod. of norms", "same predictions"]


def network_rows(records: list[dict]) -> list[list]:
    """One row per network; the residual is from the normalized line fitted without the random-label point
    (`line_residuals`); the product of norms is that of the normalization (first layer's bias included)."""
    return [[r["family"], r["value"], r["seed"], r["train_labels"], r["epochs"], r.get("snapshot_epoch"),
             r["reached_reference"], _fmt(r.get("train_loss")), _fmt(r.get("test_loss")),
             _fmt(r.get("normalized_train_loss"), 8), _fmt(r.get("normalized_test_loss"), 8), _fmt(residual, 3),
             _fmt(r.get("train_error_percent"), 3), _fmt(r.get("test_error_percent"), 3),
             _fmt(r.get("product_of_normalization_factors"), 5), r.get("normalized_predictions_unchanged")]
            for r, residual in zip(records, line_residuals(records))]


def residual_note(records: list[dict]) -> str:
    """The random-label point's residual beside the spread of the true-label networks' residuals."""
    pairs = [(r, e) for r, e in zip(records, line_residuals(records)) if e is not None]
    true = [abs(e) for r, e in pairs if r["family"] != "random labels"]
    rl = [e for r, e in pairs if r["family"] == "random labels"]
    if not rl or not true:
        return ""
    return (f"Residuals from the normalized line fitted without the random-label point: the random-label network's "
            f"{', '.join(_fmt(e, 3) for e in rl)}; the true-label networks' largest |residual| {_fmt(max(true), 3)}.\n\n")


def _unreached_note(records: list[dict]) -> str:
    missed = [r for r in records if not r["reached_reference"]]
    unfitted = [r for r in records if r.get("zero_train_error") is False]
    text = ("Every network reached the reference training loss.\n\n" if not missed else
            "Networks that did not reach the reference loss within the epoch cap (kept, at the cap): "
            + ", ".join(f"{r['family']} {_label(r)} (seed {r['seed']})" for r in missed) + ".\n\n")
    if unfitted:
        text += ("Networks with training errors at the chosen snapshot (no candidate had 0%): "
                 + ", ".join(f"{r['family']} {_label(r)} (seed {r['seed']})" for r in unfitted) + ".\n\n")
    return text


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
            f"{reference} (the snapshot closest to it with 0% training error), from normal inits N(0, s^2) and after "
            "pretraining on labels of "
            "which a fraction p is random, plus one network trained on random labels (RL; its train losses are on "
            "its own random labels, its test losses on the true test labels). Normalized: every layer divided by "
            "its Frobenius norm (the first layer's bias with its weights), which leaves every prediction unchanged.\n\n"
            "Least squares over the plotted points (RMSE with n - 2 degrees of freedom). Paper 001 (CIFAR-10, "
            "normalized): slope 0.836, intercept 0.377, R^2 0.9998, RMSE 4.77e-5 (Figure 10); MNIST with the RL "
            "point: slope 1.0083, intercept -0.0191, R^2 1.0000 (Figure 16).\n\n"
            + markdown_table(*loss_table(records)) + "\n" + _unreached_note(records) + residual_note(records)
            + "## Every network\n\n" + markdown_table(NETWORK_HEADER, network_rows(records)))
    md = folder / "normalized-loss.md"
    md.write_text(text)
    return [md, figure]


# ---- norm-vs-error -----------------------------------------------------------------------------------

register_experiment(Experiment(
    "normalized-loss", family_records, loss_table, loss_render,
    family_cells))
