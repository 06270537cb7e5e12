"""Experiments: each paper artefact as a declarative grid of run specs (or a direct computation),
plus how to tabulate and draw its records.

An experiment computes summary records (plain JSON-able dicts, accuracies in percent) from a `Context`;
its records are kept in the store per set - one (base spec, preset, seeds) - so `badminima report OUT`
can redraw every set of every experiment present in OUT. A set's files go to OUT/report/NAME/SET_ID/.
"""
from __future__ import annotations

import fnmatch
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..report.tables import records_csv
from ..spec import RunSpec, digest, non_default
from ..store import Store


@dataclass
class Context:
    """What an experiment needs: the base spec, seeds, the preset's name and the workspace."""

    base: RunSpec
    seeds: list[int]
    preset: str
    ws: "Workspace"  # noqa: F821  (badminima.runs.Workspace)
    quiet: bool = False
    executor: object = None  # badminima.executors: where training phases run (None: in this process)
    provenance: dict | None = None  # badminima.provenance: recorded with the experiment's records

    @property
    def store(self) -> Store:
        return self.ws.store

    @property
    def scale(self) -> str:
        return describe_scale(self.base, self.preset)


@dataclass(frozen=True)
class Experiment:
    """An experiment; its description is its entry in BUILTIN (one place, read without importing it)."""

    name: str
    records: Callable[[Context], list[dict]]  # computes (training what it needs) the summary records
    table: Callable[[list[dict]], tuple[list[str], list[list]]]  # records -> (header, rows) for the terminal
    render: Callable[[Path, Store, list[dict], str], list[Path]]  # (report folder, store, records, scale) -> files
    cells: Callable[[RunSpec, list[int]], list[RunSpec]] | None = None  # the grid of runs, if it trains any
    scale: Callable[[Context], str] | None = None  # what the records were computed on, if no run spec says it
    default_seeds: tuple[int, ...] | None = None  # seeds when none are given (None: the spec's seed)
    verdict: Callable[[list[dict]], str] | None = None  # one line: does the paper's claim hold in these records?

    @property
    def description(self) -> str:
        return BUILTIN.get(self.name, ("", ""))[1]

    def grid(self, base: RunSpec, seeds: list[int], preset: str) -> list[RunSpec]:
        """The runs of the experiment for `preset` (cells that take a `preset` keyword get it: their grid differs
        between presets beyond the base spec); [base] for an experiment that trains no grid."""
        if self.cells is None:
            return [base]
        if "preset" in inspect.signature(self.cells).parameters:
            return self.cells(base, seeds, preset=preset)
        return self.cells(base, seeds)


