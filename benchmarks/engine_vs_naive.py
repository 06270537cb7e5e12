"""Target 1: the main job's protocol with our engine vs a plain research-style loop.

Both train the four runs of `badminima run bad-minima` (random / adversarial init x vanilla / SOTA)
on the same specs and epoch caps. The naive loop is how such code is usually written: a DataLoader
over a TensorDataset, a full pass over the training set for accuracy every epoch, one run after
another (so each adversarial run fits its own adversarial init), torch's default threads. Our engine:
in-memory batching,
the full accuracy pass only when the running estimate reaches 95%, the shared pretraining phase,
and the phases spread over a local pool of 2 workers (1 torch thread each), pretraining first.

    python benchmarks/engine_vs_naive.py            # scaled caps (pretrain 60, true labels 80 epochs)
    python benchmarks/engine_vs_naive.py --full     # the main job's caps (pretrain 250, 300 epochs)
Prints the two wall times and their ratio (target: at least 3x).
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from badminima.data import load_dataset
from badminima.data.augment import augment
from badminima.data.corruptions import adversarial_dataset
from badminima.executors import Pool
from badminima.executors.scheduler import execute
from badminima.experiments.paper000.bad_minima import cells
from badminima.models import build_model
from badminima.presets import base_spec
from badminima.runs import Workspace
from badminima.store import Store


def naive_train(model, x, y, data, phase, x_test, y_test, seed):
    """A typical loop: DataLoader, per-epoch full-train-set accuracy, stop at 100%."""
    opt = torch.optim.SGD(model.parameters(), lr=phase.lr, momentum=phase.momentum, weight_decay=phase.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(phase.lr_milestones), phase.lr_gamma)
    loader = DataLoader(TensorDataset(x, y), batch_size=phase.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    for epoch in range(phase.epochs):
        model.train()
        for xb, yb in loader:
            if phase.augment:
                xb, yb = augment(xb, yb, data, g)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            train_acc = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in DataLoader(TensorDataset(x, y), 1000)) / len(y)
            _ = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in DataLoader(TensorDataset(x_test, y_test), 1000))
        if phase.stop_at_100 and train_acc == 1.0:
            break


def naive(specs):
    """Torch's default thread count (all cores), as a plain script gets."""
    for spec in specs:
        data = load_dataset(spec.data.name)
        mean, std = data.standardization()
        torch.manual_seed(spec.seed)
        model = build_model(spec.model.name, data.input_shape, data.num_classes, mean, std, spec.model.width,
                            spec.model.depth, dict(spec.model.options))
        if spec.init.name == "adversarial":
            x, y = adversarial_dataset(data.x_train, data.y_train, data.num_classes, spec.init.replication_factor,
                                       spec.init.zeroed_percent, spec.init.zero_mode, 1.0, torch.Generator().manual_seed(0))
            naive_train(model, x, y, data, spec.init.pretrain, data.x_test, data.y_test, spec.seed)
        naive_train(copy.deepcopy(model), data.x_train, data.y_train, data, spec.recipe, data.x_test, data.y_test, spec.seed)


def ours(specs):
    with tempfile.TemporaryDirectory() as out:
        executor = Pool(2, threads=1)
        try:
            execute(specs, Workspace(Store(out), quiet=True), executor, "benchmark")
        finally:
            executor.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    base = base_spec("cpu")
    if not args.full:
        base = replace(base, init=replace(base.init, pretrain=replace(base.init.pretrain, epochs=60)),
                       recipe=replace(base.recipe, epochs=80, lr_milestones=(40, 66)))
    specs = cells(base, [0])
    timings = {}
    for name, fn in (("ours", ours), ("naive", naive)):
        started = time.perf_counter()
        fn(specs)
        timings[name] = time.perf_counter() - started
        print(f"{name:5s}: {timings[name]:7.1f} s", flush=True)
    print(f"engine vs naive loop: {timings['naive'] / timings['ours']:.2f}x faster (target >= 3x)")


if __name__ == "__main__":
    main()
