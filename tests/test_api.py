"""The public API (badminima.run / load / load_model), the example that uses it, and `runs` / `export`."""
import json
import re
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import badminima
from badminima.cli import main
from badminima.data import load_dataset
from badminima.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": {"name": "gaussians2d"}, "recipe": {"epochs": 3, "batch_size": 25},
        "init": {"pretrain": {"epochs": 2, "batch_size": 25}}}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "out"
    records = badminima.run("bad-minima", out=folder, seeds=[0], quiet=True, **TINY)
    assert main(["measure", records[0]["run_id"], "--out", str(folder), "--measure", "frobenius", "fgsm", "margins",
                 "--quiet"]) == 0
    return folder, records


def _raw(folder, query):
    conn = sqlite3.connect(folder / "results.sqlite")
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_run_returns_the_stored_records(out):
    folder, records = out
    stored = json.loads(_raw(folder, "SELECT records FROM experiments WHERE name='bad-minima'")[0][0])
    assert records == stored and len(records) == 4 and {r["status"] for r in records} == {"done"}


def test_load_matches_the_store(out):
    folder, _ = out
    res = badminima.load(folder)
    phases = {pid: (kind, status, epochs, train, test, dist) for pid, kind, status, epochs, train, test, dist in
              _raw(folder, "SELECT id, kind, status, epochs, train_acc, test_acc, distance_travelled FROM phases")}
    assert len(res.phases) == len(phases) == 6  # one random init shared by all, one pretraining, four trainings
    for row in res.phases.itertuples():
        kind, status, epochs, train, test, dist = phases[row.phase_id]
        assert (row.kind, row.status, row.epochs) == (kind, status, epochs)
        assert row.train_acc == pytest.approx(100 * train, abs=1e-12) and row.test_acc == pytest.approx(100 * test, abs=1e-12)
        assert row.distance_travelled == pytest.approx(dist, abs=1e-15)

    raw_runs = _raw(folder, "SELECT id, spec, phases FROM runs")
    assert sorted(res.runs.run_id) == sorted(r[0] for r in raw_runs)
    for run_id, spec, chain in raw_runs:
        row = res.runs.set_index("run_id").loc[run_id]
        spec, chain = json.loads(spec), json.loads(chain)
        assert row["phases"] == ",".join(chain) and row["phase_id"] == chain[-1]
        assert row["test_acc"] == pytest.approx(100 * phases[chain[-1]][4], abs=1e-12)
        assert row["data.name"] == spec["data"]["name"] and row["recipe.momentum"] == spec["recipe"]["momentum"]
        assert row["init.pretrain.epochs"] == spec["init"]["pretrain"]["epochs"] and row["seed"] == spec["seed"]
        assert list(row["recipe.lr_milestones"]) == spec["recipe"]["lr_milestones"]

    epochs = _raw(folder, "SELECT phase_id, epoch, metrics FROM epochs")
    assert len(res.epochs) == len(epochs)
    frame = res.epochs.set_index(["phase_id", "epoch"])
    for phase_id, epoch, metrics in epochs:
        metrics = json.loads(metrics)
        assert frame.loc[(phase_id, epoch), "train_acc"] == pytest.approx(100 * metrics["train_acc"], abs=1e-12)
        assert frame.loc[(phase_id, epoch), "test_acc"] == pytest.approx(100 * metrics["test_acc"], abs=1e-12)
        assert frame.loc[(phase_id, epoch), "train_loss"] == metrics["train_loss"]


