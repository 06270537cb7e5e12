"""Paper 004's Tables 2, 3, 8 over its models, negative weight decay, non-normalized data, the Table 5-7 rows and
Figure 3 (NTK over epochs): each run by name on a tiny configuration and checked against an independent
computation (numpy, explicit autograd Jacobians, the authors' update written out, the paper's printed values)."""
import copy
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from badminima.cli import main
from badminima.launch import parse_set, set_overrides
from badminima.errors import BadInput
from badminima.experiments.paper004 import local_minima, norm_bias, norm_bias_tables, ntk_evolution
from badminima.measuring import Target
from badminima.runs import Workspace, execute_phase, load_final, plan
from badminima.spec import DataSpec, ModelSpec, PhaseSpec, RunSpec, merge, non_default, run_id, validate
from badminima.store import Store
from badminima.train.loop import train_phase
from badminima.train.regularizers import penalty_of
from test_norm_bias import _authors as _authors_steps  # the authors' update, written out once

TINY_MODELS = {"ResNet-18": ModelSpec("resnet18", width=1), "DenseNet-40": ModelSpec("densenet40", width=2, depth=7),
               "MobileNetV2": ModelSpec("mobilenetv2", width=1), "ResNet-20 Fixup": ModelSpec("resnet20-fixup", width=2, depth=8),
               "MLP (4 layers)": ModelSpec("mlp", width=8, depth=3)}


def _run(argv, capsys):
    assert main(argv + ["--json", "--quiet", "--workers", "1"]) == 0
    return json.loads(capsys.readouterr().out)["records"]


# ---- non-normalized data ------------------------------------------------------------------------------------

def test_standardize_is_a_data_spec_option_that_keeps_old_ids(tmp_path):
    spec = RunSpec(DataSpec("digits", train_size=50), ModelSpec("mlp", width=4, depth=1))
    raw = replace(spec, data=replace(spec.data, standardize=False))
    assert "standardize" not in json.dumps(non_default(spec))  # a default spec's id is what it was before the field
    assert run_id(spec) == run_id(RunSpec(DataSpec("digits", train_size=50), ModelSpec("mlp", width=4, depth=1)))
    assert run_id(raw) != run_id(spec) and plan(raw)[0].id != plan(spec)[0].id
    assert merge(spec, set_overrides([parse_set("data.standardize=false")])) == raw
    ws = Workspace(Store(tmp_path), quiet=True)
    x = ws.dataset(spec).x_train
    per_channel = x.transpose(0, 1).reshape(1, -1).double().numpy()
    standardized, plain = ws.skeleton(spec), ws.skeleton(raw)
    assert float(standardized.mean) == pytest.approx(per_channel.mean(), rel=1e-5)
    assert float(standardized.std) == pytest.approx(per_channel.std(ddof=1), rel=1e-5)
    assert float(plain.mean) == 0 and float(plain.std) == 1
    plain.net.load_state_dict(standardized.net.state_dict())
    with torch.no_grad():  # the model without standardization applies its network to the inputs as they are
        assert torch.equal(plain(x[:5]), plain.net(x[:5]))
        assert not torch.allclose(standardized(x[:5]), plain(x[:5]))


# ---- negative weight decay ----------------------------------------------------------------------------------

def test_negative_weight_decay_is_the_authors_update_with_a_negative_coefficient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)).double()
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    spec = norm_bias.regularized(RunSpec(recipe=PhaseSpec(epochs=5, batch_size=1000, lr=0.1, momentum=0.9,
                                                          stop_at_100=False)),
                                 "negative weight decay", norm_bias.Coefficients(weight_decay=0.05))
    assert spec.recipe.weight_decay == 0 and spec.recipe.norm_bias == -0.05
    ours = copy.deepcopy(model)
    train_phase(ours, x, y, validate(spec).recipe, 0, None, [], penalty=penalty_of(spec.recipe))
    theirs = _authors_steps(model, x, y, 0.1, 0.9, -0.05, 0.0, 5)
    plain = _authors_steps(model, x, y, 0.1, 0.9, 0.0, 0.0, 5)
    assert torch.allclose(torch.cat([p.detach().flatten() for p in ours.parameters()]), theirs, rtol=1e-10, atol=1e-12)
    assert float(theirs.norm()) > float(plain.norm())  # it pushes the norm up
    with pytest.raises(BadInput, match="negative weight decay"):
        validate(replace(spec, recipe=replace(spec.recipe, norm_bias_mu=1.0)))


