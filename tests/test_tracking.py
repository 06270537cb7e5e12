"""`--track mlflow`: a sweep logged to a real MLflow tracking store (SQLite, local) and read back through
MLflow's client, against the results database read with sqlite3: one MLflow run per phase, params = the
phase's spec fields, metrics per epoch with step = epoch, final results; no duplicates on a re-run, and a
phase missing from MLflow logged by the next --track run."""
import json
import sqlite3

import pytest

from badminima.cli import main

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]' or '.[test]')")

SWEEP = ["run", "bad-minima", "--train-size", "200", "--width", "16", "--epochs", "3", "--pretrain-epochs", "2",
         "-R", "1", "--seeds", "0", "--workers", "1", "--json", "--quiet"]


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _text(v):  # MLflow keeps params as strings
    return v if isinstance(v, str) else json.dumps(v)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    argv = [*SWEEP, "--out", str(folder / "out"), "--track", "mlflow", "--tracking-uri", uri]
    assert main(argv) == 0
    con = sqlite3.connect(folder / "out" / "results.sqlite")
    con.row_factory = sqlite3.Row
    phases = {r["id"]: dict(r) for r in con.execute("SELECT * FROM phases")}
    epochs = {}
    for r in con.execute("SELECT phase_id, epoch, metrics FROM epochs ORDER BY epoch"):
        epochs.setdefault(r[0], []).append((r[1], json.loads(r[2])))
    runs = {r[0]: (json.loads(r[1]), json.loads(r[2])) for r in con.execute("SELECT id, spec, phases FROM runs")}
    con.close()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("badminima/bad-minima")
    return argv, client, experiment.experiment_id, phases, epochs, runs


def _by_phase(client, experiment_id):
    found = {}
    for run in client.search_runs([experiment_id]):
        found.setdefault(run.data.tags["badminima.phase_id"], []).append(run)
    return found


def test_every_phase_is_one_mlflow_run_with_its_spec_epochs_and_results(tracked):
    _, client, experiment_id, phases, epochs, runs = tracked
    logged = _by_phase(client, experiment_id)
    assert set(logged) == set(phases) and len(phases) == 6  # 1 random init, 1 pretraining, 4 trainings
    kinds = {pid: p["kind"] for pid, p in phases.items()}
    for pid, row in phases.items():
        (run,) = logged[pid]
        assert run.info.status == "FINISHED"
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["badminima.phase_kind"] == row["kind"] and tags["badminima.status"] == "done"
        assert tags["badminima.stop_reason"] == row["stop_reason"]
        assert tags["badminima.run_ids"].split(",") == sorted(r for r, (_, ps) in runs.items() if pid in ps)

        # params: the phase's spec fields (a train phase: the whole run spec; others: what they depend on)
        spec = _flat(json.loads(row["spec"]))
        assert params.pop("phase") == row["kind"] == spec.pop("phase")
        if row["kind"] == "train":
            assert params == {k: _text(v) for k, v in spec.items()}
            # a train phase's id is its run's id, its spec the run's spec (plus the fingerprint it was computed with)
            assert {k: v for k, v in spec.items() if not k.startswith("fingerprint.")} == _flat(runs[pid][0])
            assert any(k.startswith("fingerprint.") for k in params)
        else:
            keep = ("data.", "model.", "seed") + (("init.",) if row["kind"] == "pretrain" else ())
            assert params == {k: _text(v) for k, v in spec.items() if k.startswith(keep)}
            assert "recipe.lr" not in params and ("init.pretrain.epochs" in params) == (row["kind"] == "pretrain")

        # per-epoch metrics, step = epoch
        rows = epochs.get(pid, [])
        assert len(rows) == {"random-init": 0, "pretrain": 2, "train": 3}[row["kind"]]
        for key in ("train_loss", "train_acc", "test_acc", "lr"):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            assert history == [(e, pytest.approx(m[key], rel=1e-12)) for e, m in rows]

        # final results
        assert metrics["final_test_acc"] == pytest.approx(row["test_acc"], rel=1e-12)
        assert metrics["final_train_acc"] == pytest.approx(row["train_acc"], rel=1e-12)
        assert metrics["final_epochs"] == row["epochs"]
        assert metrics["final_distance_travelled"] == pytest.approx(row["distance_travelled"], rel=1e-12)
    assert sorted(kinds.values()).count("train") == 4


def test_a_rerun_logs_no_duplicate_and_fills_a_gap(tracked):
    argv, client, experiment_id, phases, _, _ = tracked
    train = next(pid for pid, p in phases.items() if p["kind"] == "train")
    (gone,) = _by_phase(client, experiment_id)[train]
    client.delete_run(gone.info.run_id)  # as if the tracking store had failed while this phase finished
    assert main(argv) == 0  # nothing left to train
    logged = _by_phase(client, experiment_id)
    assert set(logged) == set(phases) and all(len(runs) == 1 for runs in logged.values())
    assert logged[train][0].info.run_id != gone.info.run_id
    assert len(client.get_metric_history(logged[train][0].info.run_id, "train_loss")) == 3


def test_tracking_flags_bad_input(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main([*SWEEP, "--out", str(out), "--tracking-uri", "sqlite:///x.db"]) == 2
    assert capsys.readouterr().err == "badminima: error: --tracking-uri needs --track mlflow\n"
    assert main([*SWEEP, "--out", str(out), "--track", "mlflow", "--tracking-uri", "nosuchscheme://x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("badminima: error: --tracking-uri nosuchscheme://x: ") and err.count("\n") == 1
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as if mlflow were not installed
    assert main([*SWEEP, "--out", str(out), "--track", "mlflow"]) == 2
    assert "pip install 'badminima[mlflow]'" in capsys.readouterr().err
    assert not out.exists()  # nothing written
