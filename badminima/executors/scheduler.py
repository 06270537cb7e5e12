"""The driver: runs a grid's phases on an executor, in dependency order, each phase once.

Every run is a chain of phases (runs.plan); runs sharing a prefix share its phases, so the
scheduler dispatches phases, not runs: a phase goes out once its parent is done, is claimed in the
store first (so two drivers on one directory never run it twice), and its worker's journal is
ingested when it returns (or dies). A phase whose worker dies is dispatched again, resuming from
its last checkpoint, up to MAX_ATTEMPTS times.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import sys
import time
import uuid

from ..errors import BadInput
from ..progress import Sweep
from ..runs import Workspace, check, final_path, plan, summary
from ..spec import RunSpec, to_dict
from ..store import CorruptCheckpoint, load_checkpoint
from ..store.journal import ingest
from .task import run_phase

MAX_ATTEMPTS = 3
POLL_SECONDS = 2.0
STALE_SECONDS = 120.0  # a claim of another host's driver without a heartbeat for this long is free


def _alive(owner: str, heartbeat: float) -> bool:
    host, pid, _ = owner.split(":", 2)
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
            return True
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
    return time.time() - heartbeat < STALE_SECONDS


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


def execute(specs: list[RunSpec], ws: Workspace, executor, label: str = "runs") -> list[dict]:
    """Make every run of `specs` done (or diverged) and return their summary records, in order."""
    store = ws.store
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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
    in_flight: dict[cf.Future, str] = {}
    sweep = Sweep(label, {pid: tasks[pid][:2] for pid in pending}, executor, store.dir, ws.quiet)
    try:
        while pending or in_flight:
            for pid in list(pending):
                if len(in_flight) >= executor.slots:
                    break
                spec, index, parent = tasks[pid]
                if parent is not None and status.get(parent) == "diverged":
                    status[pid] = "diverged"  # nothing to start from
                    pending.remove(pid)
                    continue
                if (parent is not None and parent not in status) or not store.claim(pid, owner, _alive):
                    continue
                if s := _finished(store, pid, ws):  # another driver finished it since we looked
                    store.release(pid, owner)
                    status[pid] = s
                    pending.remove(pid)
                    continue
                sweep.start(pid)
                future = executor.submit(run_phase, str(store.dir), to_dict(spec), index,
                                         None if ws.data_dir is None else str(ws.data_dir), ws.device, sweep.worker_quiet)
                in_flight[future] = pid
                pending.remove(pid)
            if in_flight:
                done, _ = cf.wait(list(in_flight), timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            else:
                done = set()
                time.sleep(POLL_SECONDS)  # waiting for phases another driver holds
            store.heartbeat(owner)
            broken = False
            for future in done:
                pid = in_flight.pop(future)
                try:
                    future.result()
                except BadInput:
                    raise
                except Exception as exc:  # noqa: BLE001  (a dead or failed worker: retry from its checkpoint)
                    attempts[pid] = attempts.get(pid, 0) + 1
                    broken = broken or isinstance(exc, cf.process.BrokenProcessPool)
                    if attempts[pid] >= MAX_ATTEMPTS:
                        raise RuntimeError(f"phase {pid} failed {attempts[pid]} times; last error: {exc!r}") from exc
                    ws.warn(f"phase {pid} stopped ({type(exc).__name__}: {exc}); running it again")
                ingest(store, only={pid})
                store.release(pid, owner)
                if s := _finished(store, pid, ws):
                    status[pid] = s
                else:
                    pending.insert(0, pid)
            if broken:
                executor.restart()
            for pid in pending:  # phases that another driver finished
                if pid not in status and (s := _finished(store, pid, ws)):
                    status[pid] = s
            pending = [pid for pid in pending if pid not in status]
            sweep.update(status, in_flight.values())
            if ws.tracker:  # MLflow (badminima.tracking): each phase once it is finished and ingested
                ws.tracker.log_finished(store, status)
    finally:  # phases still in flight (after an error) keep their journals for the next run
        sweep.close()
        ingest(store, only=set(tasks) - set(in_flight.values()))
        for pid in set(tasks) - set(in_flight.values()):
            store.release(pid, owner)
        if ws.tracker:
            ws.tracker.log_finished(store, status)
    return [summary(spec, store) for spec in specs]
