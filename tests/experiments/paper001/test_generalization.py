"""Paper 001 experiments: the 3-layer ConvNet, the normal init, the stop-at-reference-loss rule, the normalized
networks' predictions, the plotted least-squares line, and a tiny end-to-end family of networks."""
import math
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from scipy.stats import linregress
from torch import nn

from badminima.experiments import Context, train_grid
from badminima.experiments.paper001 import generalization as gen
from badminima.measures import normalized_network
from badminima.models import build_model, num_parameters
from badminima.report.figures import scatter_panel
from badminima.runs import Workspace, load_final, plan
from badminima.spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from badminima.store import Store
from badminima.train import evaluate

RECIPE = PhaseSpec(epochs=60, batch_size=64, lr=0.05, momentum=0.9, stop_at_100=False, stop_at_train_loss=0.05)
BASE = RunSpec(DataSpec("digits", train_size=300), ModelSpec("cnn3", width=8), InitSpec(), RECIPE)


def test_cnn3_is_appendix_L1_net():
    model = build_model("cnn3", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    convs = [m for m in model.net if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [(24, (5, 5), (2, 2), (2, 2))] * 2
    assert convs[0].bias is not None and convs[1].bias is None and model.net[-1].bias is None
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)) for m in model.modules())
    # 32 -> 16 -> 8; parameters: conv1 3*24*25 + 24, conv2 24*24*25, linear 24*8*8*10
    assert num_parameters(model) == 3 * 24 * 25 + 24 + 24 * 24 * 25 + 24 * 8 * 8 * 10
    signal = build_model("cnn3", (1, 40), 10, torch.zeros(1), torch.ones(1), width=64)
    assert isinstance(signal.net[0], nn.Conv1d) and signal.net[-1].in_features == 64 * 10  # 40 -> 20 -> 10


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(Store(tmp_path_factory.mktemp("paper001")), quiet=True)


def execute_run(spec, ws):
    return train_grid(Context(spec, [spec.seed], "cpu", ws, quiet=True), [spec], "test")[0]


def test_normal_init_draws_every_weight_from_the_given_normal(ws):
    spec = replace(BASE, model=ModelSpec("cnn3", width=24), init=InitSpec("normal", init_std=0.5),
                   recipe=replace(RECIPE, epochs=0))
    execute_run(spec, ws)
    init_phase = plan(spec)[0]
    model = load_final(ws.store, init_phase.id, ws.skeleton(spec))
    values = torch.cat([p.detach().flatten() for p in model.net.parameters()])
    assert len(values) > 10_000
    assert values.mean().item() == pytest.approx(0.0, abs=0.02)
    assert values.std().item() == pytest.approx(0.5, rel=0.03)
    # the random-init phase depends on the std; without a std, partial-random-labels shares the default one
    assert plan(replace(spec, init=InitSpec("normal", init_std=0.1)))[0].id != init_phase.id
    assert plan(replace(spec, init=InitSpec("partial-random-labels")))[0].id == plan(replace(spec, init=InitSpec()))[0].id


@pytest.fixture(scope="module")
def trained(ws):
    spec = BASE
    summary = execute_run(spec, ws)
    return spec, summary, load_final(ws.store, summary["run_id"], ws.skeleton(spec))


def test_training_stops_at_the_first_epoch_at_or_below_the_reference_loss(ws, trained):
    spec, summary, model = trained
    data = ws.dataset(spec)
    history = ws.store.epochs(summary["run_id"])
    assert ws.store.phase(summary["run_id"])["stop_reason"] == "reference train loss"
    assert len(history) < RECIPE.epochs
    loss = evaluate(model, data.x_train, data.y_train)[0]  # recomputed on the saved network
    assert loss <= 0.05 and history[-1]["clean_train_loss"] == pytest.approx(loss, rel=1e-6)
    assert all(h["clean_train_loss"] > 0.05 for h in history[:-1] if "clean_train_loss" in h)


def test_normalized_network_predicts_as_the_original(ws, trained):
    spec, _, model = trained
    data = ws.dataset(spec)
    normalized = normalized_network(model)
    with torch.no_grad():
        original, scaled = model(data.x_test).double(), normalized(data.x_test).double()
    assert torch.equal(original.argmax(1), scaled.argmax(1))
    conv1, conv2, linear = model.net[0], model.net[2], model.net[5]
    rho = (torch.cat([conv1.weight.flatten(), conv1.bias]).double().norm() * conv2.weight.double().norm()
           * linear.weight.double().norm()).item()  # prod of layer Frobenius norms, first bias with its layer
    assert torch.allclose(scaled * rho, original, rtol=1e-4, atol=1e-5)