# The built-in experiments: name -> (the module of this package that registers it, its description). Listing
# names (`badminima list`, `run --help`) reads only this table and imports no experiment code (nor torch); the
# module is imported when the experiment is run, estimated or reported. A new experiment is one entry here, and
# its module calls register_experiment(Experiment(name, ...)) with the same name (tests/test_registries.py checks
# that every entry resolves to its module).
BUILTIN = {
    "bad-minima": ("paper000.bad_minima",
        "paper 000: random vs adversarial (Algorithm 1) init x vanilla vs SOTA SGD; Table 2 style summary"),
    "curves": ("paper000.curves",
        "paper 000 Figures 2-3: train and test accuracy per epoch, min/mean/max over seeds"),
    "distances": ("paper000.distances",
        "paper 000 Table 1: distances between random/adversarial inits and the vanilla/SOTA solutions"),
    "error-vs-n": ("paper001.error_vs_size",
        "paper 001 Figure 1: train and test classification error and their gap vs training-set size, true and random "
        "labels, a 5-layer ConvNet trained a fixed number of epochs"),
    "error-vs-normalized-loss": ("paper001.fixed_schedule",
        "paper 001 Figure 14: test classification error vs normalized train cross-entropy (the loss-independence "
        "runs)"),
    "error-vs-params": ("paper001.error_vs_size",
        "paper 001 Figure 3: train and test classification error vs number of parameters at a fixed training set (the "
        "error-vs-n network at several widths)"),
    "fgsm": ("paper000.complexity",
        "paper 000 Figure 6: test accuracy under FGSM for a range of budgets"),
    "gap-vs-n": ("paper001.gap_vs_n",
        "paper 001 Figure 19: normalized and unnormalized train/test loss and their gap vs training-set size, on true "
        "and on random labels"),
    "heuristics": ("paper000.heuristics",
        "paper 000 Table 2: the 8 combinations of augmentation, l2 and momentum"),
    "implicit-bias": ("paper002.implicit_bias",
        "lecture 002: GD on under-determined least squares -> min-norm interpolant (+ null-space part of w_0); GD on "
        "separable data -> hard-margin SVM direction along w_hat ln t + w_tilde"),
    "init-std": ("paper001.init_std",
        "paper 001 Figure 6: test error vs the std of the normal init, every network at 0% training error and the "
        "same training loss (plain SGD; min/mean/max over seeds, Spearman rho, verdict)"),
    "l1-normalized-loss": ("paper001.fixed_schedule",
        "paper 001 Figure 9: test loss and error vs train loss of the layer-wise L1-normalized networks (norms "
        "divided by 100; the loss-independence runs)"),
    "local-minima": ("paper004.local_minima",
        "paper 004 Tables 1, 5-7: loss, gradient, Hessian extremes and ReLU activity at init and after GD from Lemma "
        "1, zero and large-bias inits"),
    "loss-independence": ("paper001.fixed_schedule",
        "paper 001 Figure 10: test vs train cross-entropy, unnormalized and normalized, of networks trained a fixed "
        "schedule to different training losses"),
    "norm-bias": ("paper004.norm_bias",
        "paper 004 section 3, A.5, one model: no weight decay vs weight decay vs norm-bias (squared and absolute "
        "forms) vs negative weight decay, mean ± standard error"),
    "norm-bias-table2": ("paper004.norm_bias_tables",
        "paper 004 Table 2 (non-normalized CIFAR-10): no weight decay vs weight decay vs norm-bias over ResNet-18, "
        "DenseNet-40, MobileNetV2"),
    "norm-bias-table3": ("paper004.norm_bias_tables",
        "paper 004 Table 3 (normalized CIFAR-10): no weight decay vs weight decay vs norm-bias over ResNet-18, "
        "DenseNet-40, MobileNetV2, ResNet-20 Fixup, MLP (4 layers)"),
    "norm-bias-table8": ("paper004.norm_bias_tables",
        "paper 004 Table 8 (normalized CIFAR-100): no weight decay vs weight decay vs norm-bias over ResNet-18, "
        "DenseNet-40, ResNet-20 Fixup"),
    "norm-vs-error": ("paper001.norm_vs_error",
        "paper 001 Figures 4 and 13: normalized test loss, test error and loss vs the product of layer Frobenius "
        "norms, per family (the networks of normalized-loss)"),
    "normalized-loss": ("paper001.generalization",
        "paper 001 Figure 2: test vs train cross-entropy of networks at the same train loss, unnormalized and "
        "layer-wise normalized, with least-squares lines"),
    "normalized-loss-bn": ("paper001.other_architectures",
        "paper 001 Figures 11-12: the normalized-loss family on the 5-layer batch-norm ConvNet of appendix L.2 (batch "
        "norm folded, then normalized)"),
    "normalized-loss-resnet": ("paper001.other_architectures",
        "paper 001 Figure 2c-d: test vs train cross-entropy of ResNet-56 networks, unnormalized and normalized by the "
        "output norm on one example"),
    "norms": ("paper000.complexity",
        "paper 000 Figure 5: Frobenius, path and spectral norms per setting"),
    "ntk-evolution": ("paper004.ntk_evolution",
        "paper 004 Figure 3: NTK norm, its correlation with the initial NTK and the parameter norm over training "
        "epochs (MLPs, ConvNet)"),
    "ntk-width": ("paper004.ntk_width",
        "paper 004 Figures 1, 6: empirical NTK change (relative, correlation) against width for MLPs, a ConvNet and "
        "WideResNets"),
    "output-histogram": ("paper001.output_histogram",
        "paper 001 Figure 20: histogram of the most likely class's output of the layer-wise normalized network on the "
        "training set"),
    "rank": ("paper004.rank",
        "paper 004 Tables 4, 9, 10, Figure 2: RankMin / RankMax fine-tuning of a naturally trained model; effective "
        "ranks, clean and PGD accuracy"),
    "rank-adversarial": ("paper004.rank",
        "paper 004 Tables 4, 10: RankMin / RankMax with 7-step PGD adversarial training"),
    "replication": ("paper000.replication",
        "paper 000 Figure 4: test accuracy against the replication factor R"),
    "span-theorem": ("paper002.span_theorem",
        "lecture 002: algorithms whose iterates stay in the span of the data (GD, SGD, heavy ball, Nesterov) reach "
        "the min-norm interpolant A^+ b from zero (A^+ b + P_null w0 from w0); Adam does not"),
    "toy": ("paper000.toy",
        "paper 000 Figure 1: 2-D decision boundaries in four settings (fixed toy spec)"),
}

