"""Paper 004 ("Truth or backpropaganda"): Lemma 1's network, norm-bias, RankMin/RankMax, adversarial training,
the bias/zero/He inits, the WideResNet variants, and tiny end-to-end runs of its experiments - each checked
against an independent computation (scikit-learn, numpy SVDs, explicit operators, brute-force Jacobians)."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from badminima.cli import main
from badminima.experiments import Context, train_grid
from badminima.experiments.paper004 import local_minima, ntk_width
from badminima.experiments.paper004 import rank as rank_exp
from badminima.measures.activity import activity
from badminima.measuring import Target
from badminima.models import build_model
from badminima.runs import Workspace, load_final, plan
from badminima.spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec, run_id
from badminima.store import Store
from badminima.train.adversarial import pgd_perturbation
from badminima.train.rank_control import (apply_rank_control, project_circular_operator, project_matrix,
                                          relative_thresholds)

DATA = DataSpec("mnist1d", train_size=400)
LINEAR_L2 = 1e-3
# Training from Lemma 1's init must keep the loss within this relative distance of the linear classifier's.
LEMMA1_TOLERANCE = 1e-3
GD = PhaseSpec(epochs=0, batch_size=10 ** 6, lr=1e-5, momentum=0.9, stop_at_100=False)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(Store(tmp_path_factory.mktemp("paper004")), quiet=True)


def execute_run(spec, ws):
    return train_grid(Context(spec, [spec.seed], "cpu", ws, quiet=True), [spec], "test")[0]


def _flat_inputs(ws, spec):
    """The standardized, flattened training inputs (float64), computed from the data, not the model."""
    data = ws.dataset(spec)
    mean, std = data.standardization()
    return ((data.x_train - mean.reshape(1, -1, 1)) / std.reshape(1, -1, 1)).flatten(1).double().numpy(), data


def _sklearn_logits(z, y, l2):
    """Multinomial logistic regression by scikit-learn: 0.5 ||W||^2 + C sum_i CE_i, i.e. mean CE + l2/2 ||W||^2 for
    C = 1/(l2 n); logits centered over the classes (the intercepts are defined up to a common shift)."""
    clf = LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-12, max_iter=20000).fit(z, y)
    logits = z @ clf.coef_.T + clf.intercept_
    return logits - logits.mean(1, keepdims=True)


def _cross_entropy(logits, y):
    return float(F.cross_entropy(torch.as_tensor(logits), torch.as_tensor(y)))


def _hidden_preactivations(model, x):
    """Every hidden Linear layer's output (the ReLUs' inputs), by walking the MLP by hand."""
    out, h = [], (x - model.mean) / model.std
    for m in model.net:
        h = m(h)
        if isinstance(m, nn.Linear) and m is not model.net[-1]:
            out.append(h)
    return out


@pytest.fixture(scope="module")
def lemma1_run(ws):
    spec = RunSpec(DATA, ModelSpec("mlp", width=16, depth=3), InitSpec("lemma1", linear_l2=LINEAR_L2),
                   replace(GD, epochs=200))
    assert execute_run(spec, ws)["status"] == "done"
    z, data = _flat_inputs(ws, spec)
    y = data.y_train.numpy()
    init = load_final(ws.store, plan(spec)[0].id, ws.skeleton(spec)).eval()
    final = load_final(ws.store, plan(spec)[-1].id, ws.skeleton(spec)).eval()
    return spec, data, z, y, init, final, _sklearn_logits(z, y, LINEAR_L2)


def test_lemma1_network_equals_the_linear_classifier_on_every_training_point(lemma1_run):
    spec, data, z, y, init, _, linear = lemma1_run
    with torch.no_grad():
        out = init(data.x_train).double().numpy()
        hidden = _hidden_preactivations(init, data.x_train)
    assert np.abs((out - out.mean(1, keepdims=True)) - linear).max() < 2e-3 * np.abs(linear).max()
    assert (out.argmax(1) == linear.argmax(1)).mean() > 0.995
    assert len(hidden) == 3 and all(float(h.min()) >= 0.99 for h in hidden)  # c = max |A_1 z| + 1: all >= 1
    assert activity(init, data.x_train)["always_active"] == 1.0
    # not every point of the input space: test inputs need not keep all units on, the construction is on Omega
    assert plan(spec)[0].id != plan(replace(spec, init=InitSpec()))[0].id


def test_gradient_descent_from_lemma1_stays_at_the_linear_classifiers_loss(lemma1_run):
    _, data, z, y, init, final, linear = lemma1_run
    with torch.no_grad():
        loss_init = float(F.cross_entropy(init(data.x_train).double(), data.y_train))
        loss_final = float(F.cross_entropy(final(data.x_train).double(), data.y_train))
    linear_loss = _cross_entropy(linear, y)
    unregularized = _cross_entropy(_sklearn_logits(z, y, 1e-7), y)  # the best any affine map does
    assert loss_init == pytest.approx(linear_loss, rel=1e-4)
    assert abs(loss_final - linear_loss) <= LEMMA1_TOLERANCE * linear_loss
    assert loss_final >= unregularized - 1e-4  # all units still on: the net is affine on the training set
    assert activity(final, data.x_train)["always_active"] == 1.0
    assert (final.net[1].weight - init.net[1].weight).abs().max() > 0  # it did train


@pytest.mark.parametrize("form,mu", [("squared", 1.0), ("squared", 4.0), ("absolute", 1.0), ("absolute", 4.0)])
def test_norm_bias_step_matches_autograd_of_its_formula(ws, form, mu):
    coefficient = 1e-3 if form == "squared" else 0.05  # ||theta||^2 is about 6.5 at init: mu = 1 below, 4 above
    recipe = PhaseSpec(epochs=1, batch_size=10 ** 6, lr=0.1, stop_at_100=False, norm_bias=coefficient,
                       norm_bias_mu=mu, norm_bias_form=form)
    spec = RunSpec(DataSpec("mnist1d", train_size=64), ModelSpec("mlp", width=8, depth=1), InitSpec(), recipe)
    execute_run(spec, ws)
    start = load_final(ws.store, plan(spec)[0].id, ws.skeleton(spec))
    end = load_final(ws.store, plan(spec)[-1].id, ws.skeleton(spec))
    data = ws.dataset(spec)
    params = list(start.parameters())
    ce_grad = torch.autograd.grad(F.cross_entropy(start(data.x_train), data.y_train), params)
    theta = torch.cat([p.detach().double().flatten() for p in params]).requires_grad_(True)
    gap = theta @ theta - mu ** 2
    assert (gap > 0) == (mu < 2)
    formula = coefficient * gap ** 2 if form == "squared" else coefficient / 2 * gap.abs()  # written out again
    (penalty_grad,) = torch.autograd.grad(formula, theta)
    closed = (4 * coefficient * gap if form == "squared" else coefficient * gap.sign()) * theta
    assert torch.allclose(penalty_grad, closed.detach(), rtol=1e-10, atol=1e-12)
    expected = theta.detach() - recipe.lr * (torch.cat([g.double().flatten() for g in ce_grad]) + penalty_grad)
    got = torch.cat([p.detach().double().flatten() for p in end.parameters()])
    assert float(penalty_grad.norm()) > 0.01 * float(torch.cat([g.flatten() for g in ce_grad]).norm())
    assert torch.allclose(got, expected, atol=2e-6)
    assert plan(replace(spec, recipe=replace(recipe, norm_bias=0.0)))[-1].id != plan(spec)[-1].id


def test_rankmin_and_rankmax_change_singular_values_as_specified():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 5))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    t = 0.5 * s[0]
    low = project_matrix(torch.as_tensor(w), "min", t).numpy()
    high = project_matrix(torch.as_tensor(w), "max", t).numpy()
    assert np.allclose(u.T @ low @ vt.T, np.diag(np.where(s < t, 0.0, s)), atol=1e-10)  # same singular vectors
    assert np.allclose(u.T @ high @ vt.T, np.diag(np.minimum(s, t)), atol=1e-10)
    assert 0 < (s < t).sum() < len(s)


def _circular_operator(kernel, n):
    """The matrix of x -> circular cross-correlation with `kernel` (out, in, k, k) on n x n inputs, entry by entry."""
    cout, cin, k, _ = kernel.shape
    op = np.zeros((cout * n * n, cin * n * n))
    for o in range(cout):
        for i in range(n):
            for j in range(n):
                for c in range(cin):
                    for a in range(k):
                        for b in range(k):
                            op[(o * n + i) * n + j, (c * n + (i + a) % n) * n + (j + b) % n] += kernel[o, c, a, b]
    return op


@pytest.mark.parametrize("mode", ["min", "max"])
def test_convolution_rank_projection_changes_the_operators_singular_values(mode):
    n = 5
    kernel = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = np.linalg.svd(_circular_operator(kernel.numpy(), n), compute_uv=False)
    t = 0.6 * s[0]
    full = project_circular_operator(kernel, (n, n), mode, t).numpy()
    s_new = np.linalg.svd(_circular_operator(full, n), compute_uv=False)
    target = np.sort(np.where(s < t, 0.0, s) if mode == "min" else np.minimum(s, t))[::-1]
    assert np.allclose(s_new, target, atol=1e-9)


@pytest.mark.parametrize("mode,threshold", [("min", 0.3), ("max", 0.5)])
def test_rank_fine_tuning_ends_projected_with_thresholds_from_its_start(ws, mode, threshold):
    pretrain = PhaseSpec(epochs=2, batch_size=64, lr=0.1, momentum=0.9, stop_at_100=False)
    recipe = PhaseSpec(epochs=2, batch_size=64, lr=0.01, stop_at_100=False, rank_mode=mode, rank_threshold=threshold)
    spec = RunSpec(DataSpec("mnist1d", train_size=200), ModelSpec("mlp", width=24, depth=2),
                   InitSpec("natural-pretraining", pretrain=pretrain), recipe)
    execute_run(spec, ws)
    start = load_final(ws.store, plan(spec)[1].id, ws.skeleton(spec))
    end = load_final(ws.store, plan(spec)[-1].id, ws.skeleton(spec))
    for a, b in zip([m for m in start.net if isinstance(m, nn.Linear)], [m for m in end.net if isinstance(m, nn.Linear)]):
        t = threshold * np.linalg.svd(a.weight.detach().double().numpy(), compute_uv=False)[0]
        s = np.linalg.svd(b.weight.detach().double().numpy(), compute_uv=False)
        if mode == "min":
            assert not ((s > 1e-4) & (s < t - 1e-4)).any() and (s < 1e-4).any()
        else:
            assert s[0] <= t * (1 + 1e-5)
    # the pretraining phase is shared with the un-projected run
    assert plan(spec)[1].id == plan(replace(spec, recipe=replace(recipe, rank_mode="none")))[1].id


def test_apply_rank_control_on_a_convolution_needs_its_input_size():
    model = build_model("cnn2d", (1, 8, 8), 10, torch.zeros(1), torch.ones(1), width=4)
    with pytest.raises(ValueError, match="sample"):
        apply_rank_control(model, "max", {name: 1.0 for name in ("net.0", "net.2", "net.5")})
    apply_rank_control(model, "max", {name: 1.0 for name in ("net.0", "net.2", "net.5")}, torch.rand(1, 1, 8, 8))
    # ResNet-18 on 8x8 inputs: strided convolutions, 1x1 shortcuts and 3x3 kernels on 1x1 maps
    resnet, x = build_model("resnet18", (1, 8, 8), 10, torch.zeros(1), torch.ones(1), width=4), torch.rand(2, 1, 8, 8)
    thresholds = relative_thresholds(resnet, 0.5, x[:1])
    assert len(thresholds) == 21 and all(t > 0 for t in thresholds.values())
    apply_rank_control(resnet, "min", thresholds, x[:1])
    assert torch.isfinite(resnet.eval()(x)).all()


def test_adversarial_batches_stay_in_the_budget_and_raise_the_loss(ws):
    spec = RunSpec(DataSpec("digits", train_size=100), ModelSpec("mlp", width=32, depth=1))
    data = ws.dataset(spec)
    model = ws.skeleton(spec)
    perturb = pgd_perturbation(PhaseSpec(adversarial_steps=7), data)
    x, y = data.x_train[:50], data.y_train[:50]
    adv = perturb(model, x, y, torch.Generator().manual_seed(0))
    assert float((adv - x).abs().max()) <= 8 / 255 + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    with torch.no_grad():
        assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)
    assert pgd_perturbation(PhaseSpec(), data) is None


def test_bias_zero_and_he_inits(ws):
    base = RunSpec(DataSpec("mnist1d", train_size=100), ModelSpec("mlp", width=300, depth=1), InitSpec(), GD)
    models = {}
    for name, init in {"default": InitSpec(), "shift": InitSpec("bias-shift", bias_shift=20.0),
                       "uniform": InitSpec("bias-uniform", bias_uniform=50.0), "zero": InitSpec("zero"),
                       "he": InitSpec("he-uniform")}.items():
        spec = replace(base, init=init)
        execute_run(spec, ws)
        models[name] = load_final(ws.store, plan(spec)[0].id, ws.skeleton(spec))
    default, shift, uniform, he = (models[k].net for k in ("default", "shift", "uniform", "he"))
    assert torch.equal(shift[1].weight, default[1].weight) and torch.allclose(shift[1].bias, default[1].bias + 20)
    assert torch.allclose(shift[3].bias, default[3].bias + 20)
    b = uniform[1].bias.detach()
    assert float(b.abs().max()) < 50 and float(b.std()) == pytest.approx(50 / 3 ** 0.5, rel=0.15)
    assert all(float(p.detach().abs().max()) == 0 for p in models["zero"].parameters())
    w = he[1].weight.detach()
    assert float(w.abs().max()) <= (6 / 40) ** 0.5 and float(w.std()) == pytest.approx((2 / 40) ** 0.5, rel=0.05)
    assert float(he[1].bias.detach().abs().max()) == 0
    assert plan(replace(base, init=InitSpec("bias-shift")))[0].id == plan(base)[0].id  # a zero shift shares it


def test_wide_resnet_variants():
    shape, mean, std = (1, 8, 8), torch.zeros(1), torch.ones(1)
    models = {n: build_model(n, shape, 10, mean, std, width=1).net for n in ("wrn", "wrn-nobn", "wrn-noskip")}
    assert sum(isinstance(m, nn.BatchNorm2d) for m in models["wrn"].modules()) == 1 + 2 * 6
    assert not any(isinstance(m, nn.BatchNorm2d) for m in models["wrn-nobn"].modules())
    x = torch.randn(2, 16, 8, 8)
    for name, expected in (("wrn", x), ("wrn-noskip", torch.zeros_like(x))):
        block = models[name].layers[1].eval()  # 16 -> 16 channels, stride 1: identity shortcut
        with torch.no_grad():
            block.conv2.weight.zero_()
            assert torch.allclose(block(x), expected)


def _brute_force_ntk(model, x):
    """Phi[i, j, k, l] from one backward pass per (input, logit) (equation 4)."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(x)):
        out = model(x[i:i + 1])[0]
        for k in range(len(out)):
            grads = torch.autograd.grad(out[k], params, retain_graph=True)
            rows.append(torch.cat([g.flatten() for g in grads]).double())
    jac = torch.stack(rows).reshape(len(x), -1, rows[0].numel())
    return torch.einsum("ikp,jlp->ijkl", jac, jac)