def _records(n=7):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        family = gen.FAMILIES[i % 3]
        train, gap = 2.28 + 0.003 * i, rng.uniform(0.001, 0.003)
        out.append({"family": family, "value": 0.1 * i, "seed": 0, "reference_loss": 0.01, "reached_reference": True,
                    "train_labels": "random" if family == "random labels" else "true", "epochs": 10, "run_id": str(i),
                    "train_loss": rng.uniform(0.009, 0.01), "test_loss": rng.uniform(1, 3),
                    "normalized_train_loss": train, "normalized_test_loss": train + gap,
                    "train_error_percent": 0.0, "test_error_percent": rng.uniform(30, 40),
                    "product_of_normalization_factors": rng.uniform(500, 5000), "normalized_predictions_unchanged": True})
    out.append({**out[0], "normalized_train_loss": None})  # a diverged network is not plotted
    return out


def test_fitted_lines_are_computed_from_the_points_plotted(tmp_path):
    records = _records()
    fits = dict(gen.loss_fits(records))
    for panel, kind in zip(gen.loss_panels(records), ("unnormalized", "normalized")):
        fig, ax = plt.subplots()
        drawn_fit = scatter_panel(ax, panel)
        points = np.vstack([c.get_offsets() for c in ax.collections])  # what is on the axes
        line = next(ln for ln in ax.lines if ln.get_label().startswith("least squares"))
        plt.close(fig)
        reference = linregress(points[:, 0], points[:, 1])
        assert len(points) == 7
        assert np.allclose(line.get_ydata(), reference.slope * line.get_xdata() + reference.intercept, rtol=1e-9)
        residual = points[:, 1] - (reference.slope * points[:, 0] + reference.intercept)
        for fit in (drawn_fit, fits[f"{kind}, all networks"]):  # the legend's and the table's numbers
            assert fit["slope"] == pytest.approx(reference.slope, rel=1e-9)
            assert fit["intercept"] == pytest.approx(reference.intercept, rel=1e-9, abs=1e-12)
            assert fit["r2"] == pytest.approx(reference.rvalue ** 2, rel=1e-9)
            assert fit["rmse"] == pytest.approx(math.sqrt((residual ** 2).sum() / (7 - 2)), rel=1e-9)
    paths = gen.loss_render(tmp_path, None, records, "test scale")
    assert {p.name for p in paths} == {"normalized-loss.md", "normalized-loss.png"}
    assert f"{fits['normalized, all networks']['slope']:.4g}" in paths[0].read_text()


def test_family_end_to_end_on_a_tiny_protocol(ws, monkeypatch):
    tiny = gen.Protocol(model=ModelSpec("cnn3", width=8), train_size=300, recipe=RECIPE,
                        pretrain=PhaseSpec(epochs=3, batch_size=64, lr=0.05, momentum=0.9, stop_at_100=False),
                        init_stds=(0.05, 0.2), corrupted_fractions=(0.0, 1.0), random_labels_std=None,
                        random_labels_epochs=150, size_fractions=(0.5, 1.0))
    monkeypatch.setattr(gen, "protocol", lambda preset, dataset: tiny)
    from badminima.presets import base_spec

    ctx = Context(base_spec("cpu", "digits"), [0], "cpu", ws, quiet=True)
    records = gen.family_records(ctx)
    assert [(r["family"], r["value"]) for r in records] == [
        ("init std", 0.05), ("init std", 0.2), ("random pretraining", 0.0), ("random pretraining", 1.0),
        ("random labels", 1.0)]
    for r in records:
        assert r["status"] == "done" and r["normalized_predictions_unchanged"]
        assert r["normalized_train_loss"] < math.log(10) and r["train_size"] == 300
    rl = records[-1]
    assert rl["train_labels"] == "random" and rl["reached_reference"] and rl["train_loss"] <= 0.05
    # its train loss is on its own random labels: the stop rule's full pass over the pretraining set, at the
    # end of training, found the same loss; on the true labels the network is far from a fit
    pretrain_phase = ws.store.run(rl["run_id"])["phases"][1]
    recorded = ws.store.epochs(pretrain_phase)[rl["snapshot_epoch"] - 1]  # the chosen snapshot: the last epoch or the one before
    assert rl["snapshot_epoch"] in (rl["epochs"], rl["epochs"] - 1)
    assert recorded["clean_train_loss"] == pytest.approx(rl["train_loss"], rel=1e-6)
    spec = RunSpec(DataSpec("digits", train_size=300), tiny.model, seed=0)
    data = ws.dataset(spec)
    model = load_final(ws.store, rl["run_id"], ws.skeleton(spec))
    assert evaluate(model, data.x_train, data.y_train)[0] > 1.0
    header, rows = gen.loss_table(records)
    assert header[:3] == ["test vs train loss", "points", "slope"] and rows[0][1] == 5