# ---- Tables 2, 3, 8 ------------------------------------------------------------------------------------------

def test_the_tables_models_and_coefficients_are_the_papers():
    """Section 3 and appendix A.5, as printed: models per table, mu^2 and norm-bias coefficients."""
    tables = norm_bias_tables.TABLES
    assert tables["norm-bias-table2"].models == ("ResNet-18", "DenseNet-40", "MobileNetV2")
    assert not tables["norm-bias-table2"].standardize and tables["norm-bias-table3"].standardize
    assert len(tables["norm-bias-table3"].models) == 5 and tables["norm-bias-table8"].dataset == "cifar100"
    printed = {("cifar10", "resnet18"): (2500, 0.005), ("cifar10", "densenet40"): (2500, 0.005),
               ("cifar10", "mobilenetv2"): (5000, 0.001), ("cifar10", "resnet20-fixup"): (1000, 0.0005),
               ("cifar100", "resnet18"): (8100, 0.005), ("cifar100", "densenet40"): (7500, 0.001),
               ("cifar100", "resnet20-fixup"): (2000, 0.0005)}
    for name, table in tables.items():
        for label, spec, c in norm_bias_tables.model_specs(table, RunSpec(), "paper"):
            assert spec.data.name == table.dataset and spec.data.standardize == table.standardize
            assert spec.recipe.epochs == 300 and spec.recipe.lr_milestones == (100, 175, 225, 275)
            if label != "MLP (4 layers)":
                assert (c.mu_squared, c.norm_bias) == printed[(table.dataset, spec.model.name)]
            assert label in table.published


@pytest.mark.parametrize("name,seeds", [("norm-bias-table2", "0,1"), ("norm-bias-table3", "0"),
                                        ("norm-bias-table8", "0")])
def test_norm_bias_tables_run_by_name(tmp_path, monkeypatch, capsys, name, seeds):
    monkeypatch.setattr(norm_bias_tables, "CPU_MODELS", TINY_MODELS)
    monkeypatch.setattr(norm_bias_tables, "CPU_RECIPE", replace(norm_bias_tables.CPU_RECIPE, epochs=2, lr_milestones=(1,)))
    recs = _run(["run", name, "--train-size", "64", "--out", str(tmp_path), "--seeds", seeds], capsys)
    table = norm_bias_tables.TABLES[name]
    assert [m for m in dict.fromkeys(r["model"] for r in recs)] == list(table.models)
    assert len(recs) == len(table.models) * 3 * len(seeds.split(","))
    ws = Workspace(Store(tmp_path), quiet=True)
    specs = {label: (spec, c) for label, spec, c in norm_bias_tables.model_specs(table, RunSpec(DataSpec(train_size=64)), "cpu")}
    for model in table.models:
        rows = {(r["regularizer"], r["seed"]): r for r in recs if r["model"] == model}
        spec, c = specs[model]
        wd_norms = [rows[("weight decay", s)]["parameter_norm"] for s in map(int, seeds.split(","))]
        mu = float(f"{1.1 * np.mean(wd_norms):.3g}")  # the heuristic, recomputed
        for (regularizer, seed), r in rows.items():
            run = replace(norm_bias.regularized(spec, regularizer, c, mu), seed=seed)
            assert r["run_id"] == plan(run)[-1].id and r["status"] == "done" and r["standardize"] == table.standardize
            final = load_final(ws.store, r["run_id"], ws.skeleton(run)).eval()
            data = ws.dataset(run)
            x = data.x_test
            if table.standardize:
                mean, std = data.x_train.mean(dim=(0, 2, 3)), data.x_train.std(dim=(0, 2, 3))
                x = (x - mean[None, :, None, None]) / std[None, :, None, None]
            with torch.no_grad():  # the network on the inputs as the table says: standardized or as they are
                acc = (final.net(x).argmax(1) == data.y_test).double().mean().item()
            assert r["test_acc"] == pytest.approx(100 * acc, abs=2e-3)
            norm = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in final.parameters()))
            assert r["parameter_norm"] == pytest.approx(norm, rel=1e-5)
            if regularizer == "norm-bias (absolute)":
                assert r["mu"] == mu and r["norm_bias"] == c.norm_bias and r["weight_decay"] == 0
            if regularizer == "weight decay":
                assert r["weight_decay"] == c.weight_decay
    found = norm_bias_tables.directions(recs)
    for model in table.models:
        acc = {reg: np.mean([r["test_acc"] for r in recs if r["model"] == model and r["regularizer"] == reg])
               for reg in norm_bias_tables.REGULARIZERS}
        assert found[model]["norm-bias > weight decay"] == (acc["norm-bias (absolute)"] > acc["weight decay"])
        assert found[model]["weight decay > none"] == (acc["weight decay"] > acc["none"])
    if seeds == "0,1":  # mean (± standard error) as the report prints it
        md = next((tmp_path / "report" / name).glob("*/*.md")).read_text()
        first = [r["test_acc"] for r in recs if r["model"] == table.models[0] and r["regularizer"] == "none"]
        assert f"{np.mean(first):.2f} (±{np.std(first, ddof=1) / np.sqrt(2):.2f})" in md
        assert "93.46 (±0.05)" in md  # the paper's Table 2, ResNet-18, no weight decay