def test_ntk_width_records_match_a_brute_force_kernel(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ntk_width, "ARCHITECTURES", {"2-layer MLP": ("mlp", 1, (8, 32), (8,)),
                                                     "WideResNet": ("wrn", 10, (1, 2), (1,))})
    monkeypatch.setattr(ntk_width, "CPU_RECIPE", replace(ntk_width.CPU_RECIPE, epochs=2))
    assert main(["run", "ntk-width", "--train-size", "100", "--seeds", "0", "--out", str(tmp_path), "--json",
                 "--quiet"]) == 0
    recs = json.loads(capsys.readouterr().out)["records"]
    assert [(r["architecture"], r["width"]) for r in recs] == [("2-layer MLP", 8), ("2-layer MLP", 32),
                                                               ("WideResNet", 1), ("WideResNet", 2)]
    assert all(r["inputs"] == 25 for r in recs)
    store = Store(tmp_path)
    grid = ntk_width._cells(RunSpec(DataSpec("mnist1d", train_size=100)), [0], "cpu")
    for index in (0, 3):  # the MLP (the linear-layer Gram path) and the WideResNet with batch norm (the Jacobian path)
        spec, rec = grid[index][1], recs[index]
        target = Target(store, rec["run_id"], [p.id for p in plan(spec)], spec, Workspace(store, quiet=True))
        x, _ = target.subset("train", 25, "ntk")
        k0, k1 = _brute_force_ntk(target.initial_model.eval(), x), _brute_force_ntk(target.model.eval(), x)
        a, b = k1.flatten() - k1.mean(), k0.flatten() - k0.mean()
        assert float((k1 - k0).norm() / k0.norm()) == pytest.approx(rec["relative_change"], rel=1e-4)
        assert float((a @ b) / (a.norm() * b.norm())) == pytest.approx(rec["correlation"], rel=1e-4)
        assert 0 < rec["relative_change"] and -1 <= rec["correlation"] < 1
    # the verdict reads the trends of these records (the trend rule itself: test_ntk_width_verdict)
    md = next(tmp_path.glob("report/ntk-width/*/ntk-width.md")).read_text()
    line = ntk_width.verdict(recs)
    assert line in md and "WideResNet width 1->2" in line and "2-layer MLP width 8->32" in line
    store.close()


