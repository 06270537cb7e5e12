"""Paper 000's protocol: whole schedules with `epoch_100`, Algorithm 1's stop rule, statistics over
seeds, the direction verdict, and non-finite phases recorded as diverged (issue 11, items 1-3, 10)."""
import json
import statistics
from dataclasses import replace

import numpy as np
import pytest
import torch

from badminima.cli import main
from badminima.executors import InProcess
from badminima.executors.scheduler import execute
from badminima.experiments.paper000.bad_minima import summary_rows, verdict
from badminima.presets import base_spec
from badminima.report.stats import over_seeds
from badminima.runs import Workspace
from badminima.spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from badminima.store import Store
from badminima.train import evaluate, train_phase
from badminima.train.callbacks import epoch_100, stop_rule


def _separable(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).long()


def test_full_schedule_runs_every_epoch_and_records_the_first_100_percent_epoch():
    x, y = _separable()
    phase = PhaseSpec(epochs=40, lr=0.5, batch_size=16, stop_at_100=False)
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    brute = []  # an independent record: the clean accuracy of every epoch, measured by hand

    def every_epoch(state):
        with torch.no_grad():
            brute.append((state.epoch, (state.model(x).argmax(1) == y).float().mean().item()))

    result = train_phase(model, x, y, phase, 0, None, [every_epoch, stop_rule(phase, x, y)])
    assert result.epochs == 40 and result.stop_reason == "epoch cap" and len(result.history) == 40
    first = next(e for e, acc in brute if acc == 1.0)
    assert first < 40  # the data are separable: the fit comes well before the schedule ends
    assert epoch_100(result.history) == first


def test_stop_at_100_still_ends_the_phase_when_asked():
    x, y = _separable()
    phase = PhaseSpec(epochs=40, lr=0.5, batch_size=16, stop_at_100=True)
    torch.manual_seed(0)
    result = train_phase(torch.nn.Linear(2, 2), x, y, phase, 0, None, [stop_rule(phase, x, y)])
    assert result.stop_reason == "100% train accuracy" and result.epochs == epoch_100(result.history) < 40


def test_patience_fires_only_after_the_last_learning_rate_decay():
    x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    phase = PhaseSpec(epochs=100, lr=1e-9, lr_milestones=(5, 10), patience=3)  # nothing can improve
    result = train_phase(torch.nn.Linear(2, 2), x, y, phase, 0, None, [stop_rule(phase, x, y)])
    # epochs 11..13 are the first window after the decay at 10; the 14th shows no improvement over it
    assert result.stop_reason == "no improvement" and result.epochs == 14


def test_pretraining_stops_at_the_authors_threshold_when_asked():
    x, y = _separable(200, seed=1)
    y[:1] = 1 - y[:1]  # one unfittable example for a linear model: 99.5% at best
    strict = PhaseSpec(epochs=30, lr=0.5, batch_size=16, full_fit_accuracy=1.0)
    lenient = replace(strict, full_fit_accuracy=0.99)
    torch.manual_seed(0)
    a = train_phase(torch.nn.Linear(2, 2), x, y, strict, 0, None, [stop_rule(strict, x, y)])
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    b = train_phase(model, x, y, lenient, 0, None, [stop_rule(lenient, x, y)])
    assert a.epochs == 30 and a.stop_reason == "epoch cap"
    assert b.stop_reason == "100% train accuracy" and b.epochs < 30 and evaluate(model, x, y)[1] >= 0.99


def test_presets_train_whole_schedules_and_pretrain_until_the_fit():
    for preset, dataset in (("cpu", "mnist1d"), ("paper", "cifar10"), ("paper", "cinic10")):
        spec = base_spec(preset, dataset)
        assert spec.recipe.stop_at_100 is False
        pre = spec.init.pretrain
        assert pre.stop_at_100 and pre.full_fit_accuracy == 1.0
        assert pre.lr_milestones and pre.epochs > max(pre.lr_milestones)
    paper = base_spec("paper", "cifar10")
    assert (paper.init.pretrain.epochs, paper.init.pretrain.lr_milestones) == (350, (150, 250))


