"""The `badminima` command: parses, then calls the library.

  badminima run EXPERIMENT [--preset cpu|paper] [--config FILE.toml] [flags] [--set SECTION.FIELD=VALUE]
                [--seeds 0,1] [--out DIR] [--json]
  badminima estimate EXPERIMENT [the flags of run] [--steps N]
  badminima report OUT
  badminima measure RUN [--measure NAME ...] [--out DIR]
  badminima runs OUT
  badminima export OUT [--format csv|parquet] [--to DIR]
  badminima list [datasets|models|inits|recipes|experiments|presets]

Specs are built in stages, as in timm: the preset's base spec for the dataset, then a TOML
file, then flags, then `--set` (any spec field). Bad input prints one line `badminima: error: ...`
and exits with status 2 before anything is written (preflight.py bounds sizes, tries the model, checks
--out and --address); a fault of the file system or database met later is one such line too
(environment_fault).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
import tomllib
from pathlib import Path

from . import __version__, jsonsafe
from .errors import BadInput, PhaseFailed
from .provenance import provenance

DEFAULT_OUT = "badminima-out"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and help that may list a registry (`more_help`, called only
    when help is printed, so that parsing imports nothing heavy)."""

    def __init__(self, *args, more_help=None, **kwargs):
        super().__init__(*args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.more_help = more_help

    def error(self, message: str):  # one line, status 2 (argparse would print the usage too)
        raise BadInput(message)

    def format_help(self) -> str:
        if self.more_help is not None:
            self.epilog = self.more_help()
        return super().format_help()


def build_parser() -> Parser:
    parser = Parser(prog="badminima", description="Experiments on what deep-learning theory claims about "
                    "optimization and generalization.")
    parser.add_argument("--version", action="version", version=f"badminima {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="run an experiment (skips what is done, resumes what was interrupted)",
                         description="Run an experiment: train the runs it needs (skipping finished phases, "
                         "resuming interrupted ones), record its summary and write its report files.",
                         more_help=experiments_help)
    run.add_argument("experiment", help="the experiment's name (listed below)")
    run.add_argument("--preset", default="cpu", help="cpu (default: minutes on a CPU) or paper (paper 000's protocol)")
    run.add_argument("--config", help="TOML spec file: tables [data], [model], [init], [init.pretrain], [recipe]")
    run.add_argument("--dataset", help="a dataset's name (badminima list datasets), an installed plug-in, "
                     "or your own loader as package.module:loader")
    run.add_argument("--data-dir", help="directory holding the dataset files (cifar10, cifar100, cinic10, restricted-imagenet)")
    run.add_argument("--model", help="a model's name (badminima list models), an installed plug-in, "
                     "or your own factory as package.module:factory")
    run.add_argument("--width", type=int, help="the model's width (hidden units or channels; default: the model's)")
    run.add_argument("--depth", type=int, help="the model's depth (hidden or conv layers; default: the model's)")
    run.add_argument("--train-size", type=int, help="use a seeded subset of this many training examples")
    run.add_argument("--replication-factor", "-R", type=int, help="Algorithm 1's R: replicas per training input")
    run.add_argument("--zeroed-percent", "-N", type=float, help="Algorithm 1's N: percent of pixels zeroed per replica")
    run.add_argument("--zero-mode", choices=["pixels", "values"],
                     help="Algorithm 1's zeroing: all channels of a pixel (pixels) or single entries (values)")
    run.add_argument("--random-label-fraction", type=float,
                     help="Algorithm 1: fraction of the replicas' labels drawn at random (0 to 1)")
    run.add_argument("--epochs", type=int, help="epoch cap of the true-label phase")
    run.add_argument("--pretrain-epochs", type=int, help="epoch cap of the pretraining phase")
    run.add_argument("--lr", type=float, help="initial learning rate of the true-label phase")
    run.add_argument("--batch-size", type=int, help="batch size of both the pretraining and the true-label phase")
    run.add_argument("--stop-at-100", action=argparse.BooleanOptionalAction, default=None,
                     help="end the true-label phase at the first epoch with 100%% un-augmented training accuracy "
                          "(default: the preset's rule; both presets train the whole schedule, as paper 000 does)")
    run.add_argument("--set", action="append", type=parse_set, default=[], metavar="SECTION.FIELD=VALUE",
                     help="set any spec field, after the preset, --config and the flags above, e.g. "
                     "recipe.momentum=0.5, init.pretrain.epochs=20, data.options.n=100 (the value is read as "
                     "TOML: numbers, true/false, [lists], \"strings\" or bare words; none for an empty field); "
                     "repeat for more fields")
    run.add_argument("--seeds", help="comma-separated seeds or ranges, e.g. 0,1,2 or 0-4 (default: the experiment's "
                                     "default, 0-2 for bad-minima and the experiments sharing its runs, else the spec's seed)")
    run.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    run.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    run.add_argument("--workers", type=int, default=None,
                     help="run phases in a local pool of this many processes (default: one per CPU core, at most "
                          f"{AUTO_WORKERS_MAX}, on the CPU device; 1 on a GPU); 1 runs them in this process")
    run.add_argument("--threads", type=int, default=1, help="torch threads per pool or Ray worker (default 1)")
    run.add_argument("--executor", choices=["inprocess", "pool", "ray"], default="inprocess",
                     help="where phases run: this process (default), a local pool (--workers), a Ray cluster")
    run.add_argument("--address", help="HOST:PORT of the Ray cluster (with --executor ray)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON records instead of a table")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--track", choices=["mlflow"], help="log every phase (spec, per-epoch metrics, results) to "
                                                        "MLflow (pip install 'badminima[mlflow]')")
    run.add_argument("--tracking-uri", help="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000 "
                                            "(default: MLflow's, from MLFLOW_TRACKING_URI)")
    run.add_argument("--precision", choices=["fp32", "tf32", "bf16"],
                     help="fp32 (default, the paper's: IEEE float32), tf32 (TF32 convolutions/matmuls on CUDA) or "
                          "bf16 (autocast); recorded in the run's id")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="NHWC memory layout of the model and batches (recorded in the run's id)")
    run.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                     help="torch.compile the model for the training steps (recorded in the run's id)")

    est = sub.add_parser("estimate", parents=[run], add_help=False, conflict_handler="resolve",
                         help="measure a few steps on this device and print the device-hours of an experiment's "
                              "whole grid (the flags of `run`)")
    est.add_argument("--steps", type=int, default=5, help="timed training steps per distinct phase setting (default 5)")

    rep = sub.add_parser("report", help="redraw every experiment in an output directory into report/index.html")
    rep.add_argument("out", help="the output directory (as given to run --out)")

    mea = sub.add_parser("measure", help="compute measures (norms, margins, attacks, Hessian, NTK, ...) of a stored run's final model",
                         description="Compute measures of a stored run's final model, keep them in the store "
                         "and print them in full.", more_help=measures_help)
    mea.add_argument("run", help="a run id (or a unique prefix of one) from the output directory")
    mea.add_argument("--measure", action="extend", nargs="+", metavar="NAME",
                     help="measures to compute (default: the fast set; 'all' for every one; an unknown name lists them)")
    mea.add_argument("--out", default=DEFAULT_OUT, help=f"output directory holding the run (default: {DEFAULT_OUT})")
    mea.add_argument("--data-dir", help="directory holding the dataset files, as for `run`")
    mea.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    mea.add_argument("--force", action="store_true", help="recompute measures already stored")
    mea.add_argument("--json", action="store_true", help="print the values as JSON")
    mea.add_argument("--quiet", action="store_true", help="no progress lines")

    lst = sub.add_parser("list", help="show what can be named")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", "datasets", "models", "inits", "recipes", "experiments", "presets"],
                     help="which names to show (default: all)")
    add_results_commands(sub)
    return parser


