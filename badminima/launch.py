"""From parsed arguments to a finished experiment, for the CLI's `run` and `estimate` and for `badminima.run`
(api.py): the spec built in stages (the preset's base spec for the dataset, a TOML file, flags, then
`--set`, as timm's configs), the seeds, the device and the number of workers, the checks made before
anything is written (preflight.py), then the run. Its heavy imports stay inside the functions, so that
`badminima list` and `--help` import no torch (tests/test_registries.py)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import BadInput
from .provenance import provenance


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