def test_norm_bias_runs_the_negative_weight_decay_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(norm_bias, "CPU_RECIPE", replace(norm_bias.CPU_RECIPE, epochs=3, lr_milestones=(2,)))
    monkeypatch.setattr(norm_bias, "CPU_MODEL", {"width": 8, "depth": 2})
    recs = _run(["run", "norm-bias", "--train-size", "64", "--out", str(tmp_path)], capsys)
    rows = {r["regularizer"]: r for r in recs}
    assert set(rows) == set(norm_bias.REGULARIZERS)
    neg = rows["negative weight decay"]
    assert neg["norm_bias"] == -norm_bias.WEIGHT_DECAY and neg["weight_decay"] == 0 and neg["norm_bias_form"] == "absolute"
    assert neg["parameter_norm"] > rows["none"]["parameter_norm"] > rows["weight decay"]["parameter_norm"]


# ---- Tables 5-7 rows -----------------------------------------------------------------------------------------

def test_every_row_of_tables_1_and_5_to_7_is_runnable_and_the_paper_preset_picks_them():
    for (dataset, model), (_, published) in local_minima.TABLES.items():
        assert set(published) <= set(local_minima.ROWS)  # every printed row has a runnable init
        spec = RunSpec(DataSpec(dataset), ModelSpec(model))
        rows = local_minima.rows_for(spec, "paper")
        assert rows == [r for r in local_minima.ROWS if r in published]
    assert local_minima.rows_for(RunSpec(DataSpec("cifar100"), ModelSpec("resnet18")), "paper") == [
        "default", "zero", "bias+20", "bias U(-100,100)"]
    assert len(local_minima.rows_for(RunSpec(), "cpu")) == len(local_minima.ROWS) == 10
    assert "lemma1" not in local_minima.rows_for(RunSpec(DataSpec("cifar10"), ModelSpec("resnet50")), "paper")
    momentum = {row: spec.recipe.momentum for row, spec in local_minima._cells(RunSpec(), [0], "cpu")}
    assert momentum["bias U(-10,10)"] == 0.9 and momentum["bias U(-10,10) NM"] == 0


