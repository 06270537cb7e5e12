"""init-std (paper 001 Figure 6): the verdict's rank correlation against one computed here from numpy ranks, the
verdict on rising, flat and unfitted records, and the experiment run by name on a tiny protocol, its test errors
recomputed from the stored networks."""
import numpy as np
import pytest
import torch

from badminima.cli import main
from badminima.experiments.paper001 import generalization as gen
from badminima.experiments import list_experiments
from badminima.experiments.paper001 import init_std
from badminima.models import build_model
from badminima.runs import Workspace, load_final, plan
from badminima.spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from badminima.store import Store


def _records(errors: dict[float, list[float]], fitted: bool = True) -> list[dict]:
    return [{"family": "init std", "value": s, "init_std": s, "seed": k, "epochs": 10, "reached_reference": True,
             "zero_train_error": fitted, "train_error_percent": 0.0, "test_error_percent": e, "test_loss": 1.0 + e / 100,
             "product_of_normalization_factors": 100 * s, "reference_loss": 0.01}
            for s, es in errors.items() for k, e in enumerate(es)]


def _spearman_by_ranks(x, y):
    """Pearson correlation of average ranks (ties share their mean rank)."""
    def ranks(v):
        v = np.asarray(v, dtype=float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(1, len(v) + 1)
        for value in np.unique(v):  # ties: the mean of their ranks
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def test_rising_errors_hold_and_rho_matches_ranks():
    recs = _records({0.01: [34.0, 35.0, 36.0], 0.1: [37.0, 38.5, 36.5], 0.3: [44.0, 46.0, 45.0]})
    t = init_std.trend(recs)
    assert t["rho"] == pytest.approx(_spearman_by_ranks([r["init_std"] for r in recs],
                                                         [r["test_error_percent"] for r in recs]), rel=1e-12)
    assert t["means"] == pytest.approx([35.0, 37.333333333333336, 45.0])
    line = init_std.verdict(recs)
    assert line.startswith("direction HOLDS") and "every network at 0% training error: yes" in line


def test_flat_overlapping_or_unfitted_errors_do_not_hold():
    flat = _records({0.01: [34.7, 33.7, 35.7], 0.1: [37.6, 36.2, 35.8], 0.3: [33.8, 36.2, 28.7]})  # normalized-loss's
    assert init_std.verdict(flat).startswith("direction DOES NOT HOLD")
    overlap = _records({0.01: [34.0, 35.0, 41.0], 0.1: [37.0, 38.0, 39.0], 0.3: [40.0, 44.0, 45.0]})  # rises, ends overlap
    assert init_std.trend(overlap)["rho"] > 0 and init_std.verdict(overlap).startswith("direction DOES NOT HOLD")
    unfitted = _records({0.01: [34.0, 35.0, 36.0], 0.3: [44.0, 46.0, 45.0]}, fitted=False)
    line = init_std.verdict(unfitted)
    assert line.startswith("direction DOES NOT HOLD") and "no (6 not)" in line


TINY = gen.Protocol(model=ModelSpec("cnn3", width=8), train_size=300,
                    recipe=PhaseSpec(epochs=150, batch_size=64, lr=0.05, momentum=0.9, stop_at_100=False,
                                     stop_at_train_loss=0.01),
                    pretrain=PhaseSpec(epochs=1), init_stds=(0.05, 0.2), corrupted_fractions=(), random_labels_std=None,
                    random_labels_epochs=1, size_fractions=())


def test_run_by_name_on_a_tiny_protocol(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(init_std, "protocol", lambda preset, dataset: TINY)
    assert "init-std" in list_experiments()
    assert main(["list", "experiments"]) == 0 and "init-std" in capsys.readouterr().out
    assert main(["run", "init-std", "--dataset", "digits", "--seeds", "0", "--out", str(tmp_path), "--quiet"]) == 0
    assert "direction" in capsys.readouterr().out
    store = Store(tmp_path)
    (entry,) = store.experiments()
    ws = Workspace(store, quiet=True)
    assert [(r["init_std"], r["seed"]) for r in entry["records"]] == [(0.05, 0), (0.2, 0)]
    for r in entry["records"]:
        spec = RunSpec(DataSpec("digits", train_size=300), TINY.model, InitSpec("normal", init_std=r["init_std"]),
                       TINY.recipe, seed=0)
        if r["snapshot_epoch"] != r["epochs"]:  # the epoch before the stop: the capped run that rebuilt it
            spec = gen._capped(spec, False, r["snapshot_epoch"])
        assert plan(spec)[-1].id == r["run_id"] or r["snapshot_epoch"] != r["epochs"]
        model = load_final(store, plan(spec)[-1].id, build_model("cnn3", (1, 8, 8), 10, torch.zeros(1), torch.ones(1),
                                                                 width=8)).eval()
        data = ws.dataset(spec)
        with torch.no_grad():
            wrong = (model(data.x_test).argmax(1) != data.y_test).double().mean().item()
        assert r["test_error_percent"] == pytest.approx(100 * wrong, abs=1e-9)
        assert r["train_error_percent"] == 0.0 and r["zero_train_error"]
    store.close()
