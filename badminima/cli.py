"""The `badminima` command: parses, then calls the library.

  badminima run EXPERIMENT [--preset cpu|paper] [--config FILE.toml] [flags] [--set SECTION.FIELD=VALUE]
                [--seeds 0,1] [--out DIR] [--json]
  badminima estimate EXPERIMENT [the flags of run] [--steps N]
  badminima report OUT
  badminima measure RUN [--measure NAME ...] [--out DIR]
  badminima runs OUT
  badminima export OUT [--format csv|parquet] [--to DIR]
  badminima list [datasets|models|inits|recipes|experiments|presets]

Specs are built in stages (launch.py), as in timm: the preset's base spec for the dataset, then a TOML
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
from pathlib import Path

from . import __version__, jsonsafe
from .errors import BadInput, PhaseFailed
from .launch import AUTO_WORKERS_MAX, parse_set, pick_device, resolve_base, run_records
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
    from .measures.registry import MEASURES

    return ("measures (* the default set; 'all' for every one):\n"
            + _name_lines([(("* " if m.default else "  ") + n, m.description) for n, m in MEASURES.items()]))


def _name_lines(rows: list[tuple[str, str]]) -> str:
    width = max(len(n) for n, _ in rows)
    return "".join(f"  {n.ljust(width)}  {text}\n" for n, text in rows)


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
    from .measuring import measure_command

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
