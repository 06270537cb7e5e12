"""`badminima estimate`: it measures on synthetic inputs (no dataset files needed) and projects the grid's phases,
each counted once, at their epoch caps."""
import json

import pytest

from badminima.cli import main
from badminima.estimate import CLEAN_PASSES, FILE_SHAPES, Rates, Shape, projection
from badminima.experiments.paper000.heuristics import cells
from badminima.presets import base_spec


def test_table2_grid_by_hand():
    specs = cells(base_spec("paper", "cifar10"), [0, 1])
    assert len(specs) == 2 * 8 * 2
    train, test, shape, classes = FILE_SHAPES["cifar10"]
    rates = {key: Rates(1e-3, 1e-4, 0.5) for key in ((128, True, 0), (128, False, 0))}
    rows = projection(specs, Shape(train, test, shape, classes, "image", True, "test"), rates)
    kinds = [r["kind"] for r in rows]
    # per seed: one random init shared by all 16 runs, one pretraining shared by the 8 adversarial runs, 16 trainings
    assert kinds.count("random-init") == 2 and kinds.count("pretrain") == 2 and kinds.count("train") == 32
    pretrain = next(r for r in rows if r["kind"] == "pretrain")
    n = 5 * 50_000  # R = 5 replicas of the training set
    epoch = n * 1e-3 + 10_000 * 1e-4 + 0.5
    assert pretrain["epochs"] == 350 and pretrain["examples"] == n
    assert pretrain["seconds"] == pytest.approx(350 * epoch + (CLEAN_PASSES * n + n + 10_000) * 1e-4)
    trained = next(r for r in rows if r["kind"] == "train")
    assert trained["seconds"] == pytest.approx(350 * (50_000e-3 + 1.0 + 0.5) + (CLEAN_PASSES * 50_000 + 60_000) * 1e-4)
    init = next(r for r in rows if r["kind"] == "random-init")
    assert init["seconds"] == pytest.approx(60_000 * 1e-4)


def test_paper_estimate_runs_without_cifar_files(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nowhere near a dataset
    code = main(["estimate", "heuristics", "--preset", "paper", "--dataset", "cifar10", "--model", "cnn2d",
                 "--steps", "1", "--epochs", "2", "--pretrain-epochs", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "16 runs" in out and "18 distinct phases" in out and "no files read" in out
    assert "device-hours" in out and "projected:" in out
    assert list(tmp_path.iterdir()) == []  # it writes nothing


def test_json_and_bad_steps(capsys):
    code = main(["estimate", "heuristics", "--preset", "paper", "--model", "cnn2d", "--steps", "1", "--json",
                 "--seeds", "0,1"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["runs"] == 32 and record["phases"]["pretrain"]["phases"] == 2
    assert record["device_hours"] > 0 and "no files read" in record["measured_on"]
    assert main(["estimate", "heuristics", "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("badminima: error: --steps") and err.count("\n") == 1