# ---- issue 12, items 10-12 ----

def test_paper_preset_uses_the_appendix_b_width():
    assert gen.PAPER_PROTOCOL.model == ModelSpec("cnn3", width=64)
    model = build_model("cnn3", (3, 32, 32), 10, torch.zeros(3), torch.ones(3), width=64)
    assert num_parameters(model) == 3 * 64 * 25 + 64 + 64 * 64 * 25 + 64 * 8 * 8 * 10 == 148_224  # > 50 000 examples


def test_closest_snapshot_with_zero_training_error():
    rng = np.random.default_rng(1)
    candidates = [{"epoch": e, "train_loss": float(rng.uniform(0.001, 0.02)),
                   "train_error_percent": float(rng.choice([0.0, 0.0, 0.5]))} for e in range(1, 30)]
    reference = 0.01
    losses = np.array([c["train_loss"] for c in candidates])
    zero = np.array([c["train_error_percent"] == 0.0 for c in candidates])
    expected = np.flatnonzero(zero)[np.argmin(np.abs(losses[zero] - reference))]
    assert gen.closest_snapshot(candidates, reference)["epoch"] == candidates[expected]["epoch"]
    assert gen.closest_snapshot([{**c, "train_error_percent": 1.0} for c in candidates], reference) is None


def test_the_network_is_the_snapshot_closest_to_the_reference(ws):
    """With the reference just below the loss of the epoch before the stop, that earlier epoch is the closest:
    the network measured is that epoch's (rebuilt by a capped run, checked here by an independent evaluation)."""
    spec = replace(BASE, recipe=replace(RECIPE, stop_at_train_loss=0.01))
    summary = execute_run(spec, ws)
    stop = ws.store.phase(summary["run_id"])["epochs"]
    history = ws.store.epochs(summary["run_id"])
    before, after = history[stop - 2]["clean_train_loss"], history[stop - 1]["clean_train_loss"]
    reference = after + 0.7 * (before - after)
    moved = replace(spec, recipe=replace(RECIPE, stop_at_train_loss=reference))
    moved_summary = execute_run(moved, ws)
    assert ws.store.phase(moved_summary["run_id"])["epochs"] == stop  # the same trajectory, the same stop
    data = ws.dataset(spec)
    earlier = replace(spec, recipe=replace(RECIPE, epochs=stop - 1, stop_at_train_loss=None))  # what the rule rebuilds
    model = load_final(ws.store, execute_run(earlier, ws)["run_id"], ws.skeleton(spec)).eval()
    with torch.no_grad():
        logits = model(data.x_train).double()
    loss = float(torch.nn.functional.cross_entropy(logits, data.y_train))
    assert bool((logits.argmax(1) == data.y_train).all())  # 0% training error one epoch before the stop
    ctx = Context(moved, [0], "cpu", ws, quiet=True)
    measured = gen.measure_network(ctx, moved, moved_summary)
    assert measured["snapshot_epoch"] == stop - 1 and measured["zero_train_error"]
    assert measured["train_loss"] == pytest.approx(loss, rel=1e-6)
    assert abs(measured["train_loss"] - reference) < abs(after - reference)


def test_residuals_from_the_line_fitted_without_the_random_label_point():
    records = _records()
    residuals = gen.line_residuals(records)
    points = [(r, i) for i, r in enumerate(records) if r["normalized_train_loss"] is not None]
    fitted = [r for r, _ in points if r["family"] != "random labels"]
    slope, intercept = np.polyfit([r["normalized_train_loss"] for r in fitted], [r["normalized_test_loss"] for r in fitted], 1)
    for r, i in points:
        assert residuals[i] == pytest.approx(r["normalized_test_loss"] - (slope * r["normalized_train_loss"] + intercept),
                                             abs=1e-12)
    assert residuals[-1] is None  # the unmeasured network
    rows = gen.network_rows(records)
    column = gen.NETWORK_HEADER.index("residual from the line")
    assert rows[2][column] == f"{residuals[2]:.3g}" and records[2]["family"] == "random labels"
    assert "random-label network's" in gen.residual_note(records)


