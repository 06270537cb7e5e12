"""`gap-vs-n` (paper 001, appendix I, Figure 19 parts 1 and 2): normalized and unnormalized train and
test loss, their gap, and the classification-error gap as the training set grows (seeded subsets of the
training split), on the true labels and on random labels - the paper's answer to Zhang et al. (2017): a
network fits random labels, but its normalized train loss stays near chance and the normalized gap shrinks
with N all the same (Figure 19 part 2). Trained to the reference loss, every network fits its labels, so on
random labels the classification gap stays at chance. (Figure 1, the classification error of a small network
trained a fixed number of epochs, is `error-vs-n` in error_vs_size.py, on this module's grid.)

Per (seed, size): one default-init network on the true labels, trained to the reference loss, and one network
on uniformly random training labels (`partial-random-labels`, fraction 1: the random-label network of
`normalized-loss`), trained to the reference loss on its labels and tested on random test labels, as the
paper's ("the testing set and training set labels were randomized", appendix B). Protocol, snapshot rule and
measurement as in generalization.py."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...report.figures import series_figure
from ...report.tables import markdown_table
from ...spec import InitSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .generalization import (Protocol, _fmt, _measured, _unreached_note, check_normalizable, experiment_base,
                             measure_network)

LABELS = ("true labels", "random labels")


def sizes(full: int, proto: Protocol) -> list[int]:
    return sorted({max(1, min(full, round(f * full))) for f in proto.size_fractions})


def gap_specs(base: RunSpec, proto: Protocol, full: int, seeds: list[int], stretch: bool = True) -> list[tuple[str, RunSpec]]:
    """(labels, spec) per (seed, size, labels): a default-init network on the true labels, and a network trained
    on random labels only (its pretraining phase, init std `proto.random_labels_std`, epoch cap
    `proto.random_labels_epochs`), both to the reference loss. A subset's epoch caps and learning-rate milestones
    are stretched by the ratio of SGD steps per epoch (rounded down), so that its schedule in steps is about the
    whole training split's (`stretch`; else every size trains the same epochs, as Figure 1's "70 epochs for
    each point")."""
    batch = base.recipe.batch_size
    out = []
    for seed in seeds:
        for n in sizes(full, proto):
            factor = math.ceil(full / batch) // math.ceil(n / batch) if stretch else 1
            recipe = replace(base.recipe, epochs=base.recipe.epochs * factor,
                             lr_milestones=tuple(m * factor for m in base.recipe.lr_milestones))
            spec = replace(base, data=replace(base.data, train_size=None if n == full else n), init=InitSpec(),
                           recipe=recipe, seed=seed)
            random_labels = InitSpec("partial-random-labels", random_label_fraction=1.0, init_std=proto.random_labels_std,
                                     pretrain=replace(recipe, epochs=recipe.epochs if proto.random_labels_epochs is None
                                                      else proto.random_labels_epochs * factor))
            out += [("true labels", spec), ("random labels", replace(spec, init=random_labels,
                                                                     recipe=replace(recipe, epochs=0)))]
    return out


def gap_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, _ = experiment_base(base, preset)
    return [replace(spec, data=replace(spec.data, train_size=None), seed=seed) for seed in seeds]


def gap_records(ctx: Context, proto: Protocol | None = None, stretch: bool = True) -> list[dict]:
    """The records of `gap_specs` for `proto` (default: generalization.py's protocol)."""
    base, proto = experiment_base(ctx.base, ctx.preset, proto)
    full = len(ctx.ws.dataset(replace(base, data=replace(base.data, train_size=None))).y_train)
    check_normalizable(ctx, base)
    grid = gap_specs(base, proto, full, ctx.seeds, stretch)
    summaries = train_grid(ctx, [spec for _, spec in grid], "gap-vs-n")
    out = []
    for (labels, spec), summary in zip(grid, summaries):
        random = labels == "random labels"
        r = {"family": labels, "value": spec.data.train_size or full, "seed": spec.seed,
             **measure_network(ctx, spec, summary, on_random_labels=random, random_test=random)}
        if r.get("normalized_train_loss") is not None:
            r["gap"] = r["test_loss"] - r["train_loss"]
            r["normalized_gap"] = r["normalized_test_loss"] - r["normalized_train_loss"]
            r["error_gap_percent"] = r["test_error_percent"] - r["train_error_percent"]
        out.append(r)
    return out