def add_results_commands(sub) -> None:
    """`runs` and `export`: what an output directory holds, as a table or as files."""
    runs = sub.add_parser("runs", help="list the runs stored in an output directory: ids, specs, status, accuracies",
                          description="One line per run: its id, status, accuracies (percent) and spec (the "
                          "fields that differ from the defaults).")
    runs.add_argument("out", help="the output directory (as given to run --out)")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON records (every spec field)")
    exp = sub.add_parser("export", help="write an output directory's runs, phases, epochs, measures and experiment "
                         "records as CSV or Parquet files",
                         description="Write the tables of badminima.load(OUT) (accuracies in percent, one row per "
                         "item, spec fields as columns) as runs, phases, epochs, measures and experiments files.")
    exp.add_argument("out", help="the output directory (as given to run --out)")
    exp.add_argument("--format", choices=["csv", "parquet"], default="csv",
                     help="file format (default csv; parquet needs pyarrow: pip install 'badminima[parquet]')")
    exp.add_argument("--to", help="folder to write the files into (default: OUT/export)")


def experiments_help() -> str:
    from .experiments import experiment_descriptions

    return "experiments:\n" + _name_lines(list(experiment_descriptions().items()))


def measures_help() -> str:
    from .measures.command import MEASURES

    return ("measures (* the default set; 'all' for every one):\n"
            + _name_lines([(("* " if m.default else "  ") + n, m.description) for n, m in MEASURES.items()]))


