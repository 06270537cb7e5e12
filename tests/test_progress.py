"""Progress: plain lines when stderr is not a terminal, a rich display when it is (forced here), sweep counts
that a retried phase does not grow, ETAs (against closed forms), the latest epoch read from a worker's
journal, and the Hessian-vector products of a long measure."""
import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401  (the scheduler tells a broken pool by cf.process.BrokenProcessPool)
import io
import re
import sqlite3
from dataclasses import replace

import pytest
import torch
from rich.console import Console
from torch import nn

import badminima.progress as progress
from badminima.executors import InProcess
from badminima.executors.scheduler import execute
from badminima.measures import HessianOperator, power_iteration
from badminima.runs import Workspace, plan
from badminima.spec import DataSpec, ModelSpec, PhaseSpec, RunSpec, merge
from badminima.store import Store
from badminima.store.journal import Journal

SPEC = RunSpec(data=DataSpec("mnist1d", train_size=200), model=ModelSpec("mlp", width=16),
               recipe=PhaseSpec(epochs=3, batch_size=100, stop_at_100=False))
SPECS = [SPEC, replace(SPEC, seed=1)]
ETA = r"ETA \d+:\d\d:\d\d"


class FlakyOnce(InProcess):
    """Runs phases in this process; the first dispatch of `victim` fails as a dead worker's would."""

    def __init__(self, victim):
        self.victim, self.failed = victim, False

    def submit(self, fn, out_dir, spec, index, *rest):
        if plan(merge(RunSpec(), spec))[index].id == self.victim and not self.failed:
            self.failed = True
            future = cf.Future()
            future.set_exception(RuntimeError("worker died"))
            return future
        return super().submit(fn, out_dir, spec, index, *rest)


def _phase_count(out):
    con = sqlite3.connect(out / "results.sqlite")
    n = con.execute("SELECT count(*) FROM phases").fetchone()[0]
    con.close()
    return n


def test_plain_lines_count_phases_once_through_a_retry(tmp_path, capsys):
    victim = plan(SPECS[0])[-1].id  # a train phase
    ws = Workspace(Store(tmp_path))
    records = execute(SPECS, ws, FlakyOnce(victim), "sweep")
    err = capsys.readouterr().err
    assert all(r["status"] == "done" for r in records)
    total = _phase_count(tmp_path)  # every phase the sweep ran (2 random inits, 2 trainings)
    assert total == 4
    counts = [(int(a or c), int(b or d)) for a, b, c, d in
              re.findall(r"^\[(\d+)/(\d+)\]|\((\d+)/(\d+) phases done\)", err, re.M)]
    assert counts, err
    assert {b for _, b in counts} == {total}  # the total never grows, retry or not
    assert all(a <= b for a, b in counts) and counts[-1] == (total, total)
    assert [a for a, _ in counts] == sorted(a for a, _ in counts)
    starts = re.findall(rf"^\[\d+/\d+\] sweep: train {victim} .*$", err, re.M)
    assert len(starts) == 2 and "attempt 2" in starts[1]  # its start, its retry
    assert len(re.findall(rf"^  sweep: train {victim} done \(\d+/4 phases done\)", err, re.M)) == 1
    assert re.search(r"sweep ETA \d+:\d\d:\d\d$", err, re.M)  # a number once something is done
    epoch_lines = re.findall(rf"^  train \w+ epoch +(\d+)/3 .*{ETA}$", err, re.M)
    assert "3" in epoch_lines  # the last epoch of a phase is always shown, with its ETA
    assert "\x1b[" not in err  # no terminal control codes in a log


