"""The driver: runs a grid's phases on an executor, in dependency order, each phase once.

Every run is a chain of phases (runs.plan); runs sharing a prefix share its phases, so the
scheduler dispatches phases, not runs: a phase goes out once its parent is done, is claimed in the
store first (so two drivers on one directory never run it twice), and its worker's journal is
ingested when it returns (or dies).

Faults:
- A phase whose task raises is dispatched again, resuming from its last checkpoint, up to
  MAX_ATTEMPTS times. One that fails every time is given up: the phases that start from it are not
  run, the rest of the sweep goes on, and then PhaseFailed names it and its last error.
- A pool worker that dies breaks the whole local pool: every phase in flight fails with
  BrokenProcessPool, the dead worker's and the others alike. The pool is restarted and those phases
  are dispatched again without being charged an attempt (a phase caught in MAX_BREAKS breaks is
  given up, in case it is the one killing its worker, e.g. by running out of memory).
- Claims: a thread refreshes this driver's claims every HEARTBEAT_SECONDS, also while a phase trains
  in the driver's own process. A claim is dead when its owner's process is gone (same host) or its
  heartbeat is STALE_SECONDS old; whoever claims a dead owner's phase first applies the journals it
  left. A worker checks before each write that its driver still holds the claim (store/journal.py),
  and the driver checks again before ingesting a finished task: a phase whose claim another driver
  took over is left to that driver, so no phase is finished by two.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import sqlite3
import threading
import time
import uuid

from ..errors import BadInput, PhaseFailed
from ..progress import Sweep
from ..runs import Workspace, check, final_path, plan, summary
from ..spec import RunSpec, to_dict
from ..store import CorruptCheckpoint, Store, load_checkpoint
from ..store.checkpoints import TEMPORARY
from ..store.journal import ClaimLost, discard, ingest
from .task import run_phase

MAX_ATTEMPTS = 3  # failures of a phase's own (an exception in its task) before it is given up
MAX_BREAKS = 10  # pool breaks a phase may be in flight for before it is given up
POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0  # a claim without a heartbeat for this long is free
HOST = socket.gethostname()  # the host part of this driver's owner name (tests set it to play other hosts)


def _alive(owner: str, heartbeat: float) -> bool:
    """Whether the driver `owner` ("host:pid:token") still holds its claims: on this host its process
    must exist, and on any host its heartbeat must be fresh (which also frees the claims of a pid
    that a new process reuses)."""
    host, pid, _ = owner.rsplit(":", 2)
    if host == HOST:
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            pass
    return time.time() - heartbeat < STALE_SECONDS


class _Heartbeat(threading.Thread):
    """Refreshes `owner`'s claims every HEARTBEAT_SECONDS, on a connection of its own."""

    def __init__(self, out_dir, owner: str):
        super().__init__(name="badminima-heartbeat", daemon=True)
        self.out_dir, self.owner, self.stopped = out_dir, owner, threading.Event()

    def run(self) -> None:
        store = Store(self.out_dir)
        store.conn.execute("PRAGMA synchronous=NORMAL")  # no fsync per beat (WAL: a lost beat is harmless)
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    store.heartbeat(self.owner)
                except sqlite3.OperationalError:  # busy past the timeout: the next beat tries again
                    pass
        finally:
            store.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def _finished(store, phase_id: str, ws: Workspace) -> str | None:
    """'done' or 'diverged' if the phase needs no work (a done phase's checkpoint must verify)."""
    row = store.phase(phase_id)
    if not row or row["status"] not in ("done", "diverged"):
        return None
    if row["status"] == "done":
        try:
            load_checkpoint(final_path(store, phase_id))
        except (CorruptCheckpoint, FileNotFoundError) as exc:
            ws.warn(f"{exc if isinstance(exc, CorruptCheckpoint) else 'missing checkpoint'}; recomputing phase {phase_id}")
            store.reset_phase(phase_id)
            return None
    return row["status"]


def _take_over(store, phase_id: str) -> None:
    """Once this driver holds `phase_id`'s claim no one else writes the phase: apply the journals
    that a dead holder left and remove its interrupted checkpoint writes."""
    ingest(store, only={phase_id})
    for tmp in store.phase_dir(phase_id).glob(TEMPORARY):
        tmp.unlink(missing_ok=True)


