"""Where phases execute: in the driver's process, in a local process pool, or on a Ray cluster.

Each executor runs `executors.task.run_phase` calls and hands back concurrent.futures.Future
objects; the scheduler (executors/scheduler.py) decides what to run and is the only writer of the
store. Workers write journals (store/journal.py) that the scheduler ingests.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing

from ..errors import BadInput


class InProcess:
    """Runs each task at once in the driver's process (the default for one run)."""

    name = "in-process"
    slots = 1

    def submit(self, fn, *args) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001  (handed to the scheduler like a worker's failure)
            future.set_exception(exc)
        return future

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    import torch

    from . import task  # noqa: F401  (the heavy imports, once, at start-up)

    torch.set_num_threads(threads)
    _die_with_parent()


def _ready() -> None:
    pass


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when the driver dies, so that no orphan keeps
    writing a phase that a restarted driver hands to a new worker."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Pool:
    """A local pool of `workers` processes (spawned), each with `threads` torch threads (default 1:
    two threads per process thrash on a 2-core machine)."""

    name = "pool"

    def __init__(self, workers: int, threads: int = 1):
        self.slots, self.threads = workers, threads
        self._pool = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        pool = cf.ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_worker, initargs=(self.threads,))
        for _ in range(self.slots):  # start every worker now, while the driver prepares, not on first need
            pool.submit(_ready)
        return pool

    def submit(self, fn, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def restart(self) -> None:
        """Replace a pool broken by a dead worker."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(name: str = "inprocess", workers: int = 1, address: str | None = None, threads: int = 1):
    if name == "inprocess" and workers > 1:
        name = "pool"
    if workers < 1:
        raise BadInput(f"--workers must be at least 1, got {workers}")
    if name == "inprocess":
        return InProcess()
    if name == "pool":
        return Pool(workers, threads)
    if name == "ray":
        from .ray import RayExecutor
        return RayExecutor(address, threads)
    raise BadInput(f"unknown executor {name!r} (known: inprocess, pool, ray)")
