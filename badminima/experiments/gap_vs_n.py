"""`gap-vs-n` (paper 001, appendix I, Figure 19): normalized and unnormalized train and test loss, and
their gap, as the training set grows (seeded subsets of the training split). Protocol, measurement and
conventions as in generalization.py."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..report.figures import series_figure
from ..report.tables import markdown_table
from ..spec import InitSpec, RunSpec
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .generalization import (Protocol, _fmt, _measured, _unreached_note, check_normalizable, experiment_base,
                             measure_network)

def sizes(full: int, proto: Protocol) -> list[int]:
    return sorted({max(1, min(full, round(f * full))) for f in proto.size_fractions})


def gap_specs(base: RunSpec, proto: Protocol, full: int, seeds: list[int]) -> list[RunSpec]:
    """One default-init network per (seed, size), trained to the reference loss. A subset's epoch cap and
    learning-rate milestones are stretched by the ratio of SGD steps per epoch (rounded down), so that its
    schedule in steps is about the whole training split's."""
    batch = base.recipe.batch_size
    out = []
    for seed in seeds:
        for n in sizes(full, proto):
            stretch = math.ceil(full / batch) // math.ceil(n / batch)
            recipe = replace(base.recipe, epochs=base.recipe.epochs * stretch,
                             lr_milestones=tuple(m * stretch for m in base.recipe.lr_milestones))
            out.append(replace(base, data=replace(base.data, train_size=None if n == full else n), init=InitSpec(),
                               recipe=recipe, seed=seed))
    return out


def gap_cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    spec, _ = experiment_base(base, "cpu")
    return [replace(spec, data=replace(spec.data, train_size=None), seed=seed) for seed in seeds]


def gap_records(ctx: Context) -> list[dict]:
    base, proto = experiment_base(ctx.base, ctx.preset)
    full = len(ctx.ws.dataset(replace(base, data=replace(base.data, train_size=None))).y_train)
    check_normalizable(ctx, base)
    specs = gap_specs(base, proto, full, ctx.seeds)
    summaries = train_grid(ctx, specs, "gap-vs-n")
    out = []
    for spec, summary in zip(specs, summaries):
        r = {"family": "true labels", "value": spec.data.train_size or full, "seed": spec.seed,
             **measure_network(ctx, spec, summary)}
        if r.get("normalized_train_loss") is not None:
            r["gap"] = r["test_loss"] - r["train_loss"]
            r["normalized_gap"] = r["normalized_test_loss"] - r["normalized_train_loss"]
        out.append(r)
    return out


def _by_size(records: list[dict], key: str) -> tuple[list[int], list[list[float]]]:
    points = _measured(records)
    ns = sorted({r["train_size"] for r in points})
    return ns, [[r[key] for r in points if r["train_size"] == n] for n in ns]


GAP_KEYS = ("train_loss", "test_loss", "gap", "normalized_train_loss", "normalized_test_loss", "normalized_gap")


def gap_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["train size", "seeds", "reached ref", "train loss", "test loss", "gap", "norm. train loss",
              "norm. test loss", "norm. gap", "test err %"]
    ns, _ = _by_size(records, "train_loss")
    rows = []
    for n in ns:
        rs = [r for r in _measured(records) if r["train_size"] == n]
        rows.append([n, len(rs), sum(r["reached_reference"] for r in rs)]
                    + [_fmt(float(np.mean([r[k] for r in rs])), 8 if k.startswith("normalized") else 4) for k in GAP_KEYS]
                    + [_fmt(float(np.mean([r["test_error_percent"] for r in rs])), 3)])
    return header, rows


def gap_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """gap-vs-n.png (Figure 19: losses and gaps against the training-set size, mean and min-max over seeds)
    and gap-vs-n.md."""
    folder.mkdir(parents=True, exist_ok=True)

    def series(*keys):
        return {k.replace("_", " "): _by_size(records, k) for k in keys}

    panels = [{"series": series("train_loss", "test_loss"), "xscale": "log", "xlabel": "training examples",
               "ylabel": "cross-entropy", "title": "unnormalized network"},
              {"series": series("normalized_train_loss", "normalized_test_loss"), "xscale": "log",
               "xlabel": "training examples", "ylabel": "cross-entropy", "title": "normalized network"},
              {"series": series("gap"), "xscale": "log", "xlabel": "training examples", "ylabel": "test - train",
               "title": "gap, unnormalized"},
              {"series": series("normalized_gap"), "xscale": "log", "xlabel": "training examples",
               "ylabel": "test - train", "title": "gap, normalized"}]
    figure = series_figure(folder / "gap-vs-n.png", panels, f"Paper 001 Figure 19: loss and gap vs training-set size\n{scale}")
    reference = next((r["reference_loss"] for r in records), None)
    text = ("# gap-vs-n: paper 001 Figure 19 (generalization gap vs training-set size)\n\n"
            f"Ours: {scale}. One network per size and seed (default init, true labels, seeded subsets of the "
            f"training split), trained until its training cross-entropy is <= {reference}; means over seeds. "
            "Paper 001: the normalized gap shrinks towards zero as N grows, slowly (CIFAR-10, N up to 50 000).\n\n"
            + markdown_table(*gap_table(records)) + "\n" + _unreached_note(records))
    md = folder / "gap-vs-n.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "gap-vs-n", "paper 001 Figure 19: normalized and unnormalized train/test loss and their gap vs training-set size",
    gap_records, gap_table, gap_render, gap_cells))
