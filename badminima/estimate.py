"""`badminima estimate EXPERIMENT [the flags of run]`: the device-hours of an experiment's whole grid.

It measures, on this device and as the spec says to compute (precision, channels_last, compile), the
training loop itself (`train_phase`: a warm-up step, which also compiles, then `steps` timed steps), the
evaluation (`evaluate`) and the per-epoch checkpoint, on synthetic inputs of the dataset's shape (random
uint8 pixels for image files, as the training path stores them; random labels), so no dataset file is
read. Step costs do not depend on the pixel values (no data-dependent control flow in these models).

Then it projects every distinct phase of the grid once (phases shared by runs, like one pretraining for
all recipes of a seed, counted once) at its epoch cap. An epoch of a phase is: its training examples
through the steps (R x the training set for Algorithm 1's pretraining), the test set evaluated (every
epoch), the resume checkpoint written; each phase adds CLEAN_PASSES evaluations of its training set (the
stop rule runs them from 95% running accuracy until the first 100% epoch) and the final evaluation.
The epoch cap makes the total an upper bound: pretraining stops at 100% training accuracy, usually
sooner; `--stop-at-100` ends true-label phases there too.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .data import Dataset, load_dataset
from .data.augment import augment
from .errors import BadInput
from .models import build_model
from .runs import check, plan
from .spec import PhaseSpec, RunSpec
from .store import save_checkpoint
from .store.checkpoints import model_tensors, optimizer_payload
from .train import evaluate, train_phase
from .train.loop import EVAL_BATCH_SIZE

CLEAN_PASSES = 10  # clean passes over the training set per phase assumed for the stop rule (see the docstring)

# Shapes of the datasets read from files: (train examples, test examples, input shape, classes). CIFAR and
# CINIC-10 as published (CINIC-10: 90,000 per split; we train on train/, test on test/). Restricted ImageNet:
# its 203 ImageNet classes (data/folders.py) at ImageNet's mean 1,281 training and 50 validation images each,
# approximately, resized to 32x32 as our loader does.
FILE_SHAPES = {
    "cifar10": (50_000, 10_000, (3, 32, 32), 10),
    "cifar100": (50_000, 10_000, (3, 32, 32), 100),
    "cinic10": (90_000, 90_000, (3, 32, 32), 10),
    "restricted-imagenet": (260_000, 10_150, (3, 32, 32), 9),
}


@dataclass(frozen=True)
class Shape:
    train: int
    test: int
    input_shape: tuple[int, ...]
    num_classes: int
    kind: str
    image_files: bool  # inputs are uint8 pixels
    source: str  # where the shape comes from


@dataclass(frozen=True)
class Rates:
    train_seconds_per_image: float
    eval_seconds_per_image: float
    checkpoint_seconds: float


def dataset_shape(spec: RunSpec, data_dir: str | None) -> Shape:
    """The dataset's sizes: from its files when --data-dir holds them, else the published sizes."""
    name = spec.data.name
    if name in FILE_SHAPES and data_dir is None:
        train, test, shape, classes = FILE_SHAPES[name]
        source = f"synthetic inputs of {name}'s shape (no files read; published sizes)"
        return Shape(spec.data.train_size or train, test, shape, classes, "image", True, source)
    data = load_dataset(name, data_dir, spec.data.train_size, spec.seed, compact=True)
    source = f"synthetic inputs of {name}'s shape (sizes from {'its files' if data_dir else 'the built-in data'})"
    return Shape(len(data.y_train), len(data.y_test), data.input_shape, data.num_classes, data.kind, data.compact,
                 source)


def synthetic(shape: Shape, n: int, device: str, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    if shape.image_files:
        x = torch.randint(0, 256, (n, *shape.input_shape), generator=g, dtype=torch.uint8)
    else:
        x = torch.rand((n, *shape.input_shape), generator=g)
    y = torch.randint(0, shape.num_classes, (n,), generator=g)
    pad, flip = (4, True) if shape.kind == "image" else (0, False)
    x, y = x.to(device), y.to(device)
    return Dataset("synthetic", x, y, x, y, shape.num_classes, shape.kind, crop_padding=pad, flip=flip,
                   noise_std=0.25 if shape.kind == "points" else 0.0)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(spec: RunSpec, phase: PhaseSpec, shape: Shape, device: str, steps: int) -> Rates:
    """Seconds per image of the training steps and of evaluation, and seconds per checkpoint, of `spec`'s
    model under `phase` (batch size, augmentation, momentum) and `spec.compute` on `device`."""
    batch = phase.batch_size
    data = synthetic(shape, batch * steps, device)
    mean, std = (t.cpu() for t in data.standardization())
    torch.manual_seed(0)
    model = build_model(spec.model.name, shape.input_shape, shape.num_classes, mean, std, spec.model.width,
                        spec.model.depth).to(device)
    one = replace(phase, epochs=1, lr=min(phase.lr, 1e-3))  # a small rate: the steps stay finite, cost the same
    aug = (lambda xb, yb, g: augment(xb, yb, data, g)) if phase.augment else None
    outcome = train_phase(model, data.x_train[:batch], data.y_train[:batch], one, 0, aug, [], compute=spec.compute)
    _sync(device)
    started = time.perf_counter()
    outcome = train_phase(model, data.x_train, data.y_train, one, 1, aug, [], compute=spec.compute)
    _sync(device)
    train = (time.perf_counter() - started) / len(data.y_train)
    if outcome.diverged:
        raise BadInput("the timing steps diverged on synthetic data; cannot estimate")
    n_eval = min(EVAL_BATCH_SIZE, len(data.y_train))
    evaluate(model, data.x_test[:n_eval], data.y_test[:n_eval], compute=spec.compute)  # warm-up
    _sync(device)
    started = time.perf_counter()
    evaluate(model, data.x_test[:n_eval], data.y_test[:n_eval], compute=spec.compute)
    _sync(device)
    evaluation = (time.perf_counter() - started) / n_eval
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=phase.momentum)
    if phase.momentum:
        for p in model.parameters():
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tensors, meta = optimizer_payload(opt)
        save_checkpoint(Path(folder) / "last.safetensors", {**model_tensors(model), **tensors}, meta)
        checkpoint = time.perf_counter() - started
    return Rates(train, evaluation, checkpoint)


