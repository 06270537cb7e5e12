"""Target 5: sweep throughput with 2 local workers against 1 (target: at least 1.7x).

The sweep is `badminima run heuristics` (8 recipes x random/adversarial init) at reduced epoch caps,
on 2 seeds: 32 runs (36 phases). Each configuration runs in a fresh output directory through the scheduler and
the process pool (1 torch thread per worker). Prints runs per hour for each and their ratio.

    python benchmarks/sweep_workers.py
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace

from badminima.executors import Pool
from badminima.executors.scheduler import execute
from badminima.experiments.paper000.heuristics import cells
from badminima.presets import base_spec
from badminima.runs import Workspace
from badminima.store import Store


def sweep_seconds(specs, workers: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        executor = Pool(workers, threads=1)
        started = time.perf_counter()
        try:
            execute(specs, Workspace(Store(out), quiet=True), executor, "benchmark")
        finally:
            executor.close()
        return time.perf_counter() - started


def main():
    base = base_spec("cpu")
    base = replace(base, data=replace(base.data, train_size=2000),
                   init=replace(base.init, pretrain=replace(base.init.pretrain, epochs=30)),
                   recipe=replace(base.recipe, epochs=30, stop_at_100=False))
    specs = cells(base, [0, 1])
    rates = {}
    for workers in (1, 2):
        seconds = sweep_seconds(specs, workers)
        rates[workers] = len(specs) / seconds * 3600
        print(f"{workers} worker(s): {seconds:6.1f} s for {len(specs)} runs = {rates[workers]:7.0f} runs/hour", flush=True)
    print(f"2 workers vs 1: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
