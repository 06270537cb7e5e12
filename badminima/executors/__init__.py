"""Where phases execute: in the driver's process, in a local process pool, or on a Ray cluster.

Each executor runs `executors.task.run_phase` calls and hands back concurrent.futures.Future
objects; the scheduler (executors/scheduler.py) decides what to run and is the only writer of the
store. Workers write journals (store/journal.py) that the scheduler ingests.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os

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


def _init_worker(threads: int, driver: int) -> None:
    import torch

    from . import task  # noqa: F401  (the heavy imports, once, at start-up)

    torch.set_num_threads(threads)
    _die_with_driver(driver)


def _ready() -> None:
    pass


def _die_with_driver(driver: int) -> None:
    """SIGKILL this worker as soon as the driver process `driver` has exited, so that no orphan
    keeps writing a phase that a restarted driver hands to a new worker. (A worker is the fork
    server's child, not the driver's, and the fork server lives as long as any worker: it cannot
    take them down.) A thread waits on a pidfd for the driver's exit, or polls where there is none."""
    import select
    import signal
    import threading
    import time

    def watch():
        try:
            select.select([os.pidfd_open(driver)], [], [])
        except ProcessLookupError:
            pass
        except (OSError, AttributeError):  # no pidfd (not Linux >= 5.3): poll once a second
            while True:
                try:
                    os.kill(driver, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="badminima-driver-watch", daemon=True).start()


def _context():
    """Workers forked from a fork server that has imported torch and the task code once (a restart
    after a worker died then takes milliseconds, not an import of torch per worker); where there is
    no fork server, spawned. Never plain fork: the driver has threads (the claims' heartbeat)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # torch._dynamo: torch.optim imports it when it builds the first optimizer (seconds per worker)
        context.set_forkserver_preload([f"{__name__}.task", "torch._dynamo"])
        return context
    return multiprocessing.get_context("spawn")


class Pool:
    """A local pool of `workers` processes, each with `threads` torch threads (default 1: two
    threads per process thrash on a 2-core machine)."""

    name = "pool"

    def __init__(self, workers: int, threads: int = 1):
        self.slots, self.threads = workers, threads
        self._pool = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        pool = cf.ProcessPoolExecutor(self.slots, mp_context=_context(),
                                      initializer=_init_worker, initargs=(self.threads, os.getpid()))
        for _ in range(self.slots):  # start every worker now, while the driver prepares, not on first need
            pool.submit(_ready)
        return pool

    def submit(self, fn, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def restart(self) -> None:
        """Replace a pool broken by a dead worker. Waits until the old pool has failed every future
        it held and its other workers (which it terminates) have exited, so that no old worker
        writes a journal or checkpoint once the scheduler has ingested it and dispatched again."""
        self._pool.shutdown(wait=True, cancel_futures=True)
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
