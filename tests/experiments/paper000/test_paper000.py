"""Paper 000's experiments: grid expansion, reuse of shared runs, and values checked independently."""
import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors.numpy import load_file

from badminima.cli import main
from badminima.experiments import get_experiment
from badminima.experiments.paper000 import toy
from badminima.presets import base_spec
from badminima.runs import plan
from badminima.spec import RECIPES, recipe_name
from badminima.store import Store

TINY = ["--train-size", "300", "--width", "32", "--epochs", "6", "--pretrain-epochs", "4", "-R", "1", "--seeds", "0",
        "--workers", "1", "--quiet"]


def test_grid_expansion():
    base = base_spec("cpu")
    heur = get_experiment("heuristics").cells(base, [0, 1])
    assert len(heur) == 8 * 2 * 2
    assert {(s.init.name, recipe_name(s.recipe), s.seed) for s in heur} == {
        (i, r, seed) for i in ("default", "adversarial") for r in RECIPES for seed in (0, 1)}
    rep = get_experiment("replication").cells(base, [3])
    assert sorted({s.init.replication_factor for s in rep if s.init.name == "adversarial"}) == [1, 2, 3]
    assert {recipe_name(s.recipe) for s in rep} == {"vanilla", "sota"} and {s.seed for s in rep} == {3}
    for name in ("curves", "distances", "norms", "fgsm"):  # the same four settings as bad-minima
        assert [plan(s)[-1].id for s in get_experiment(name).cells(base, [0])] == \
            [plan(s)[-1].id for s in get_experiment("bad-minima").cells(base, [0])]
    toy_cells = get_experiment("toy").cells(base, [0, 1])
    assert len(toy_cells) == 6 and all(s.data.name == "gaussians2d" and s.recipe.batch_size == 10 for s in toy_cells)


def _phase_stamps(out):
    store = Store(out)
    stamps = {r[0]: r[1] for r in store.conn.execute("SELECT id, updated FROM phases")}
    store.close()
    return stamps


def test_experiments_reuse_runs_of_each_other(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["run", "bad-minima", *TINY, "--out", out]) == 0
    before = _phase_stamps(out)
    for name in ("curves", "distances", "norms", "fgsm"):
        assert main(["run", name, *TINY, "--out", out, "--json"]) == 0
    assert _phase_stamps(out) == before  # nothing trained again
    assert main(["run", "heuristics", *TINY, "--out", out]) == 0
    after = _phase_stamps(out)
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 12  # 6 new recipes x 2 inits
    capsys.readouterr()


def test_distances_match_the_checkpoints(tmp_path, capsys):
    out = tmp_path
    assert main(["run", "distances", *TINY, "--out", str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["records"][0]
    specs = get_experiment("distances").cells(base_spec("cpu"), [0])
    store = Store(out)
    runs = [store.run(r[0]) for r in store.conn.execute("SELECT id FROM runs")]
    store.close()

    def weights(phase_id):
        tensors = load_file(str(out / "phases" / phase_id / "final.safetensors"))
        names = sorted(k for k in tensors if k.startswith("model/net."))  # parameters (no standardization buffers)
        return np.concatenate([tensors[k].ravel().astype(np.float64) for k in names])

    adv = next(r for r in runs if r["spec"]["init"]["name"] == "adversarial")
    w0r, w0a = weights(adv["phases"][0]), weights(adv["phases"][1])
    expected = np.linalg.norm(w0a - w0r) / np.linalg.norm(w0r)
    assert row["W0R->W0A"] == pytest.approx(expected, rel=1e-9)
    assert len(specs) == 4


def test_toy_figure_on_a_short_schedule(tmp_path, monkeypatch, capsys):
    short = replace(toy.TOY, init=replace(toy.TOY.init, pretrain=replace(toy.PRETRAIN, epochs=40, patience=None)),
                    recipe=replace(toy.RECIPE, epochs=20))
    monkeypatch.setattr(toy, "TOY", short)
    monkeypatch.setattr(toy, "RECIPE", short.recipe)
    assert main(["run", "toy", "--out", str(tmp_path), "--json", "--quiet"]) == 0
    recs = json.loads(capsys.readouterr().out)["records"]
    assert [r["setting"][0] for r in recs] == ["a", "b", "c", "d"]
    for r in recs:
        grid = np.asarray(r["grid"])
        assert grid.ndim == 2 and set(np.unique(grid)) <= {0, 1}
        assert r["class_regions"] >= 1 and r["boundary_length"] >= 0
    assert recs[0]["train_acc"] >= 95.0 and recs[0]["test_acc"] >= 95.0  # two well-separated Gaussians
    assert recs[1]["labels"] != recs[0]["labels"]  # panel b is drawn with its random labels
    figure, = (tmp_path / "report" / "toy").glob("*/toy.png")  # the one experiment set's folder
    assert figure.stat().st_size > 10000