def test_the_new_rows_inits(tmp_path):
    """Bias+10 adds 10 to every bias; U(-a, a) draws every bias in [-a, a] with std a / sqrt(3); weights untouched.
    (All rows run by name in test_backpropaganda's local-minima end-to-end test.)"""
    ws = Workspace(Store(tmp_path), quiet=True)
    base = RunSpec(DataSpec("mnist1d", train_size=50), ModelSpec("mlp", width=2000, depth=1),
                   recipe=PhaseSpec(epochs=0, stop_at_100=False))
    models = {}
    for row in ("default", "bias+10", "bias U(-5,5)", "bias U(-10,10)", "bias U(-100,100)"):
        spec = replace(base, init=local_minima.ROWS[row][0])
        execute_phase(spec, 0, ws)
        models[row] = load_final(ws.store, plan(spec)[0].id, ws.skeleton(spec)).net
    default = models["default"]
    assert torch.equal(models["bias+10"][1].weight, default[1].weight)
    assert torch.allclose(models["bias+10"][1].bias, default[1].bias + 10)
    for row, a in (("bias U(-5,5)", 5), ("bias U(-10,10)", 10), ("bias U(-100,100)", 100)):
        b = models[row][1].bias.detach().double()
        assert float(b.abs().max()) <= a and float(b.std()) == pytest.approx(a / 3 ** 0.5, rel=0.05)
        assert torch.equal(models[row][1].weight, default[1].weight)


# ---- Figure 3 ------------------------------------------------------------------------------------------------

def _brute_force_ntk(model, x):
    """Phi[i, j, k, l] from one autograd backward pass per (input, logit) (equation 4), float64."""
    model = copy.deepcopy(model).double().eval()
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(x)):
        out = model(x[i:i + 1].double())[0]
        for k in range(len(out)):
            rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(out[k], params, retain_graph=True)]))
    jac = torch.stack(rows).reshape(len(x), -1, rows[0].numel())
    return torch.einsum("ikp,jlp->ijkl", jac, jac)


def test_ntk_evolution_runs_by_name_and_matches_brute_force_kernels(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ntk_evolution, "ARCHITECTURES", {"ConvNet": ("cnn2d", 2, (1,), (1,)),
                                                         "2-layer MLP": ("mlp", 1, (6,), (6,))})
    monkeypatch.setattr(ntk_evolution, "CPU_EPOCHS", (1, 3))
    recs = _run(["run", "ntk-evolution", "--train-size", "80", "--out", str(tmp_path)], capsys)
    assert [(r["architecture"], r["epoch"]) for r in recs] == [("ConvNet", 0), ("ConvNet", 1), ("ConvNet", 3),
                                                              ("2-layer MLP", 0), ("2-layer MLP", 1), ("2-layer MLP", 3)]
    store = Store(tmp_path)
    ws = Workspace(store, quiet=True)
    grid = {(label, spec.recipe.epochs): spec for label, _, spec in ntk_evolution._cells(
        RunSpec(DataSpec(train_size=80)), [0], "cpu")}
    for label in ("ConvNet", "2-layer MLP"):
        spec = grid[(label, 3)]
        target = Target(store, plan(spec)[-1].id, [p.id for p in plan(spec)], spec, ws)
        x, _ = target.subset("train", 25, "ntk")
        k0 = _brute_force_ntk(target.initial_model, x)
        for r in (r for r in recs if r["architecture"] == label):
            if r["epoch"] == 0:
                model = target.initial_model
            else:
                model = load_final(store, plan(grid[(label, r["epoch"])])[-1].id, ws.skeleton(spec)).eval()
            k = _brute_force_ntk(model, x)
            a, b = (k - k.mean()).flatten(), (k0 - k0.mean()).flatten()
            assert r["ntk_norm"] == pytest.approx(float(k.norm()), rel=1e-4)
            assert r["correlation"] == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=1e-4, abs=1e-6)
            norm = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()))
            assert r["parameter_norm"] == pytest.approx(norm, rel=1e-5)
        assert recs[[r["architecture"] for r in recs].index(label)]["correlation"] == 1.0
        # the run capped at 1 epoch is the first epoch of the run capped at 3: same losses, epoch by epoch
        short, long = (store.epochs(plan(grid[(label, e)])[-1].id) for e in (1, 3))
        assert short[0]["train_loss"] == long[0]["train_loss"] and short[0]["test_acc"] == long[0]["test_acc"]
    store.close()