def _by_size(records: list[dict], key: str, labels: str) -> tuple[list[int], list[list[float]]]:
    points = [r for r in _measured(records) if r["family"] == labels]
    ns = sorted({r["train_size"] for r in points})
    return ns, [[r[key] for r in points if r["train_size"] == n] for n in ns]


GAP_KEYS = ("train_loss", "test_loss", "gap", "normalized_train_loss", "normalized_test_loss", "normalized_gap",
            "train_error_percent", "test_error_percent", "error_gap_percent")


def gap_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["labels", "train size", "seeds", "reached ref", "train loss", "test loss", "gap", "norm. train loss",
              "norm. test loss", "norm. gap", "train err %", "test err %", "error gap %"]
    rows = []
    for labels in LABELS:
        for n in _by_size(records, "train_loss", labels)[0]:
            rs = [r for r in _measured(records) if r["family"] == labels and r["train_size"] == n]
            rows.append([labels, n, len(rs), sum(r["reached_reference"] for r in rs)]
                        + [_fmt(float(np.mean([r[k] for r in rs])), 8 if k.startswith("normalized") else 4)
                           for k in GAP_KEYS])
    return header, rows


def gap_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """gap-vs-n.png and gap-vs-n-random-labels.png (Figure 19 parts 1 and 2: losses and gaps against the
    training-set size, mean and min-max over seeds, and the classification-error gap) and gap-vs-n.md."""
    folder.mkdir(parents=True, exist_ok=True)

    def series(labels, *keys):
        return {k: _by_size(records, k, labels) for k in keys}  # record keys: the figure names them (report/labels.py)

    figures = []
    for labels, name, part in (("true labels", "gap-vs-n.png", 1), ("random labels", "gap-vs-n-random-labels.png", 2)):
        panels = [{"series": series(labels, "train_loss", "test_loss"), "xscale": "log", "xlabel": "training examples",
                   "ylabel": "cross-entropy", "title": "unnormalized network"},
                  {"series": series(labels, "normalized_train_loss", "normalized_test_loss"), "xscale": "log",
                   "xlabel": "training examples", "ylabel": "cross-entropy", "title": "normalized network"},
                  {"series": series(labels, "normalized_gap"), "xscale": "log", "xlabel": "training examples",
                   "ylabel": "test - train", "title": "normalized gap"},
                  {"series": series(labels, "error_gap_percent"), "xscale": "log", "xlabel": "training examples",
                   "ylabel": "test - train error (%)", "title": "classification gap"}]
        figures.append(series_figure(folder / name, panels, f"Paper 001 Figure 19 part {part}, {labels}: loss and gap "
                                                            f"vs training-set size\n{scale}"))
    reference = next((r["reference_loss"] for r in records), None)
    text = ("# gap-vs-n: paper 001 Figure 19 (generalization gap vs training-set size)\n\n"
            f"Ours: {scale}. Per size and seed, seeded subsets of the training split: one network on the true labels "
            "(default init) and one on random training labels, tested on random test labels; each trained until its "
            f"training cross-entropy (on its own labels) is <= {reference}, the snapshot closest to it with 0% "
            "training error; means over seeds. Paper 001: the normalized gap shrinks towards zero as N grows, "
            "slowly, on true and on random labels (Figure 19, CIFAR-10, N up to 50 000). Figure 1's classification "
            "gap, of a small network trained a fixed number of epochs, is `error-vs-n`.\n\n"
            + markdown_table(*gap_table(records)) + "\n" + _unreached_note(records))
    md = folder / "gap-vs-n.md"
    md.write_text(text)
    return [md, *figures]


register_experiment(Experiment(
    "gap-vs-n", gap_records, gap_table, gap_render, gap_cells))