def _name_lines(rows: list[tuple[str, str]]) -> str:
    width = max(len(n) for n, _ in rows)
    return "".join(f"  {n.ljust(width)}  {text}\n" for n, text in rows)


def parse_set(text: str) -> tuple[tuple[str, ...], object]:
    """`section.field=value` -> (("section", "field"), value). The value is read as a TOML value
    (`0.5`, `true`, `[150, 250]`, `"text"`); what TOML cannot read is taken as a bare string
    (`data.name=digits`); `none` stands for an empty field (None) where the field allows one."""
    path, sep, raw = text.partition("=")
    keys = tuple(k.strip() for k in path.split("."))
    if not sep or not all(keys):
        raise BadInput(f"--set: cannot read {text!r} (write SECTION.FIELD=VALUE, e.g. recipe.momentum=0.5)")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return keys, value


def set_overrides(pairs: list[tuple[tuple[str, ...], object]]) -> dict:
    """The nested spec overrides of `--set` pairs (a bare `none` becomes None where the field allows it)."""
    from .spec import allows_none

    out: dict = {}
    for keys, value in pairs:
        if value == "none" and allows_none(keys):
            value = None
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise BadInput(f"--set: {'.'.join(keys[:-1])} is not a table of fields")
        node[keys[-1]] = value
    return out


MAX_SEEDS = 1000  # each seed is a whole grid of training runs; more is a typo, not a plan


def parse_seeds(text: str) -> list[int]:
    """Seeds from `0,1,2` or ranges `0-4`; BadInput on a malformed list, a repeated or negative seed, or more
    than MAX_SEEDS (counted before any range is expanded)."""
    bounds: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                bounds.append((int(lo), int(hi)))
            else:
                bounds.append((int(part), int(part)))
    except ValueError:
        raise BadInput(f"--seeds: cannot read {text!r} (write e.g. 0,1,2 or 0-4)") from None
    count = sum(max(hi - lo + 1, 0) for lo, hi in bounds)
    if count > MAX_SEEDS:
        raise BadInput(f"--seeds: {count:,} seeds asked for, at most {MAX_SEEDS} (each seed is a whole grid of runs)")
    seeds = [s for lo, hi in bounds for s in range(lo, hi + 1)]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise BadInput(f"--seeds: need distinct non-negative integers, got {text!r}")
    return seeds


def flag_overrides(args) -> dict:
    """The nested spec fields that flags set (None: not given)."""
    pairs = {
        ("data", "name"): args.dataset, ("data", "train_size"): args.train_size,
        ("model", "name"): args.model, ("model", "width"): args.width, ("model", "depth"): args.depth,
        ("init", "replication_factor"): args.replication_factor, ("init", "zeroed_percent"): args.zeroed_percent,
        ("init", "zero_mode"): args.zero_mode, ("init", "random_label_fraction"): args.random_label_fraction,
        ("recipe", "epochs"): args.epochs, ("recipe", "lr"): args.lr, ("recipe", "batch_size"): args.batch_size,
        ("recipe", "stop_at_100"): args.stop_at_100,
        ("init", "pretrain", "batch_size"): args.batch_size, ("init", "pretrain", "epochs"): args.pretrain_epochs,
        ("compute", "precision"): args.precision, ("compute", "channels_last"): args.channels_last,
        ("compute", "compile"): args.compile,
    }
    out: dict = {}
    for path, value in pairs.items():
        if value is not None:
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    return out


