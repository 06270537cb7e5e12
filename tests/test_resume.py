"""A run killed mid-phase (SIGKILL) and re-run ends with the same numbers as an uninterrupted run."""
import json
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import journal_epoch_counts, run_cli

SMALL = ["run", "bad-minima", "--train-size", "2000", "--width", "256", "--epochs", "30", "--pretrain-epochs", "15",
         "-R", "1", "--seeds", "0", "--workers", "1", "--json", "--quiet"]


def _epochs_mid_second_train_phase(db) -> bool:
    """One training phase is done and another has journalled at least 3 epochs."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        done = con.execute("SELECT count(*) FROM phases WHERE kind='train' AND status='done'").fetchone()[0]
        con.close()
    except sqlite3.Error:
        return False
    running = max(journal_epoch_counts(db.parent), default=0)
    return done >= 1 and running >= 3


def _histories(db):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT phase_id, epoch, metrics FROM epochs ORDER BY phase_id, epoch").fetchall()
    con.close()
    out = {}
    for phase, epoch, metrics in rows:
        m = json.loads(metrics)
        m.pop("seconds")
        out[(phase, epoch)] = m
    return out


def test_sigkill_mid_phase_then_resume_gives_identical_results(tmp_path):
    import os
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([sys.executable, "-m", "badminima", *SMALL, "--out", str(killed_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    db = killed_dir / "results.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (db.exists() and _epochs_mid_second_train_phase(db)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert list(killed_dir.glob("phases/*/last.safetensors")), "no phase was interrupted mid-way"

    resumed = run_cli(*SMALL, "--out", killed_dir)
    assert resumed.returncode == 0, resumed.stderr
    clean = run_cli(*SMALL, "--out", clean_dir)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(resumed.stdout)["records"] == json.loads(clean.stdout)["records"]
    assert _histories(killed_dir / "results.sqlite") == _histories(clean_dir / "results.sqlite")
    assert not list(killed_dir.glob("phases/*/last.safetensors"))

    again = run_cli(*SMALL, "--out", clean_dir)  # everything done: skipped, same answer
    assert json.loads(again.stdout)["records"] == json.loads(clean.stdout)["records"]