def _ntk_record(label, width, seed, change, corr):
    return {"architecture": label, "width": width, "seed": seed, "parameters": width, "relative_change": change,
            "correlation": corr, "distance_travelled": 0.1, "test_acc": 90.0, "status": "done"}


def test_ntk_width_verdict():
    mlp = [_ntk_record("2-layer MLP", w, s, c + s / 100, r) for w, c, r in ((16, 3.0, 0.8), (1024, 0.1, 0.99))
           for s in range(3)]
    wrn = [_ntk_record("WideResNet", w, s, c + s / 10, r - s / 10) for w, c, r in ((1, 0.9, 0.6), (4, 1.5, 0.3))
           for s in range(3)]
    line = ntk_width.verdict(mlp + wrn)
    assert line.startswith("NTK vs width (n = 3 seeds")
    assert "relative change: reversal HOLDS" in line and "WideResNet width 1->4: 1 -> 1.6 (grows)" in line
    assert "correlation: reversal HOLDS" in line and "2-layer MLP width 16->1024: 0.8 -> 0.99 (grows)" in line
    # seed spreads that overlap: no trend, so no reversal
    wrn[3:] = [_ntk_record("WideResNet", 4, s, 0.95 + s / 10, 0.3) for s in range(3)]
    line = ntk_width.verdict(mlp + wrn)
    assert "relative change: reversal does NOT hold" in line and "WideResNet width 1->4: 1 -> 1.05 (flat within the seed spread)" in line
    assert "correlation: reversal HOLDS" in line
    assert "not tested" in ntk_width.verdict(mlp)
    assert ntk_width.trend([1.0], [2.0]) == "grows" and ntk_width.trend([1.0, 3.0], [2.0]) == "flat within the seed spread"