def resolve_base(args):
    from .presets import base_spec
    from .spec import load_toml, merge

    config = load_toml(args.config) if args.config else {}
    late = set_overrides(getattr(args, "set", []))
    dataset = None
    for stage in (config, {"data": {"name": args.dataset}}, late):  # the last stage that names the dataset
        table = stage.get("data", {})
        if isinstance(table, dict) and isinstance(table.get("name"), str):
            dataset = table["name"]
    spec = base_spec(args.preset, dataset)
    spec = merge(spec, config)
    return merge(merge(spec, flag_overrides(args)), late)


AUTO_WORKERS_MAX = 8


def auto_workers(device: str, executor: str, trains: object) -> int:
    """The default number of local pool workers: one per core (at most AUTO_WORKERS_MAX) on the CPU, each
    with one torch thread, so that a run's numbers do not depend on the machine's core count; one on a GPU
    and for experiments that train no grid of runs."""
    import os

    if executor != "inprocess" or device != "cpu" or not trains:
        return 1
    return max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX))


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        raise BadInput(f"device {name!r} is not available (use auto, cpu or cuda)")
    return name


MAX_THREADS = 1024


def run_records(args) -> tuple[dict, list[Path]]:
    """What `run` does (and badminima.run): check every input, train, record the experiment and write
    its report files; returns (the experiment set: name, set_id, label, scale, records, provenance; its
    report files)."""
    from .executors import make_executor
    from .experiments import Context, get_experiment, run_experiment
    from .preflight import check_listening, check_memory, check_output_dir, dry_forward, parameter_count
    from .runs import Workspace, check
    from .store import Store

    experiment = get_experiment(args.experiment)
    base = check(resolve_base(args))
    device = pick_device(args.device)
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    else:
        seeds = list(experiment.default_seeds) if experiment.default_seeds else [base.seed]
    workers = args.workers if args.workers is not None else auto_workers(device, args.executor, experiment.cells)
    if not 1 <= args.threads <= MAX_THREADS:
        raise BadInput(f"--threads must lie in [1, {MAX_THREADS}], got {args.threads}")
    if workers < 1:
        raise BadInput(f"--workers must be at least 1, got {workers}")
    if args.address is not None and args.executor != "ray":
        raise BadInput("--address is the Ray cluster's: use it with --executor ray")
    ws = Workspace(store=None, data_dir=args.data_dir, device=device, quiet=args.quiet)
    specs = [check(s) for s in experiment.grid(base, seeds, args.preset)]
    checked = set()
    pool_workers = workers if args.executor != "ray" else 1
    for spec in specs:  # load every dataset, bound the memory and try every model once, before anything is written
        key = (spec.data, spec.model, spec.init.replication_factor, spec.recipe.batch_size, spec.init.pretrain.batch_size)
        if key not in checked:
            checked.add(key)
            data, parameters = ws.stored(spec), parameter_count(ws, spec)
            check_memory(spec, data, parameters, None, pool_workers)  # before a real model is built
            check_memory(spec, data, parameters, dry_forward(ws, spec), pool_workers)
    check_output_dir(args.out)
    if args.executor == "ray" and args.address:
        check_listening(args.address)
    if device == "cuda":  # the pool's workers share the GPU: each checks its 1/workers share (train/memory.py)
        import os

        from .train.memory import SHARE_ENV
        os.environ[SHARE_ENV] = str(workers)
    from .tracking import open_tracker
    ws.tracker = open_tracker(args.track, args.tracking_uri, args.experiment)
    executor = make_executor(args.executor, workers, args.address, args.threads)
    try:
        ws.store = Store(args.out)
    except BaseException:
        executor.close()
        raise
    ctx = Context(base, seeds, args.preset, ws, args.quiet, executor, provenance(device, getattr(args, "argv", None)))
    try:
        entry, paths = run_experiment(experiment, ctx)
    finally:
        executor.close()
        ws.store.close()
    return entry, paths


