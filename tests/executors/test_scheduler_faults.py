"""The scheduler's failure path and its claims (issue 13, items 1 and 2): pool workers SIGKILLed at
random times, a phase that always fails, an exception in a phase run in the driver's process, two
drivers on different hosts sharing one directory, a claim taken over in the middle of a phase, and
concurrent writers of one checkpoint. Each sweep is compared with an uninterrupted sweep of the
same grid (same numbers: same spec and seed give the same numbers, resumed or not)."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from badminima.cli import main
from badminima.executors import InProcess, Pool, scheduler
from badminima.executors.scheduler import _alive, execute
from badminima.experiments.paper000.bad_minima import cells
from badminima.presets import base_spec
from badminima.runs import Workspace, plan
from badminima.spec import merge, to_dict
from badminima.store import Store, load_checkpoint, save_checkpoint
from badminima.store.journal import Journal
from conftest import epoch_rows, journal_epoch_counts
from test_faults import _worker_pids


# a tiny bad-minima grid: seeds x {random, adversarial init} x {vanilla, SOTA} (12 phases for 2 seeds)
def _grid(dataset="gaussians2d", seeds=(0, 1), **recipe):
    tiny = {"model": {"width": 32}, "recipe": {"epochs": 12, **recipe},
            "init": {"replication_factor": 1, "pretrain": {"epochs": 6}}}
    return cells(merge(base_spec("cpu", dataset), tiny), list(seeds))


def _leftovers(out: Path) -> list[Path]:
    """Journals and checkpoint temporaries that a finished sweep should not leave behind."""
    return [*out.glob("journal/*.jsonl"), *out.glob("phases/*/*.tmp")]


def _epochs_so_far(out: Path) -> int:
    """Epochs recorded in the database plus those still in journals (a trigger, not a measurement)."""
    n = sum(journal_epoch_counts(out))
    if (out / "results.sqlite").exists():
        try:
            with sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True) as conn:
                n += conn.execute("SELECT count(*) FROM epochs").fetchone()[0]
        except sqlite3.Error:
            pass
    return n


class CountingPool(Pool):
    """The local pool, counting how often the scheduler restarted it."""

    restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        super().restart()


def _kill_trials(tmp_path, trials: int) -> tuple[int, int]:
    """Run the tiny grid once without faults, then `trials` times with one pool worker SIGKILLed
    when a random number of epochs is recorded; every sweep must equal the first. Returns
    (sweeps completed, sweeps in which a worker was killed and the driver restarted its pool)."""
    specs = _grid()
    pool = CountingPool(2)
    try:
        expected = execute(specs, Workspace(Store(tmp_path / "clean"), quiet=True), pool)
        expected_rows = epoch_rows(tmp_path / "clean")
        total = _epochs_so_far(tmp_path / "clean")
        rng = random.Random(13)
        completed = killed = 0
        for trial in range(trials):
            out = tmp_path / f"trial{trial}"
            target = rng.randint(1, int(0.7 * total))
            done, kills = threading.Event(), []

            def killer():
                while not done.is_set() and _epochs_so_far(out) < target:
                    time.sleep(0.005)
                if not done.is_set() and (pids := _worker_pids(os.getpid())):
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    kills.append(target)

            thread = threading.Thread(target=killer)
            restarts = pool.restarts
            thread.start()
            try:
                records = execute(specs, Workspace(Store(out), quiet=True), pool)
            finally:
                done.set()
                thread.join()
            assert records == expected, f"trial {trial} (kill at {target} epochs)"
            assert epoch_rows(out) == expected_rows
            assert not _leftovers(out)
            completed += 1
            killed += bool(kills) and pool.restarts > restarts
        return completed, killed
    finally:
        pool.close()


def test_pool_worker_sigkill_at_random_times(tmp_path, capfd):
    completed, killed = _kill_trials(tmp_path, 3)
    assert (completed, killed) == (3, 3)
    assert "a pool worker died" in capfd.readouterr().err


@pytest.mark.slow
def test_pool_worker_sigkill_at_ten_random_times(tmp_path):
    assert _kill_trials(tmp_path, 10) == (10, 10)


def _fail(monkeypatch, kind: str, seed: int):
    """Make every attempt at the `kind` phase of seed `seed` raise ValueError('boom ...')."""
    import badminima.runs as runs

    train = runs._train

    def failing(phase, start, spec, ws):
        if phase.kind == kind and spec.seed == seed:
            raise ValueError(f"boom in {phase.id}")
        return train(phase, start, spec, ws)
    monkeypatch.setattr(runs, "_train", failing)


ARGV = ["run", "bad-minima", "--dataset", "gaussians2d", "--width", "32", "--epochs", "12", "--pretrain-epochs", "6",
        "-R", "1", "--seeds", "0,1", "--workers", "1", "--quiet", "--json"]  # in the driver's process


def test_a_phase_that_always_fails_ends_the_sweep_with_one_error_line(tmp_path, monkeypatch, capsys):
    """In the driver's process (the default executor): the real error, not AttributeError; the other
    phases done; the phases after the failed one not run; one error line and exit status 1."""
    _fail(monkeypatch, "pretrain", seed=1)
    specs = _grid()
    bad = next(p for s in specs if s.seed == 1 for p in plan(s) if p.kind == "pretrain")
    after_bad = {plan(s)[-1].id for s in specs if bad in plan(s)}
    assert main([*ARGV, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("badminima: error:")]
    assert not any("Traceback" in line for line in err)
    assert len(errors) == 1 and f"phase {bad.id}" in errors[0] and f"ValueError: boom in {bad.id}" in errors[0]
    assert "failed 3 times" in errors[0] and "AttributeError" not in "\n".join(err)
    assert sum(f"phase {bad.id} stopped (ValueError: boom in {bad.id})" in line for line in err) == 2
    store = Store(tmp_path)
    every = {p.id for s in specs for p in plan(s)}
    status = {pid: (store.phase(pid) or {}).get("status") for pid in every}
    assert {pid for pid, s in status.items() if s != "done"} == {bad.id, *after_bad}
    assert all(status[pid] is None for pid in after_bad) and len(after_bad) == 2
    assert not _leftovers(tmp_path)
    monkeypatch.undo()  # the fault gone, a second run trains only what is missing and succeeds
    assert main([*ARGV, "--out", str(tmp_path)]) == 0
    assert all((store.phase(pid) or {}).get("status") == "done" for pid in every)


def test_an_error_in_an_in_process_phase_is_reported_as_itself(tmp_path, monkeypatch, capsys):
    _fail(monkeypatch, "train", seed=0)
    assert main([*ARGV, "--seeds", "0", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "AttributeError" not in err and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("badminima: error:")]
    assert len(errors) == 1 and errors[0].count("ValueError: boom in") == 4  # the 4 training phases
    assert err.count("badminima: error:") == 1


def test_alive_rule():
    now = time.time()
    me, dead = f"{scheduler.HOST}:{os.getpid()}", subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    assert _alive(f"{me}:x", now) and not _alive(f"{me}:x", now - scheduler.STALE_SECONDS - 1)
    assert not _alive(f"{scheduler.HOST}:{dead.pid}:x", now)  # its process is gone: dead at once
    assert _alive(f"{scheduler.HOST}x:{dead.pid}:x", now)  # another host: only its heartbeat counts
    assert not _alive(f"{scheduler.HOST}x:{os.getpid()}:x", now - scheduler.STALE_SECONDS - 1)


DRIVER = """import json, sys, time
from badminima.executors import InProcess, scheduler
from badminima.runs import Workspace
from badminima.spec import RunSpec, merge
from badminima.store import Store
from badminima.train import callbacks
scheduler.HOST, scheduler.STALE_SECONDS, scheduler.HEARTBEAT_SECONDS = sys.argv[1], {stale}, {beat}
scheduler.POLL_SECONDS = 0.1
record = callbacks.record

