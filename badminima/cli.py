"""The `badminima` command: parses, then calls the library.

  badminima run EXPERIMENT [--preset cpu|paper] [--config FILE.toml] [flags] [--seeds 0,1] [--out DIR] [--json]
  badminima report OUT
  badminima list [datasets|models|inits|recipes|experiments|presets]

Specs are built in two stages, as in timm: the preset's base spec for the dataset, then a TOML
file, then flags. Bad input prints one line `badminima: error: ...` and exits with status 2
before anything is written (preflight.py bounds sizes, tries the model, checks --out and --address);
a fault of the file system or database met later is one such line too (environment_fault).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

from .errors import BadInput

DEFAULT_OUT = "badminima-out"


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2 (argparse would print the usage too)
        raise BadInput(message)


def build_parser() -> Parser:
    parser = Parser(prog="badminima", description="Experiments on what deep-learning theory claims about "
                    "optimization and generalization.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="run an experiment (skips what is done, resumes what was interrupted)")
    run.add_argument("experiment")
    run.add_argument("--preset", default="cpu", help="cpu (default: minutes on a CPU) or paper (paper 000's protocol)")
    run.add_argument("--config", help="TOML spec file: tables [data], [model], [init], [init.pretrain], [recipe]")
    run.add_argument("--dataset")
    run.add_argument("--data-dir", help="directory holding the dataset files (cifar10, cifar100, cinic10, restricted-imagenet)")
    run.add_argument("--model")
    run.add_argument("--width", type=int)
    run.add_argument("--depth", type=int)
    run.add_argument("--train-size", type=int, help="use a seeded subset of this many training examples")
    run.add_argument("--replication-factor", "-R", type=int, help="Algorithm 1's R: replicas per training input")
    run.add_argument("--zeroed-percent", "-N", type=float, help="Algorithm 1's N: percent of pixels zeroed per replica")
    run.add_argument("--zero-mode", choices=["pixels", "values"])
    run.add_argument("--random-label-fraction", type=float)
    run.add_argument("--epochs", type=int, help="epoch cap of the true-label phase")
    run.add_argument("--pretrain-epochs", type=int, help="epoch cap of the pretraining phase")
    run.add_argument("--lr", type=float, help="initial learning rate of the true-label phase")
    run.add_argument("--batch-size", type=int)
    run.add_argument("--seeds", help="comma-separated seeds or ranges, e.g. 0,1,2 or 0-4 (default: the spec's seed, 0)")
    run.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    run.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    run.add_argument("--workers", type=int, default=1, help="run phases in a local pool of this many processes")
    run.add_argument("--threads", type=int, default=1, help="torch threads per pool or Ray worker (default 1)")
    run.add_argument("--executor", choices=["inprocess", "pool", "ray"], default="inprocess",
                     help="where phases run: this process (default), a local pool (--workers), a Ray cluster")
    run.add_argument("--address", help="HOST:PORT of the Ray cluster (with --executor ray)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON records instead of a table")
    run.add_argument("--quiet", action="store_true", help="no progress lines")

    rep = sub.add_parser("report", help="redraw every experiment in an output directory into report/index.html")
    rep.add_argument("out")

    mea = sub.add_parser("measure", help="compute measures (norms, margins, attacks, Hessian, NTK, ...) of a stored run's final model")
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
                     choices=["all", "datasets", "models", "inits", "recipes", "experiments", "presets"])
    return parser


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
        ("init", "pretrain", "batch_size"): args.batch_size, ("init", "pretrain", "epochs"): args.pretrain_epochs,
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
    data_table = config.get("data", {})
    dataset = args.dataset or (data_table.get("name") if isinstance(data_table, dict) else None)
    spec = base_spec(args.preset, dataset)
    spec = merge(spec, config)
    return merge(spec, flag_overrides(args))


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        raise BadInput(f"device {name!r} is not available (use auto, cpu or cuda)")
    return name


MAX_THREADS = 1024


def cmd_run(args) -> int:
    from .executors import make_executor
    from .experiments import Context, get_experiment, run_experiment
    from .preflight import check_listening, check_memory, check_output_dir, dry_forward, parameter_count
    from .runs import Workspace, check
    from .store import Store

    experiment = get_experiment(args.experiment)
    base = check(resolve_base(args))
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [base.seed]
    device = pick_device(args.device)
    if not 1 <= args.threads <= MAX_THREADS:
        raise BadInput(f"--threads must lie in [1, {MAX_THREADS}], got {args.threads}")
    if args.workers < 1:
        raise BadInput(f"--workers must be at least 1, got {args.workers}")
    if args.address is not None and args.executor != "ray":
        raise BadInput("--address is the Ray cluster's: use it with --executor ray")
    ws = Workspace(store=None, data_dir=args.data_dir, device=device, quiet=args.quiet)
    specs = [check(s) for s in experiment.cells(base, seeds)] if experiment.cells else [base]
    workers = args.workers if args.executor != "ray" else 1
    checked = set()
    for spec in specs:  # load every dataset, bound the memory and try every model once, before anything is written
        key = (spec.data, spec.model, spec.init.replication_factor, spec.recipe.batch_size, spec.init.pretrain.batch_size)
        if key not in checked:
            checked.add(key)
            data, parameters = ws.dataset(spec), parameter_count(ws, spec)
            check_memory(spec, data, parameters, None, workers)  # before a real model is built
            check_memory(spec, data, parameters, dry_forward(ws, spec), workers)
    check_output_dir(args.out)
    if args.executor == "ray" and args.address:
        check_listening(args.address)
    executor = make_executor(args.executor, args.workers, args.address, args.threads)
    try:
        ws.store = Store(args.out)
    except BaseException:
        executor.close()
        raise
    started = time.perf_counter()
    ctx = Context(base, seeds, args.preset, ws, args.quiet, executor)
    try:
        records, paths, scale = run_experiment(experiment, ctx)
    finally:
        executor.close()
        ws.store.close()
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        from .report.tables import text_table
        print(f"{args.experiment}: {scale}")
        print(text_table(*experiment.table(records)), end="")
        print(f"wall time {time.perf_counter() - started:.1f} s; report: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_report(args) -> int:
    from .report.html import build_report
    from .store.db import FILENAME

    if not (Path(args.out) / FILENAME).is_file():
        raise BadInput(f"no badminima results in {args.out} (no {FILENAME})")
    print(build_report(args.out))
    return 0


def cmd_measure(args) -> int:
    from .measures.command import measure_command

    return measure_command(args.run, args.measure, args.out, args.data_dir, pick_device(args.device), args.json,
                           args.force, args.quiet)


def cmd_list(args) -> int:
    from .data import DATASETS
    from .experiments import EXPERIMENTS
    from .inits import INITS
    from .models import MODELS
    from .presets import PRESETS
    from .spec import RECIPES

    sections = {
        "datasets": [(n, e.description) for n, e in sorted(DATASETS.items())],
        "models": [(n, e.description) for n, e in sorted(MODELS.items())],
        "inits": [(n, e.description) for n, e in sorted(INITS.items())],
        "recipes": [(n, "SGD with " + (" + ".join(h for h, on in zip(("augmentation", "l2", "momentum"), flags) if on)
                                        or "no augmentation, l2 or momentum")) for n, flags in RECIPES.items()],
        "experiments": [(n, e.description) for n, e in sorted(EXPERIMENTS.items())],
        "presets": [("cpu", "scaled down for a 2-core CPU and built-in data (default)"),
                    ("paper", "paper 000's protocol: batch 128, lr 0.1/0.01/0.001, 350 (CIFAR) or 300 epochs")],
    }
    for name, rows in sections.items():
        if args.what in ("all", name):
            print(f"{name}:")
            width = max(len(n) for n, _ in rows)
            for n, text in rows:
                print(f"  {n.ljust(width)}  {text}")
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
        return {"run": cmd_run, "report": cmd_report, "measure": cmd_measure, "list": cmd_list}[args.command](args)
    except BadInput as exc:
        print(f"badminima: error: {exc}", file=sys.stderr)
        return 2
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