def cmd_run(args) -> int:
    from .experiments import get_experiment

    started = time.perf_counter()
    entry, paths = run_records(args)
    if args.json:  # {"name", "set_id", "label", "scale", "records", "provenance"}; accuracies in percent
        print(jsonsafe.dumps(entry, indent=2))
    else:
        from .report.tables import set_title, text_table
        experiment = get_experiment(args.experiment)
        print(f"{args.experiment}: {entry['scale']}\nset {entry['set_id']}: {set_title(entry['label'])}")
        print(text_table(*experiment.table(entry["records"])), end="")
        if experiment.verdict:
            print(experiment.verdict(entry["records"]))
        print(f"wall time {time.perf_counter() - started:.1f} s; report: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_report(args) -> int:
    from .report.html import build_report
    from .store.db import FILENAME

    if not (Path(args.out) / FILENAME).is_file():
        raise BadInput(f"no badminima results in {args.out} (no {FILENAME})")
    print(build_report(args.out, provenance(None, args.argv)))
    return 0


def cmd_measure(args) -> int:
    from .measures.command import measure_command

    device = pick_device(args.device)
    return measure_command(args.run, args.measure, args.out, args.data_dir, device, args.json, args.force, args.quiet,
                           provenance(device, args.argv))


def cmd_estimate(args) -> int:
    from .estimate import estimate_command

    return estimate_command(args, resolve_base(args), pick_device(args.device))


def cmd_runs(args) -> int:
    from .api import load, run_lines

    runs = load(args.out).runs
    if args.json:
        records = runs.astype(object).where(runs.notna(), None).to_dict(orient="records")
        print(json.dumps(records, indent=2, default=str))  # full precision (pandas' to_json rounds)
    else:
        print(run_lines(runs), end="")
    return 0


def cmd_export(args) -> int:
    from .api import export

    for path in export(args.out, args.format, args.to):
        print(path)
    return 0


def _registry_rows(kind: str, registry: dict) -> list[tuple[str, str]]:
    """A registry's names and descriptions, then its installed plug-ins (read from metadata, not imported)."""
    from .plugins import entry_points

    rows = [(n, e.description) for n, e in sorted(registry.items())]
    return rows + [(n, f"plug-in from {dist}: {ref}") for n, (ref, dist) in sorted(entry_points(kind).items())
                   if n not in registry]


def list_rows(section: str) -> list[tuple[str, str]]:
    """(name, description) of every name in a section of `badminima list`; imports only that section's registry."""
    if section == "datasets":
        from .data import DATASETS
        return _registry_rows("dataset", DATASETS)
    if section == "models":
        from .models import MODELS
        return _registry_rows("model", MODELS)
    if section == "inits":
        from .inits import init_descriptions
        return list(init_descriptions().items())
    if section == "recipes":
        from .spec import RECIPES
        return [(n, "SGD with " + (" + ".join(h for h, on in zip(("augmentation", "l2", "momentum"), flags) if on)
                                   or "no augmentation, l2 or momentum")) for n, flags in RECIPES.items()]
    if section == "experiments":
        from .experiments import experiment_descriptions
        return list(experiment_descriptions().items())
    return [("cpu", "scaled down for a 2-core CPU and built-in data (default)"),
            ("paper", "paper 000's protocol: batch 128, lr 0.1/0.01/0.001, 350 (CIFAR) or 300 epochs")]


def cmd_list(args) -> int:
    for name in ("datasets", "models", "inits", "recipes", "experiments", "presets"):
        if args.what in ("all", name):
            print(f"{name}:")
            print(_name_lines(list_rows(name)), end="")
    return 0


def environment_fault(exc: BaseException) -> str | None:
    """One line for a fault of the file system or the database (a full disk, a read-only or vanished output
    directory), found in `exc` or what caused it (a worker's error arrives wrapped); None for anything else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlite3.Error):
            return f"results database: {exc}"
        if isinstance(exc, OSError):
            return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        exc = exc.__cause__  # a worker's error wrapped by the scheduler (raise ... from exc)
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = sys.argv[1:] if argv is None else list(argv)  # the command line, for the provenance
        return {"run": cmd_run, "report": cmd_report, "measure": cmd_measure, "list": cmd_list, "runs": cmd_runs,
                "export": cmd_export, "estimate": cmd_estimate}[args.command](args)
    except BadInput as exc:
        print(f"badminima: error: {exc}", file=sys.stderr)
        return 2
    except PhaseFailed as exc:
        print(f"badminima: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        fault = environment_fault(exc)
        if fault is None:
            raise
        print(f"badminima: error: {fault}; finished epochs are kept: re-run once this is fixed", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("badminima: interrupted; finished epochs are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