def test_local_minima_and_rank_run_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(local_minima, "CPU", {"width": 16, "steps": 400, "examples": None, "lanczos_hvps": 60,
                                              "power_iterations": 20})
    out = str(tmp_path)
    assert main(["run", "local-minima", "--train-size", "300", "--out", out, "--json", "--quiet"]) == 0
    recs = {r["row"]: r for r in json.loads(capsys.readouterr().out)["records"]}
    assert set(recs) == set(local_minima.ROWS)
    lemma = recs["lemma1"]
    assert lemma["init_always_active"] == 1.0 and lemma["always_active"] == 1.0
    assert lemma["loss"] <= lemma["init_loss"] and lemma["gradient_norm"] < lemma["init_gradient_norm"]  # it moved
    assert lemma["init_max_eigenvalue"] > 100 * recs["default"]["init_max_eigenvalue"]  # sharp (Remark 2.2)
    assert lemma["init_max_eigenvalue_converged"] and lemma["examples"] == 300  # one set: the whole training set
    assert recs["default"]["loss"] < lemma["loss"]  # a worse minimum than the default init reaches
    # zero init: only the output bias ever gets a gradient, so GD fits the label frequencies and nothing else
    labels = Workspace(Store(tmp_path), quiet=True).dataset(RunSpec(DataSpec("mnist1d", train_size=300))).y_train
    prior = torch.bincount(labels, minlength=10).double() / len(labels)
    assert recs["zero"]["loss"] == pytest.approx(float(-(prior * prior.log()).sum()), abs=1e-3)
    assert recs["zero"]["init_loss"] == pytest.approx(np.log(10), abs=1e-5)  # records keep 6 digits
    monkeypatch.setattr(rank_exp, "CPU_PRETRAIN", replace(rank_exp.CPU_PRETRAIN, epochs=3, lr_milestones=()))
    monkeypatch.setattr(rank_exp, "CPU_MODEL", {"width": 32, "depth": 2})
    assert main(["run", "rank", "--train-size", "300", "--seeds", "0", "--out", out, "--json", "--quiet"]) == 0
    ranks = {r["method"]: r for r in json.loads(capsys.readouterr().out)["records"]}
    assert set(ranks) == {"natural", "RankMin", "RankMax"}
    mean = {m: np.mean(list(r["effective_rank"].values())) for m, r in ranks.items()}
    assert mean["RankMin"] < mean["natural"] < mean["RankMax"]
    assert all(0 <= r["pgd_8"] <= r["test_acc"] + 1e-9 for r in ranks.values())
    # the key quantity against numpy: ||s||_1 / ||s||_2 of the stored inner weights; RankMax's last projection
    # (after epoch 6 of 8) still bounds them after the retraining at lr 1e-5
    ws = Workspace(Store(tmp_path), quiet=True)
    grid = dict(rank_exp._specs(RunSpec(DataSpec("mnist1d", train_size=300)), [0], "cpu", False))
    spec = grid["RankMax"]
    assert ranks["RankMax"]["run_id"] == run_id(spec)
    start = load_final(ws.store, plan(spec)[1].id, ws.skeleton(spec))
    end = load_final(ws.store, plan(spec)[-1].id, ws.skeleton(spec))
    assert list(ranks["RankMax"]["effective_rank"]) == ["net.3"]  # depth 2: the one hidden-to-hidden layer
    s0 = np.linalg.svd(start.net[3].weight.detach().double().numpy(), compute_uv=False)
    s = np.linalg.svd(end.net[3].weight.detach().double().numpy(), compute_uv=False)
    assert ranks["RankMax"]["effective_rank"]["net.3"] == pytest.approx(s.sum() / np.linalg.norm(s), rel=1e-5)
    assert s[0] <= rank_exp.RANKMAX_THRESHOLD * s0[0] * 1.01 and (s0 > rank_exp.RANKMAX_THRESHOLD * s0[0]).sum() >= 1
