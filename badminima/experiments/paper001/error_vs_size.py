"""Paper 001, Figures 1 and 3: classification error of a small ConvNet trained a fixed number of epochs.

- `error-vs-n` (Figure 1a-b): training and test classification error and their gap (the paper's "generalization
  error") against the training-set size N, on the true labels and on random labels. The paper: a 5-layer
  ConvNet of 16 channels (about 10 000 parameters), SGD with batch size 100 for 70 epochs at every N, no
  augmentation or regularization; the gap "seems to converge to zero for increasing size of the training set"
  (N up to 50 000). Grid: gap_vs_n.py's (seeded subsets; per size one network on the true labels and one on
  uniformly random training labels, tested on random test labels), every size training the same epochs.
- `error-vs-params` (Figure 3): training and test error against the number of parameters at a fixed training
  set, the same network and schedule at several widths; the paper: the test error "does not increase here when
  increasing the number of parameters beyond the size of the training set".

Choices where the paper is silent: the network is `cnn5` (3x3 filters, stride 2; models/puzzles_cnn.py); the
learning rate is appendix B's first, 0.01, plain SGD; there is no stop rule (each network is the one at the end
of its 70 epochs, `generalization.measure_network` without a reference loss); Figure 3's widths are ours,
chosen so that the parameter counts straddle N. The cpu preset keeps the 70 epochs and batch 100, with
momentum 0.9 and lr 0.05 so that MNIST-1D is learnt in that budget.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ...models import num_parameters
from ...report.figures import series_figure
from ...report.tables import markdown_table
from ...spec import ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from . import generalization as gen
from .gap_vs_n import LABELS, gap_records
from .published import PAPER_001_FIGURE1_PARAMETERS

PAPER_RECIPE = PhaseSpec(epochs=70, batch_size=100, lr=0.01, stop_at_100=False)
CPU_RECIPE = PhaseSpec(epochs=70, batch_size=100, lr=0.05, momentum=0.9, stop_at_100=False)
PAPER_WIDTHS = (4, 8, 16, 32, 64, 128, 256)  # cnn5 on CIFAR-10: 704 to 1 777 920 parameters (N = 50 000)
CPU_WIDTHS = (4, 8, 16, 32, 64)  # cnn5 on MNIST-1D: 280 to 39 040 parameters (N = 1000)


def protocol(preset: str, dataset: str) -> gen.Protocol:
    """Figure 1's protocol on top of generalization.py's (sizes, subsets): cnn5 of width 16, a fixed schedule,
    the random-label network on the same schedule from the default init."""
    base = gen.protocol(preset, dataset)
    recipe = PAPER_RECIPE if preset == "paper" else CPU_RECIPE
    return replace(base, model=ModelSpec("cnn5", width=16), recipe=recipe, pretrain=recipe, init_stds=(),
                   corrupted_fractions=(), random_labels_std=None, random_labels_epochs=None)


def widths(preset: str) -> tuple[int, ...]:
    return PAPER_WIDTHS if preset == "paper" else CPU_WIDTHS


# ---- error-vs-n (Figure 1) ---------------------------------------------------------------------------

def n_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    spec, _ = gen.experiment_base(base, preset, protocol(preset, base.data.name))
    return [replace(spec, data=replace(spec.data, train_size=None), seed=seed) for seed in seeds]


def n_records(ctx: Context) -> list[dict]:
    proto = protocol(ctx.preset, ctx.base.data.name)
    parameters = num_parameters(ctx.ws.skeleton(gen.experiment_base(ctx.base, ctx.preset, proto)[0]).net)
    return [{**r, "parameters": parameters} for r in gap_records(ctx, proto, stretch=False)]


def _mean_by_size(records: list[dict], labels: str, key: str) -> tuple[list[int], list[list[float]]]:
    points = [r for r in gen._measured(records) if r["family"] == labels]
    ns = sorted({r["train_size"] for r in points})
    return ns, [[r[key] for r in points if r["train_size"] == n] for n in ns]


def n_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["labels", "train size N", "seeds", "train err %", "test err %", "error gap %", "train loss", "test loss"]
    rows = []
    for labels in LABELS:
        ns, _ = _mean_by_size(records, labels, "train_error_percent")
        for i, n in enumerate(ns):
            means = [float(np.mean(_mean_by_size(records, labels, k)[1][i])) for k in
                     ("train_error_percent", "test_error_percent", "error_gap_percent", "train_loss", "test_loss")]
            rows.append([labels, n, len(_mean_by_size(records, labels, "seed")[1][i])]
                        + [gen._fmt(v, 4) for v in means])
    return header, rows


def gap_trend(records: list[dict], labels: str) -> dict | None:
    """The mean error gap per size for `labels`: at the smallest N, at its peak and at the largest N, and whether
    it falls at every size beyond the peak; None without two sizes."""
    ns, gaps = _mean_by_size(records, labels, "error_gap_percent")
    if len(ns) < 2:
        return None
    means = [float(np.mean(g)) for g in gaps]
    peak = int(np.argmax(means))
    return {"first": (ns[0], means[0]), "peak": (ns[peak], means[peak]), "last": (ns[-1], means[-1]),
            "falls_beyond_peak": peak < len(ns) - 1 and all(b < a for a, b in zip(means[peak:], means[peak + 1:]))}


def n_verdict(records: list[dict]) -> str:
    parts = []
    for labels in LABELS:
        t = gap_trend(records, labels)
        if t:
            (n0, g0), (np_, gp), (n1, g1) = t["first"], t["peak"], t["last"]
            trend = ("falls at every size beyond its peak, as the paper's" if t["falls_beyond_peak"] else
                     "does not fall at every size beyond its peak, unlike the paper's")
            parts.append(f"{labels}: error gap {g0:.1f} points at N = {n0}, peak {gp:.1f} at N = {np_}, {g1:.1f} at "
                         f"N = {n1} ({trend})")
    return "Figure 1: " + "; ".join(parts) if parts else "Figure 1: fewer than two training-set sizes measured"


def n_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """error-vs-n.png (Figure 1a and 1b: train and test error and their gap against N, mean and min-max over
    seeds) and error-vs-n.md."""
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    for labels, part in zip(LABELS, "ab"):
        series = {name: _mean_by_size(records, labels, key) for name, key in
                  (("train error", "train_error_percent"), ("test error", "test_error_percent"),
                   ("gap (test - train)", "error_gap_percent"))}
        panels.append({"series": series, "xscale": "log", "xlabel": "training examples N",
                       "ylabel": "classification error (%)", "title": f"Figure 1{part}: {labels}"})
    figure = series_figure(folder / "error-vs-n.png", panels,
                           f"Paper 001 Figure 1: classification error and its gap vs training-set size\n{scale}")
    parameters = next((r.get("parameters") for r in records if r.get("parameters")), None)
    text = ("# error-vs-n: paper 001 Figure 1 (classification error and its gap vs training-set size)\n\n"
            f"Ours: {scale}. Per size and seed (seeded subsets of the training split) one network on the true labels "
            "and one on uniformly random training labels, tested on random test labels; every network trains the "
            "same fixed number of epochs and is measured at its end"
            + (f"; {parameters} parameters" if parameters else "") + ". Means over seeds.\n\n"
            f"Paper 001 (CIFAR-10, N up to 50 000, about {PAPER_001_FIGURE1_PARAMETERS} parameters, 70 epochs, batch "
            "100): the gap between test and training classification error converges towards zero as N grows, on the "
            "true labels (Figure 1a) and on random labels (Figure 1b). The paper prints no numbers for this figure.\n\n"
            f"{n_verdict(records)}.\n\n" + markdown_table(*n_table(records)))
    md = folder / "error-vs-n.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "error-vs-n", n_records, n_table, n_render, n_cells,
    verdict=n_verdict))


# ---- error-vs-params (Figure 3) ----------------------------------------------------------------------

def params_grid(base: RunSpec, preset: str, seeds: list[int]) -> list[RunSpec]:
    spec, _ = gen.experiment_base(base, preset, protocol(preset, base.data.name))
    return [replace(spec, model=replace(spec.model, width=w), seed=seed)
            for seed in seeds for w in widths(preset)]


def params_cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    return params_grid(base, preset, seeds)


def params_records(ctx: Context) -> list[dict]:
    specs = params_grid(ctx.base, ctx.preset, ctx.seeds)
    gen.check_normalizable(ctx, specs[0])
    summaries = train_grid(ctx, specs, "error-vs-params")
    return [{"family": "width", "value": spec.model.width, "seed": spec.seed,
             "parameters": num_parameters(ctx.ws.skeleton(spec).net), **gen.measure_network(ctx, spec, summary)}
            for spec, summary in zip(specs, summaries)]


def _by_width(records: list[dict]) -> list[tuple[int, int, list[dict]]]:
    points = gen._measured(records)
    return [(w, next(r["parameters"] for r in points if r["value"] == w), [r for r in points if r["value"] == w])
            for w in sorted({r["value"] for r in points})]


def params_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["width", "parameters", "train size N", "seeds", "train err %", "test err %", "train loss", "test loss"]
    return header, [[w, p, rs[0]["train_size"], len(rs)]
                    + [gen._fmt(float(np.mean([r[k] for r in rs])), 4) for k in
                       ("train_error_percent", "test_error_percent", "train_loss", "test_loss")]
                    for w, p, rs in _by_width(records)]


def beyond_n(records: list[dict]) -> tuple[list[float], int] | None:
    """The mean test errors of the widths whose parameter count exceeds N (in order of size), and N; None if
    no width does."""
    rows = _by_width(records)
    if not rows:
        return None
    n = rows[0][2][0]["train_size"]
    errors = [float(np.mean([r["test_error_percent"] for r in rs])) for _, p, rs in rows if p > n]
    return (errors, n) if errors else None


def params_verdict(records: list[dict]) -> str:
    found = beyond_n(records)
    if found is None:
        return "Figure 3: no width has more parameters than training examples"
    errors, n = found
    rise = max(b - a for a, b in zip(errors, errors[1:])) if len(errors) > 1 else 0.0
    holds = all(b <= a for a, b in zip(errors, errors[1:]))
    return (f"Figure 3: beyond N = {n} parameters the test error goes {' -> '.join(f'{e:.1f}' for e in errors)} % "
            + ("(never increases, as the paper)" if holds else f"(rises by up to {rise:.1f} points; the paper: "
                                                               "does not increase)"))


def params_render(folder: Path, store: Store, records: list[dict], scale: str) -> list[Path]:
    """error-vs-params.png (Figure 3: train and test error against the parameter count, N marked) and
    error-vs-params.md."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = _by_width(records)
    xs = [p for _, p, _ in rows]
    series = {name: (xs, [[r[key] for r in rs] for _, _, rs in rows])
              for name, key in (("train error", "train_error_percent"), ("test error", "test_error_percent"))}
    n = rows[0][2][0]["train_size"] if rows else None
    figure = series_figure(folder / "error-vs-params.png",
                           [{"series": series, "xscale": "log", "xlabel": "number of parameters",
                             "ylabel": "classification error (%)", "title": f"fixed training set, N = {n}",
                             "vlines": {f"N = {n}": n} if n else {}}],
                           f"Paper 001 Figure 3: classification error vs number of parameters\n{scale}")
    text = ("# error-vs-params: paper 001 Figure 3 (classification error vs number of parameters)\n\n"
            f"Ours: {scale}. The network of `error-vs-n` at several widths on one training set, each trained the same "
            "fixed number of epochs from the default init and measured at its end; means over seeds.\n\n"
            "Paper 001 (CIFAR-10): the test error does not increase when the number of parameters grows beyond the "
            "size of the training set. The paper prints no numbers for this figure.\n\n"
            f"{params_verdict(records)}.\n\n" + markdown_table(*params_table(records)))
    md = folder / "error-vs-params.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "error-vs-params", params_records, params_table, params_render,
    params_cells, verdict=params_verdict))