def _error(future: cf.Future) -> BaseException | None:
    return cf.CancelledError() if future.cancelled() else future.exception()


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def execute(specs: list[RunSpec], ws: Workspace, executor, label: str = "runs") -> list[dict]:
    """Make every run of `specs` done (or diverged) and return their summary records, in order;
    PhaseFailed (after every other phase is done) if a phase failed every attempt."""
    store = ws.store
    writer = uuid.uuid4().hex[:12]  # names this driver's journals
    owner = f"{HOST}:{os.getpid()}:{writer}"
    specs = [check(s) for s in specs]
    tasks: dict[str, tuple[RunSpec, int, str | None]] = {}
    for spec in specs:
        phases = plan(spec)
        store.record_run(phases[-1].id, to_dict(spec), [p.id for p in phases])
        for index, phase in enumerate(phases):
            tasks.setdefault(phase.id, (spec, index, phase.parent))
    ingest(store, skip=store.held_by_others(owner, _alive))  # journals left by a crash

    status = {pid: s for pid in tasks if (s := _finished(store, pid, ws))}
    # phases that others start from go first (a pretraining before the runs that need no pretraining),
    # so that the workers are not all busy with leaves while the longest chain waits
    below = {pid: 0 for pid in tasks}
    for pid in reversed(list(tasks)):
        parent = tasks[pid][2]
        if parent is not None:
            below[parent] += 1 + below[pid]
    pending = sorted((pid for pid in tasks if pid not in status), key=lambda pid: -below[pid])
    attempts: dict[str, int] = {}
    breaks: dict[str, int] = {}
    given_up: dict[str, BaseException] = {}  # phase -> its last error
    not_run: set[str] = set()  # phases that start from a phase given up
    in_flight: dict[cf.Future, str] = {}
    sweep = Sweep(label, {pid: tasks[pid][:2] for pid in pending}, executor, store.dir, ws.quiet, writer=writer)
    heartbeat = _Heartbeat(store.dir, owner)
    heartbeat.start()
    try:
        while pending or in_flight:
            broken = False
            for pid in list(pending):
                if len(in_flight) >= executor.slots:
                    break
                spec, index, parent = tasks[pid]
                if parent is not None and status.get(parent) == "diverged":
                    status[pid] = "diverged"  # nothing to start from
                    pending.remove(pid)
                    continue
                if parent in given_up or parent in not_run:
                    not_run.add(pid)
                    pending.remove(pid)
                    continue
                if (parent is not None and parent not in status) or not store.claim(pid, owner, _alive):
                    continue
                _take_over(store, pid)
                if s := _finished(store, pid, ws):  # another driver finished it since we looked
                    store.release(pid, owner)
                    status[pid] = s
                    pending.remove(pid)
                    continue
                sweep.start(pid)
                try:
                    future = executor.submit(run_phase, str(store.dir), to_dict(spec), index,
                                             None if ws.data_dir is None else str(ws.data_dir), ws.device,
                                             sweep.worker_quiet, owner, writer)
                except cf.BrokenExecutor:  # a worker died since the last look: restart the pool first
                    store.release(pid, owner)
                    broken = True
                    break
                in_flight[future] = pid
                pending.remove(pid)
            if in_flight:
                cf.wait(list(in_flight), timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            elif not broken:
                time.sleep(POLL_SECONDS)  # waiting for phases another driver holds
            collateral = (cf.BrokenExecutor, cf.CancelledError)
            if broken or any(f.done() and isinstance(_error(f), collateral) for f in in_flight):
                executor.restart()  # returns once the old pool has failed all it held and its workers are gone
            for future in [f for f in in_flight if f.done()]:
                pid = in_flight.pop(future)
                exc = _error(future)
                if isinstance(exc, BadInput):
                    raise exc
                if isinstance(exc, ClaimLost) or not store.holds(pid, owner):
                    discard(store.dir, pid, writer)
                    ws.warn(f"phase {pid}: another driver took over its claim (this driver's heartbeat was late); "
                            "leaving the phase to it")
                    pending.append(pid)
                    continue
                if isinstance(exc, collateral):  # the pool broke under it: not the phase's fault
                    breaks[pid] = breaks.get(pid, 0) + 1
                    if breaks[pid] >= MAX_BREAKS:
                        given_up[pid] = exc
                    else:
                        ws.warn(f"phase {pid} stopped (a pool worker died); running it again")
                elif exc is not None:
                    attempts[pid] = attempts.get(pid, 0) + 1
                    if attempts[pid] >= MAX_ATTEMPTS:
                        given_up[pid] = exc
                    else:
                        ws.warn(f"phase {pid} stopped ({_one_line(exc)}); running it again")
                ingest(store, only={pid}, writer=writer)
                store.release(pid, owner)
                if pid in given_up:
                    continue
                if s := _finished(store, pid, ws):
                    status[pid] = s
                    continue
                if exc is None:  # returned, yet the phase is not done (say, its final checkpoint does not verify)
                    attempts[pid] = attempts.get(pid, 0) + 1
                    if attempts[pid] >= MAX_ATTEMPTS:
                        given_up[pid] = RuntimeError("the task returned but the phase is not done")
                        continue
                pending.insert(0, pid)
            for pid in pending:  # phases that another driver finished
                if pid not in status and (s := _finished(store, pid, ws)):
                    status[pid] = s
            pending = [pid for pid in pending if pid not in status]
            sweep.update(status, in_flight.values())
            if ws.tracker:  # MLflow (badminima.tracking): each phase once it is finished and ingested
                ws.tracker.log_finished(store, status)
        if given_up:
            raise PhaseFailed(_failure(given_up, attempts, breaks, not_run, tasks))
    finally:  # phases still in flight (after an error) keep their journals for the next run
        sweep.close()
        heartbeat.stop()
        ingest(store, only=set(tasks) - set(in_flight.values()), writer=writer)
        for pid in set(tasks) - set(in_flight.values()):
            store.release(pid, owner)
        if ws.tracker:
            ws.tracker.log_finished(store, status)
    return [summary(spec, store) for spec in specs]


def _failure(given_up: dict, attempts: dict, breaks: dict, not_run: set, tasks: dict) -> str:
    """One line: each phase given up, how often it failed, its last error; what was not run."""
    parts = []
    for pid, exc in given_up.items():
        spec, index, _ = tasks[pid]
        how = (f"failed {attempts[pid]} times" if attempts.get(pid, 0) >= MAX_ATTEMPTS
               else f"was in flight in {breaks[pid]} pool breaks")
        parts.append(f"phase {pid} ({plan(spec)[index].kind}, data {spec.data.name}, init {spec.init.name}, "
                     f"seed {spec.seed}) {how}; last error: {_one_line(exc)}")
    tail = f"; {len(not_run)} phases that start from it were not run" if not_run else ""
    return "; ".join(parts) + tail + "; every other phase is done (run again to retry)"