def test_over_seeds_matches_numpy():
    values = [61.2, 58.9, 63.4, None, float("nan")]
    s = over_seeds(values)
    kept = np.array([61.2, 58.9, 63.4])
    assert s["n"] == 3 and s["min"] == kept.min() and s["max"] == kept.max()
    assert s["mean"] == pytest.approx(kept.mean()) and s["std"] == pytest.approx(kept.std(ddof=1))
    assert over_seeds([5.0])["std"] is None and over_seeds([])["n"] == 0


def _rec(init, recipe, seed, test, train=100.0, e100=10):
    return {"init": init, "recipe": recipe, "seed": seed, "test_acc": test, "train_acc": train, "epoch_100": e100,
            "run_id": f"{init}{recipe}{seed}", "epochs": 50, "distance_travelled": 0.5, "status": "done"}


def test_summary_rows_and_verdict():
    recs = [_rec("random", "vanilla", s, t) for s, t in enumerate((62.0, 60.5, 63.0))]
    recs += [_rec("adversarial", "vanilla", s, t) for s, t in enumerate((55.0, 58.0, 56.0))]
    rows = {(r[0], r[1]): r for r in summary_rows(recs)}
    assert rows["random", "vanilla"][2:7] == [3, 60.5, pytest.approx(statistics.fmean([62.0, 60.5, 63.0])), 63.0,
                                              pytest.approx(statistics.stdev([62.0, 60.5, 63.0]))]
    assert "HOLDS" in verdict(recs)
    overlap = recs[:3] + [_rec("adversarial", "vanilla", 0, 61.0)] + recs[4:]
    assert "does NOT hold" in verdict(overlap)  # best adversarial 61.0 >= worst random 60.5
    unfitted = recs[:5] + [_rec("adversarial", "vanilla", 2, 50.0, train=99.9, e100=None)]
    assert "does NOT hold" in verdict(unfitted) and "NO" in verdict(unfitted)


def _tiny(recipe: PhaseSpec) -> RunSpec:
    return RunSpec(DataSpec("gaussians2d"), ModelSpec("mlp", width=8), InitSpec(), recipe)


def test_a_phase_that_ends_non_finite_is_diverged_and_writes_no_nan(tmp_path):
    # lr 1e38: the single step of epoch 1 sends the weights to +-inf, after the epoch's (finite) loss was taken
    spec = _tiny(PhaseSpec(epochs=1, batch_size=1000, lr=1e38, stop_at_100=False))
    record, = execute([spec], Workspace(Store(tmp_path), quiet=True), InProcess())
    assert record["status"] == "diverged" and record["test_acc"] is None
    text = json.dumps(record, allow_nan=False)  # no NaN anywhere
    assert "NaN" not in text


def test_cli_flag_switches_the_stop_rule_and_seeds_default_to_three(tmp_path, capsys):
    args = ["run", "bad-minima", "--dataset", "gaussians2d", "--epochs", "12", "--pretrain-epochs", "2", "-R", "1",
            "--batch-size", "10", "--workers", "1", "--quiet", "--json"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert sorted({r["seed"] for r in records}) == [0, 1, 2] and len(records) == 12
    assert all(r["epochs"] == 12 for r in records)  # whole schedule by default
    vanilla = [r for r in records if r["init"] == "random" and r["recipe"] == "vanilla"]
    assert all(r["epoch_100"] is not None and r["epoch_100"] < 12 for r in vanilla)  # separable toy: fits early
    assert main(args + ["--stop-at-100", "--seeds", "0", "--out", str(tmp_path / "b")]) == 0
    stopped = {(r["init"], r["recipe"]): r for r in json.loads(capsys.readouterr().out)["records"]}
    first = next(r for r in vanilla if r["seed"] == 0)
    assert stopped["random", "vanilla"]["epochs"] == first["epoch_100"]  # the same run, ended at its first fit
