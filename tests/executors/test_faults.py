"""Sweeps under faults: SIGKILL of the driver or of a worker, two drivers on one directory, a
diverging run. Each compares with an uninterrupted sweep of the same grid on the same executor."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from conftest import epoch_rows, journal_epoch_counts, run_cli

from badminima.executors import InProcess
from badminima.executors.scheduler import execute
from badminima.presets import base_spec
from badminima.runs import Workspace
from badminima.spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from badminima.store import Store

SWEEP = ["run", "bad-minima", "--train-size", "1500", "--width", "128", "--epochs", "25", "--pretrain-epochs", "15",
         "-R", "1", "--seeds", "0,1", "--json", "--quiet", "--executor", "pool"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "badminima", *SWEEP, *extra, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _clean(tmp_path, workers="2"):
    clean = run_cli(*SWEEP, "--workers", workers, "--out", tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    return json.loads(clean.stdout)["records"]


def test_driver_sigkill_at_random_points_then_resume(tmp_path):
    expected = _clean(tmp_path)
    out = tmp_path / "killed"
    rng = random.Random(7)
    for _ in range(2):  # kill the driver twice, at a random number of journalled epochs
        proc = _start(out, "--workers", "2")
        target = rng.randint(3, 25)
        deadline = time.time() + 120
        while proc.poll() is None and sum(journal_epoch_counts(out)) < target and time.time() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    resumed = run_cli(*SWEEP, "--workers", "2", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["records"] == expected
    assert epoch_rows(out) == epoch_rows(tmp_path / "clean")
    assert not list((out / "journal").glob("*.jsonl"))


def _worker_pids(driver_pid: int) -> list[int]:
    """The pool workers of `driver_pid`: children of its fork server (executors._context)."""
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            procs[int(stat.parent.name)] = (int(stat.read_text().rsplit(")", 1)[1].split()[1]),
                                            (stat.parent / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    servers = {pid for pid, (ppid, cmdline) in procs.items() if ppid == driver_pid and b"forkserver" in cmdline}
    return [pid for pid, (ppid, _) in procs.items() if ppid in servers]


def test_worker_sigkill_is_retried_from_its_checkpoint(tmp_path):
    expected = _clean(tmp_path)
    out = tmp_path / "killed"
    proc = _start(out, "--workers", "2")
    deadline = time.time() + 120
    while sum(journal_epoch_counts(out)) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    workers = _worker_pids(proc.pid)
    assert workers, "no pool worker found"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "running it again" in stderr
    assert json.loads(stdout)["records"] == expected
    assert epoch_rows(out) == epoch_rows(tmp_path / "clean")


def test_two_drivers_never_run_the_same_phase(tmp_path):
    out = tmp_path / "shared"
    argv = [a for a in SWEEP if a != "--quiet"]
    procs = [subprocess.Popen([sys.executable, "-m", "badminima", *argv, "--workers", "1", "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-2000:] for r in results]
    dispatched = [line.split()[3] for _, err in results for line in err.splitlines() if line.startswith("[")]
    assert len(dispatched) == len(set(dispatched)) == 2 + 2 + 8  # random inits, pretrainings, trainings
    assert json.loads(results[0][0])["records"] == json.loads(results[1][0])["records"]


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    base = RunSpec(DataSpec("digits", train_size=200), ModelSpec("mlp", width=16, depth=1), InitSpec(),
                   PhaseSpec(epochs=5))
    bad = replace(base, recipe=replace(base.recipe, lr=1e12), seed=1)
    store = Store(tmp_path)
    records = execute([bad, base], Workspace(store), InProcess())
    assert [r["status"] for r in records] == ["diverged", "done"]
    row = store.phase(records[0]["run_id"])
    assert row["status"] == "diverged" and row["stop_reason"] == "diverged"
    again = execute([bad, base], Workspace(store), InProcess())  # a diverged phase is not retried
    assert again == records


def test_pool_gives_the_same_numbers_as_one_worker(tmp_path):
    assert _clean(tmp_path, workers="1") == _clean(tmp_path / "two", workers="2")


def test_unknown_executor_and_bad_worker_counts(tmp_path):
    for argv, message in ((["--workers", "0"], "--workers"), (["--executor", "ray"], "--address"),
                          (["--threads", "0"], "--threads")):
        result = run_cli("run", "bad-minima", *argv, "--out", tmp_path / "x")
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()
    assert base_spec("cpu").data.name == "mnist1d"