def test_rich_display_when_stderr_is_a_terminal(tmp_path, capsys, monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", lambda: Console(file=screen, force_terminal=True, width=200))
    execute(SPECS, Workspace(Store(tmp_path)), InProcess(), "sweep")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "\x1b[" in screen.getvalue()  # drawn for a terminal
    assert re.search(r"sweep +\S+ 4/4 phases .* ETA 0:00:00", text)  # the final state of the sweep's bar
    for spec in SPECS:
        assert re.search(rf"train {plan(spec)[-1].id} +\S+ 3/3 epochs .*ETA \d+:\d\d:\d\d", text)
    assert not re.search(r"^\[\d+/\d+\]", capsys.readouterr().err, re.M)  # no plain lines besides


def test_workers_of_other_processes_stay_quiet_under_a_live_display(tmp_path, monkeypatch):
    class Pool:
        name, slots = "pool", 2
    phases = {p.id: (SPEC, i) for i, p in enumerate(plan(SPEC))}
    monkeypatch.setattr(progress, "console", lambda: Console(file=io.StringIO(), force_terminal=True))
    live = progress.Sweep("s", phases, Pool(), tmp_path)
    assert live.worker_quiet and not progress.Sweep("s", phases, InProcess(), tmp_path).worker_quiet
    live.close()
    monkeypatch.setattr(progress, "console", lambda: Console(file=io.StringIO()))  # not a terminal
    assert not progress.Sweep("s", phases, Pool(), tmp_path).worker_quiet  # workers print their own lines


def test_phase_eta_is_seconds_per_epoch_times_epochs_left():
    clock = progress.Clock()
    assert clock.eta(1, 10, seconds=2.0, now=50.0) == 2.0 * 9  # one epoch seen: its own seconds
    assert clock.eta(3, 10, seconds=9.9, now=56.0) == pytest.approx(3.0 * 7)  # (56-50)/(3-1) s per epoch
    assert progress.Clock().eta(1, 10) is None
    assert progress.format_eta(3725.4) == "1:02:05" and progress.format_eta(None) == "?"


def test_sweep_eta_weighs_phases_by_epochs_and_counts_only_work_done_here(tmp_path):
    spec = replace(SPEC, recipe=replace(SPEC.recipe, epochs=10))
    init, train = plan(spec)
    sweep = progress.Sweep("s", {init.id: (spec, 0), train.id: (spec, 1)}, InProcess(), tmp_path, quiet=True)
    sweep.started = 0.0
    assert sweep.eta(now=100.0) is None  # nothing done yet
    sweep.update({init.id: "done"}, [])
    sweep.epoch(f"train {train.id}", 1, 10, {}, None)
    sweep.epoch(f"train {train.id}", 4, 10, {}, None)
    # work: 1 (random init) + 11 (10 epochs + 1); done 1 + 4, all of it here: 100 s * 7 / 5
    assert sweep.eta(now=100.0) == pytest.approx(140.0)

    resumed = progress.Sweep("s", {train.id: (spec, 1)}, InProcess(), tmp_path, quiet=True)
    resumed.started = 0.0
    resumed.epoch(f"train {train.id}", 6, 10, {}, None)  # resumed after epoch 5 of an earlier run
    resumed.epoch(f"train {train.id}", 8, 10, {}, None)
    assert resumed.eta(now=100.0) == pytest.approx(100.0 * (11 - 8) / (8 - 5))
    resumed.update({train.id: "done"}, [])
    assert resumed.eta(now=100.0) == 0.0


def test_latest_epoch_of_a_journal(tmp_path):
    Store(tmp_path).close()
    journal = Journal(tmp_path, "p1")
    journal.start_phase("p1", "train", None, {})
    for epoch in (1, 2, 3):
        journal.record_epoch("p1", epoch, {"epoch": epoch, "train_loss": 1.0 / epoch})
    journal.close()
    assert progress.latest_epoch(tmp_path / "journal" / "p1.jsonl") == {"epoch": 3, "train_loss": 1 / 3}
    with open(tmp_path / "journal" / "p1.jsonl", "a") as fh:
        fh.write('["record_epoch", ["p1", 4, {"epo')  # a line being written
    assert progress.latest_epoch(tmp_path / "journal" / "p1.jsonl")["epoch"] == 3
    assert progress.latest_epoch(tmp_path / "journal" / "none.jsonl") is None


def test_hessian_measure_reports_products_used(capsys, monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randint(0, 3, (10,))
    monkeypatch.setattr(progress, "MEASURE_LINE_SECONDS", 0.0)
    shown = progress.Measures(Console(stderr=True, force_terminal=False))  # not a terminal: plain lines
    seen = []
    op = HessianOperator(model, x, y, progress=lambda n: (seen.append(n), shown.products(n)))
    shown.start("hessian")
    result = power_iteration(op, iterations=7, tol=0.0)  # tol 0: exactly `iterations` products
    shown.close()
    assert seen == list(range(1, 8)) and result["hvps"] == 7
    err = capsys.readouterr().err
    assert "measuring hessian ..." in err and "hessian: 7 Hessian-vector products" in err