def test_norm_correlations_are_per_family():
    """Within each family the norm product rises with the test error, while the families' offsets make the
    pooled correlation negative: each family's Spearman correlation must be reported, computed here by scipy."""
    from scipy.stats import spearmanr

    from badminima.experiments.paper001 import norm_vs_error as nve

    rng = np.random.default_rng(2)
    records = []
    for family, shift in (("init std", 0.0), ("random pretraining", 1.0)):
        norms = np.sort(rng.uniform(1, 2, 6)) + 3 * shift
        for k, norm in enumerate(norms):
            records.append({"family": family, "value": k, "seed": 0, "train_labels": "true", "normalized_train_loss": 2.3,
                            "product_of_normalization_factors": float(norm), "test_error_percent": 40 - 20 * shift + k,
                            "test_loss": 1.0 + 0.1 * k - shift, "normalized_test_loss": 2.3 + 0.001 * k + rng.uniform(0, 1e-3)})
    rows = {row[0]: row for row in nve.norm_correlations(records)}
    assert set(rows) == {"init std", "random pretraining"}
    for family, row in rows.items():
        rs = [r for r in records if r["family"] == family]
        x = [r["product_of_normalization_factors"] for r in rs]
        assert row[1] == 6
        for value, key in zip(row[2:], ("test_error_percent", "test_loss", "normalized_test_loss")):
            assert value == f"{spearmanr(x, [r[key] for r in rs]).statistic:.3g}"
    pooled = spearmanr([r["product_of_normalization_factors"] for r in records], [r["test_error_percent"] for r in records])
    assert pooled.statistic < 0 < float(rows["init std"][2])


def test_norm_product_is_the_normalizations(trained):
    """The product of norms of norm-vs-error is the one the normalization divides by: the first layer's weights with
    its bias, then each weight matrix (numpy), not the weights alone."""
    spec, _, model = trained
    conv1, conv2, linear = (m.weight.detach().double().numpy() for m in (model.net[0], model.net[2], model.net[5]))
    bias = model.net[0].bias.detach().double().numpy()
    expected = np.linalg.norm(np.concatenate([conv1.ravel(), bias])) * np.linalg.norm(conv2) * np.linalg.norm(linear)
    x = torch.rand(5, *conv1.shape[1:2], 8, 8)
    values = gen.losses(model, x, torch.zeros(5, dtype=torch.long), x, torch.zeros(5, dtype=torch.long))
    assert values["product_of_normalization_factors"] == pytest.approx(expected, rel=1e-10)
    assert "product_of_frobenius_norms" not in values  # one product, not two
    from badminima.experiments.paper001 import norm_vs_error as nve
    assert nve.NORM == "product_of_normalization_factors"


def test_gap_vs_n_has_a_random_label_half(ws, monkeypatch):
    from badminima.experiments.paper001 import gap_vs_n
    from badminima.presets import base_spec

    recipe = replace(RECIPE, epochs=10)  # x 14 and x 7 on the subsets (steps per epoch); fitting is not the point
    tiny = gen.Protocol(model=ModelSpec("cnn3", width=8), train_size=300, recipe=recipe, pretrain=recipe,
                        init_stds=(), corrupted_fractions=(), random_labels_std=None, random_labels_epochs=5,
                        size_fractions=(0.05, 0.1))
    monkeypatch.setattr(gen, "protocol", lambda preset, dataset: tiny)
    ctx = Context(base_spec("cpu", "digits"), [0], "cpu", ws, quiet=True)
    records = gap_vs_n.gap_records(ctx)
    full = len(ws.dataset(RunSpec(DataSpec("digits"))).y_train)
    sizes = [round(0.05 * full), round(0.1 * full)]
    assert [(r["family"], r["value"]) for r in records] == [(labels, n) for n in sizes
                                                            for labels in ("true labels", "random labels")]
    for r in records:
        random = r["family"] == "random labels"
        assert r["status"] == "done" and r["train_labels"] == r["test_labels"] == ("random" if random else "true")
        spec = RunSpec(DataSpec("digits", train_size=r["value"]), tiny.model, seed=0)
        model = load_final(ws.store, r["run_id"], ws.skeleton(spec)).eval()
        data = ws.dataset(spec)
        if random:
            y_test = gen.random_test_labels(spec, data)
            assert 0.03 < float((y_test == data.y_test).double().mean()) < 0.2  # uniform labels agree 1 in 10
            with torch.no_grad():
                loss = float(torch.nn.functional.cross_entropy(model(data.x_test).double(), y_test))
            assert r["test_loss"] == pytest.approx(loss, rel=1e-6)
            assert r["test_error_percent"] > 70  # at chance on random test labels (Figure 1b)
        assert r["error_gap_percent"] == pytest.approx(r["test_error_percent"] - r["train_error_percent"])
    header, rows = gap_vs_n.gap_table(records)
    assert [row[0] for row in rows] == ["true labels", "true labels", "random labels", "random labels"]
    assert "error gap %" in header