def _setting(phase: PhaseSpec) -> tuple:
    """What a step's cost depends on (besides model, data and compute; momentum and weight decay add one
    elementwise update of the parameters, too little to measure apart)."""
    return phase.batch_size, phase.augment, phase.adversarial_steps


def projection(specs: list[RunSpec], shape: Shape, rates: dict[tuple, Rates]) -> list[dict]:
    """One row per distinct phase of `specs`: its kind, epochs, examples per epoch and projected seconds."""
    rows, seen = [], set()
    for spec in specs:
        for phase in plan(spec):
            if phase.id in seen:
                continue
            seen.add(phase.id)
            if phase.kind == "random-init":
                r = next(iter(rates.values()))
                rows.append({"kind": phase.kind, "epochs": 0, "examples": shape.train,
                             "seconds": (shape.train + shape.test) * r.eval_seconds_per_image})
                continue
            recipe = spec.init.pretrain if phase.kind == "pretrain" else spec.recipe
            n = shape.train * (spec.init.replication_factor if phase.kind == "pretrain" else 1)
            r = rates[_setting(recipe)]
            epoch = n * r.train_seconds_per_image + shape.test * r.eval_seconds_per_image + r.checkpoint_seconds
            extra = (CLEAN_PASSES * n + n + shape.test) * r.eval_seconds_per_image
            rows.append({"kind": phase.kind, "epochs": recipe.epochs, "examples": n,
                         "seconds": recipe.epochs * epoch + extra})
    return rows


def estimate(specs: list[RunSpec], data_dir: str | None, device: str, steps: int) -> dict:
    specs = [check(s) for s in specs]
    shape = dataset_shape(specs[0], data_dir)
    phases = {}
    for spec in specs:
        for phase in (spec.recipe, *([spec.init.pretrain] if any(p.kind == "pretrain" for p in plan(spec)) else [])):
            phases.setdefault(_setting(phase), (spec, phase))
    rates = {key: measure(spec, phase, shape, device, steps) for key, (spec, phase) in phases.items()}
    rows = projection(specs, shape, rates)
    return {"shape": shape, "rates": rates, "rows": rows, "hours": sum(r["seconds"] for r in rows) / 3600}


def _device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU, {torch.get_num_threads()} torch thread(s)"


def estimate_command(args, base: RunSpec, device: str) -> int:
    from .launch import parse_seeds
    from .experiments import get_experiment
    from .report.tables import text_table

    experiment = get_experiment(args.experiment)
    if args.steps < 1:
        raise BadInput(f"--steps must be at least 1, got {args.steps}")
    base = check(base)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else (
        list(experiment.default_seeds) if experiment.default_seeds else [base.seed])
    specs = [check(s) for s in experiment.grid(base, seeds, args.preset)]
    result = estimate(specs, args.data_dir, device, args.steps)
    shape, rows, hours = result["shape"], result["rows"], result["hours"]
    kinds = {kind: {"phases": 0, "epochs": 0, "images": 0, "seconds": 0.0} for kind in ("random-init", "pretrain", "train")
             if any(r["kind"] == kind for r in rows)}
    for r in rows:
        k = kinds[r["kind"]]
        k["phases"] += 1
        k["epochs"] += r["epochs"]
        k["images"] += r["epochs"] * r["examples"]
        k["seconds"] += r["seconds"]
    if args.json:
        print(json.dumps({"experiment": args.experiment, "seeds": seeds, "runs": len(specs), "device": _device_name(device),
                          "compute": vars(base.compute), "measured_on": shape.source, "phases": kinds,
                          "rates": {str(k): vars(v) for k, v in result["rates"].items()},
                          "device_hours": hours}, indent=2))
        return 0
    c = base.compute
    print(f"{args.experiment}: {len(specs)} runs ({len(seeds)} seed(s): {','.join(map(str, seeds))}), "
          f"{len(rows)} distinct phases; model {base.model.name}, data {base.data.name} "
          f"({shape.train} train / {shape.test} test, {'x'.join(map(str, shape.input_shape))})")
    print(f"measured on {_device_name(device)}: {args.steps} steps per setting, {shape.source}; precision "
          f"{c.precision}, channels_last {c.channels_last}, compile {c.compile}")
    for (batch, aug, adv), r in result["rates"].items():
        print(f"  batch {batch}, augmentation {'on' if aug else 'off'}{f', PGD {adv} steps' if adv else ''}: training {1 / r.train_seconds_per_image:,.0f} images/s, "
              f"evaluation {1 / r.eval_seconds_per_image:,.0f} images/s, checkpoint {r.checkpoint_seconds:.2f} s")
    table = [[kind, k["phases"], k["epochs"], f"{k['images']:,}", f"{k['seconds'] / 3600:,.1f}"]
             for kind, k in kinds.items()]
    print(text_table(["phase", "phases", "epochs (caps)", "training images", "device-hours"], table), end="")
    print(f"projected: {hours:,.1f} device-hours ({hours / 24:,.1f} device-days) at the epoch caps, one phase at a time "
          f"on this device; {hours / len(seeds):,.1f} per seed. An upper bound: pretraining stops at 100% training accuracy.")
    return 0