def test_load_measures_one_row_per_number(out):
    folder, records = out
    res = badminima.load(folder)
    # stored names carry the convention's version after ".v" when it is not the first (fgsm.v2)
    stored = {re.sub(r"\.v\d+$", "", name): json.loads(value)
              for name, value in _raw(folder, "SELECT name, value FROM measures")}
    m = res.measures
    assert set(m.run_id) == {records[0]["run_id"]}
    frob = m[m.measure == "frobenius"]
    assert len(frob) == 1 and frob.key.iloc[0] == "" and frob.value.iloc[0] == stored["frobenius"]
    fgsm = m[m.measure == "fgsm"].set_index("key")
    for i, fraction in enumerate(stored["fgsm"]["accuracy"]):
        assert fgsm.loc[f"accuracy.{i}", "value"] == pytest.approx(100 * fraction, abs=1e-12)
        assert fgsm.loc[f"eps.{i}", "value"] == stored["fgsm"]["eps"][i]  # not an accuracy: unscaled
    assert fgsm.loc["clean_accuracy", "value"] == pytest.approx(100 * stored["fgsm"]["clean_accuracy"], abs=1e-12)
    margins = m[m.measure == "margins"].set_index("key")
    assert margins.loc["train.mean", "value"] == stored["margins"]["train"]["mean"]


def test_load_model_reproduces_the_stored_accuracy(out):
    """An independent evaluation: the reloaded network's argmax on the test set, counted by hand."""
    folder, records = out
    data = load_dataset("gaussians2d")
    for record in records:
        model = badminima.load_model(folder, record["run_id"][:8])  # a unique prefix works too
        assert isinstance(model, torch.nn.Module) and not model.training
        with torch.no_grad():
            correct = sum(int(model(x[None]).argmax()) == int(y) for x, y in zip(data.x_test, data.y_test))
        assert 100 * correct / len(data.y_test) == pytest.approx(record["test_acc"], abs=1e-9)


def test_run_rejects_unknown_keywords(tmp_path):
    with pytest.raises(BadInput, match="unknown keyword 'recipes'"):
        badminima.run("bad-minima", out=tmp_path / "o", recipes={"lr": 0.1})
    with pytest.raises(BadInput, match="unknown field spec.recipe.momentm"):
        badminima.run("bad-minima", out=tmp_path / "o", recipe={"momentm": 0.5})
    assert not (tmp_path / "o").exists()


def test_runs_and_export(out, tmp_path, capsys):
    folder, records = out
    assert main(["runs", str(folder)]) == 0
    table = capsys.readouterr().out
    for r in records:
        line = next(line for line in table.splitlines() if line.startswith(r["run_id"]))
        assert " done " in line and f"{r['test_acc']:.3f}" in line
    assert main(["runs", str(folder), "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    for run_id, distance in _raw(folder, "SELECT r.id, p.distance_travelled FROM runs r JOIN phases p ON p.id = r.id"):
        assert listed[run_id]["distance_travelled"] == distance  # full precision
    res = badminima.load(folder)
    for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        assert main(["export", str(folder), "--format", fmt, "--to", str(tmp_path / fmt)]) == 0
        for name in res.TABLES:
            frame, back = getattr(res, name), read(tmp_path / fmt / f"{name}.{fmt}")
            assert back.shape == frame.shape and list(back.columns) == list(frame.columns)
        runs = read(tmp_path / fmt / "runs.csv" if fmt == "csv" else tmp_path / fmt / "runs.parquet")
        assert sorted(runs.test_acc) == sorted(r["test_acc"] for r in records)


def test_parquet_without_pyarrow_is_one_line(out, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    assert main(["export", str(out[0]), "--format", "parquet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["badminima: error: --format parquet needs pyarrow: pip install 'badminima[parquet]'"]


def test_no_results_is_one_line(tmp_path, capsys):
    for command in ("runs", "export"):
        assert main([command, str(tmp_path / "empty")]) == 2
        assert capsys.readouterr().err.startswith("badminima: error: no badminima results in")
    assert not (tmp_path / "empty").exists()


def test_import_is_light():
    code = ("import sys, badminima; heavy = [m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules]; "
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_the_example_runs(tmp_path):
    """examples/quickstart.py as CI runs it: a tiny config, its own checks (stored vs re-evaluated accuracy)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "BADMINIMA_EXAMPLE_OUT": str(tmp_path / "out")}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    runs = badminima.load(tmp_path / "out").runs
    assert len(runs) == 8 and set(runs.status) == {"done"}
    assert set(runs["data.name"]) == {"gaussians2d", "my_plugin:two_moons"}