EXPERIMENTS: dict[str, Experiment] = {}  # the experiments whose modules this process has imported


def register_experiment(exp: Experiment) -> Experiment:
    EXPERIMENTS[exp.name] = exp
    return exp


def list_experiments(pattern: str = "*") -> list[str]:
    return sorted(n for n in {*BUILTIN, *EXPERIMENTS} if fnmatch.fnmatch(n, pattern))


def experiment_descriptions() -> dict[str, str]:
    """name -> description of every experiment, imported or not (imports no experiment module)."""
    return {name: BUILTIN[name][1] for name in list_experiments()}


def get_experiment(name: str) -> Experiment:
    """The experiment `name`, its module imported on first use."""
    if name not in EXPERIMENTS and name in BUILTIN:
        importlib.import_module(f"{__name__}.{BUILTIN[name][0]}")
    if name not in EXPERIMENTS:
        raise BadInput(f"unknown experiment {name!r} (known: {', '.join(list_experiments())})")
    return EXPERIMENTS[name]


def train_grid(ctx: Context, specs: list[RunSpec], label: str) -> list[dict]:
    """Execute every run of a grid (skipping finished phases) and return their summary records."""
    from ..executors import InProcess
    from ..executors.scheduler import execute
    from ..runs import revalidate

    revalidate(specs, ctx.ws)  # stale phases (changed model code or data, misplaced checkpoints) are recomputed
    return execute(specs, ctx.ws, ctx.executor or InProcess(), label)


def describe_scale(spec: RunSpec, preset: str) -> str:
    """What a result was computed on, so that no one mistakes a CPU-scale result for a paper-scale one."""
    what = f"{spec.data.name} / {spec.model.name}"
    if preset == "paper":
        return f"{what}, paper preset (the paper's protocol)"
    return f"{what}, cpu preset (scaled down; not paper scale)"


SHOWN = ("seed", "data.name", "data.train_size", "model.name", "model.width", "model.depth")  # in a set's label


def experiment_set(exp: Experiment, ctx: Context) -> tuple[str, dict]:
    """The set a run of `exp` belongs to: its id (a digest of the base spec, preset and seeds) and its label
    (dataset, model, width, depth, training-set size, preset, seeds, and the spec fields changed from the preset)."""
    from ..presets import base_spec

    spec = exp.grid(ctx.base, ctx.seeds, ctx.preset)[0]
    seeds = sorted(ctx.seeds)
    set_id = digest({"base": non_default(ctx.base), "preset": ctx.preset, "seeds": seeds})
    changed = _flatten(non_default(ctx.base, base_spec(ctx.preset, ctx.base.data.name)))
    label = {"dataset": spec.data.name, "train_size": spec.data.train_size, "model": spec.model.name,
             "width": spec.model.width, "depth": spec.model.depth, "preset": ctx.preset, "seeds": seeds,
             "changed": {k: v for k, v in changed.items() if k not in SHOWN}}
    return set_id, label


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        out |= _flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return out


def set_folder(store: Store, name: str, set_id: str) -> Path:
    return store.dir / "report" / name / set_id


def render_set(exp: Experiment, store: Store, set_id: str, records: list[dict], scale: str) -> list[Path]:
    """Write a set's report files (the experiment's Markdown and figures, and its records as CSV)."""
    folder = set_folder(store, exp.name, set_id)
    return exp.render(folder, store, records, scale) + [records_csv(folder / f"{exp.name}.csv", records)]


def run_experiment(exp: Experiment, ctx: Context) -> tuple[dict, list[Path]]:
    """Compute the experiment's records, keep them in the store as a set, and write the set's report files.
    Returns the set (as Store.experiments() lists it) and the files."""
    records = exp.records(ctx)
    scale = exp.scale(ctx) if exp.scale else describe_scale(exp.grid(ctx.base, ctx.seeds, ctx.preset)[0], ctx.preset)
    set_id, label = experiment_set(exp, ctx)
    ctx.store.record_experiment(exp.name, set_id, label, scale, records, ctx.provenance)
    entry = {"name": exp.name, "set_id": set_id, "label": label, "scale": scale, "records": records,
             "provenance": ctx.provenance}
    return entry, render_set(exp, ctx.store, set_id, records, scale)