def slow_record(*args):  # each epoch 0.25 s longer, asleep (a busy machine does not starve the heartbeat)
    inner = record(*args)
    return lambda state: (time.sleep(0.25), inner(state))
callbacks.record = slow_record
specs = [merge(RunSpec(), d) for d in json.loads(sys.argv[3])]
print(json.dumps(scheduler.execute(specs, Workspace(Store(sys.argv[2])), InProcess())))
"""


def _two_hosts(out: Path, stale: float, beat: float):
    """Two drivers, on hosts host-a and host-b, running one grid (2 random inits, 4 trainings of 10
    epochs) in one directory at once; returns (processes, outputs, phases dispatched)."""
    specs = _grid(epochs=10, stop_at_100=False)  # every training phase runs its 10 epochs
    grid = json.dumps([to_dict(s) for s in specs if s.init.name == "default"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER.format(stale=stale, beat=beat), host, str(out), grid],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for host in ("host-a", "host-b")]
    results = [p.communicate(timeout=600) for p in procs]
    dispatched = [line.split()[3] for _, err in results for line in err.splitlines() if line.startswith("[")]
    return procs, results, dispatched


@pytest.mark.slow  # driver start-up; test_the_heartbeat_keeps_a_claim_while_the_driver_trains covers the same code
def test_two_drivers_on_different_hosts_never_train_a_phase_twice(tmp_path):
    """Drivers on two (simulated) hosts, training in their own processes, with a claim going stale
    after 2 s without a heartbeat; the training phases last longer than that (10 epochs of 0.25 s or
    more). With the heartbeat thread off (beat=1000) this test sees phases trained twice."""
    procs, results, dispatched = _two_hosts(tmp_path, stale=2.0, beat=0.1)
    assert all(p.returncode == 0 for p in procs), [r[1][-2000:] for r in results]
    assert len(dispatched) == len(set(dispatched)) == 6, dispatched  # 2 random inits, 4 trainings
    assert json.loads(results[0][0]) == json.loads(results[1][0])
    assert [r["status"] for r in json.loads(results[0][0])] == ["done"] * 4
    assert not any("took over its claim" in err for _, err in results)
    assert not _leftovers(tmp_path)


def test_the_heartbeat_keeps_a_claim_while_the_driver_trains(tmp_path, monkeypatch):
    """While this driver trains in its own process (phases of 10 epochs of 0.25 s or more), a rival
    on another host looks at its claims every 20 ms: with heartbeats every 0.05 s and claims going
    stale after 2 s, no claim ever looks stale to it, so its `claim` would never take one. (With
    HEARTBEAT_SECONDS = 1000 the claims of the training phases go stale.)"""
    import badminima.train.callbacks as callbacks

    for name, value in (("STALE_SECONDS", 2.0), ("HEARTBEAT_SECONDS", 0.05), ("POLL_SECONDS", 0.05)):
        monkeypatch.setattr(scheduler, name, value)
    record = callbacks.record

    def slow_record(*args):  # each epoch 0.25 s longer, asleep (a busy machine does not starve the heartbeat)
        inner = record(*args)
        return lambda state: (time.sleep(0.25), inner(state))
    monkeypatch.setattr(callbacks, "record", slow_record)
    specs = [s for s in _grid(seeds=(0,), epochs=10, stop_at_100=False) if s.init.name == "default"]
    Store(tmp_path).close()
    done, ages = threading.Event(), []

    def rival():
        rival_store = Store(tmp_path)
        while not done.is_set():
            ages.extend(time.time() - beat for (beat,) in rival_store.conn.execute("SELECT heartbeat FROM claims"))
            time.sleep(0.02)
        rival_store.close()
    thread = threading.Thread(target=rival)
    thread.start()
    try:
        records = execute(specs, Workspace(Store(tmp_path), quiet=True), InProcess())
    finally:
        done.set()
        thread.join()
    assert [r["status"] for r in records] == ["done", "done"]
    assert len(ages) > 50 and max(ages) < scheduler.STALE_SECONDS, (len(ages), max(ages))


def test_a_claim_taken_over_mid_phase_stops_the_old_holder(tmp_path, monkeypatch, capsys):
    """Another driver takes this driver's claim after epoch 1 of a training phase: the worker stops
    at its next write, its journal is dropped, and once the other claim goes stale the phase is
    claimed again and trained from its start, to the same numbers as an undisturbed sweep."""
    specs = _grid(seeds=(0,))[:1]  # random init -> train
    expected = execute(specs, Workspace(Store(tmp_path / "clean"), quiet=True), InProcess())
    train = plan(specs[0])[-1].id
    monkeypatch.setattr(scheduler, "STALE_SECONDS", 0.5)
    monkeypatch.setattr(scheduler, "POLL_SECONDS", 0.05)
    writes, check = [], Journal.check_claim

    def steal_after_epoch_one(journal):
        if journal.name == train:
            writes.append(1)
            if len(writes) == 4:  # start_phase, truncate_epochs, epoch 1, then before epoch 2
                with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
                    conn.execute("UPDATE claims SET owner='elsewhere:1:other', heartbeat=? WHERE phase_id=?",
                                 (time.time(), train))
        return check(journal)
    monkeypatch.setattr(Journal, "check_claim", steal_after_epoch_one)
    records = execute(specs, Workspace(Store(tmp_path / "run"), quiet=True), InProcess())
    assert records == expected
    assert epoch_rows(tmp_path / "run") == epoch_rows(tmp_path / "clean")
    err = capsys.readouterr().err
    assert err.count(f"phase {train}: another driver took over its claim") == 1
    assert "lacks epochs of this checkpoint" in err  # the dropped attempt's checkpoint is not resumed
    assert len(writes) > 4 and not _leftovers(tmp_path / "run")


def test_concurrent_writers_of_one_checkpoint(tmp_path):
    """Two threads writing one checkpoint path at once (two hosts finishing one phase): every write
    completes and the file always holds one writer's whole checkpoint."""
    path, errors = tmp_path / "last.safetensors", []

    def write(value: float):
        try:
            for i in range(30):
                save_checkpoint(path, {"w": torch.full((256, 256), value)}, {"i": i, "value": value})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=write, args=(v,)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["w"], torch.full((256, 256), meta["value"]))
    assert not list(tmp_path.glob("*.tmp"))
