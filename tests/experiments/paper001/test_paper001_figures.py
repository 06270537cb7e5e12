"""Paper 001's figures 1, 2c-d, 3, 9-12, 14 and 20, each run by name on a tiny configuration, with its key quantity
checked against an independent computation on the stored networks (numpy / scipy)."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import linregress, spearmanr

from badminima.cli import main
from badminima.runs import Workspace, load_final, pretraining_data
from badminima.spec import RunSpec, from_dict
from badminima.store import Store

FLAGS = ["--seeds", "0", "--workers", "1", "--quiet", "--json"]
NEW = ("error-vs-n", "error-vs-params", "normalized-loss-resnet", "l1-normalized-loss", "loss-independence",
       "normalized-loss-bn", "error-vs-normalized-loss", "output-histogram")


def run(capsys, out, name, *argv) -> list[dict]:
    assert main(["run", name, *argv, *FLAGS, "--out", str(out)]) == 0
    return json.loads(capsys.readouterr().out)["records"]


def network(out, run_id):
    """(spec, model in eval mode, its dataset) of a stored run."""
    store = Store(out)
    ws = Workspace(store, quiet=True)
    spec = from_dict(RunSpec, store.run(run_id)["spec"])
    model = load_final(store, run_id, ws.skeleton(spec)).eval()
    return spec, model, ws


def logits(model, x) -> np.ndarray:
    with torch.no_grad():
        return model(x).double().numpy()


def cross_entropy(z: np.ndarray, y) -> float:
    y = np.asarray(y)
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def error_percent(z: np.ndarray, y) -> float:
    return 100.0 * float(np.mean(z.argmax(1) != np.asarray(y)))


def layer_weights(model) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of every conv/linear layer of a sequential net, in order, as numpy arrays."""
    return [(m.weight.detach().double().numpy(), None if m.bias is None else m.bias.detach().double().numpy())
            for m in model.net if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))]


def norm_product(layers, norm, divisor=1.0) -> float:
    """prod_k ||W_k|| / divisor, the first layer's bias counted with its weights (paper 001 section 2)."""
    def size(a):
        return np.abs(a).sum() if norm == "l1" else np.sqrt((a ** 2).sum())
    first = np.concatenate([layers[0][0].ravel()] + ([layers[0][1]] if layers[0][1] is not None else []))
    return float(np.prod([size(first) / divisor] + [size(w) / divisor for w, _ in layers[1:]]))


def test_every_new_experiment_is_listed(capsys):
    assert main(["list", "experiments"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in NEW)


def test_error_vs_n_by_name(tmp_path, capsys):
    records = run(capsys, tmp_path, "error-vs-n", "--dataset", "digits", "--epochs", "1", "--width", "8")
    sizes = [34, 67, 168, 337, 674, 1348]  # digits' 1348 training examples x 2.5%, 5%, 12.5%, ... 100%, rounded
    assert [(r["family"], r["value"]) for r in records] == [(lab, n) for n in sizes
                                                            for lab in ("true labels", "random labels")]
    assert {r["epochs"] for r in records} == {1}  # a fixed schedule: every size trains the same epochs
    # cnn5 of width 8 on (1, 8, 8): conv 1*8*9 + 8, three convs 8*8*9, linear 8*1*1*10 (8 -> 4 -> 2 -> 1 -> 1)
    assert {r["parameters"] for r in records} == {8 * 9 + 8 + 3 * 8 * 8 * 9 + 8 * 10}
    for r in (records[-2], records[1]):  # true labels at N = 4000, random labels at N = 100
        spec, model, ws = network(tmp_path, r["run_id"])
        data = ws.dataset(spec)
        if r["family"] == "random labels":
            x, y = pretraining_data(spec, ws)
            assert float((y == data.y_train).double().mean()) < 0.3  # trained on its random labels
        else:
            x, y = data.x_train, data.y_train
        assert len(y) == r["value"] == r["train_size"]
        assert r["train_error_percent"] == pytest.approx(error_percent(logits(model, x), y), abs=1e-9)
        if r["family"] == "true labels":
            assert r["test_error_percent"] == pytest.approx(error_percent(logits(model, data.x_test), data.y_test),
                                                            abs=1e-9)
        assert r["error_gap_percent"] == pytest.approx(r["test_error_percent"] - r["train_error_percent"])


def test_error_vs_params_by_name(tmp_path, capsys):
    records = run(capsys, tmp_path, "error-vs-params", "--epochs", "1", "--train-size", "300")
    assert [r["value"] for r in records] == [4, 8, 16, 32, 64]
    for r in records:  # cnn5 on (1, 40): conv 1*w*3 + w, three convs 3*w*w, linear 3w*10 (40 -> 20 -> 10 -> 5 -> 3)
        w = r["value"]
        assert r["parameters"] == (3 * w + w) + 3 * (3 * w * w) + 3 * w * 10
    assert min(r["parameters"] for r in records) < 300 < max(r["parameters"] for r in records)
    spec, model, ws = network(tmp_path, records[-1]["run_id"])
    data = ws.dataset(spec)
    assert records[-1]["test_error_percent"] == pytest.approx(error_percent(logits(model, data.x_test), data.y_test))
    assert len(data.y_train) == 300


def test_fixed_schedule_figures_9_10_14_by_name(tmp_path, capsys):
    tiny = ["--epochs", "3", "--pretrain-epochs", "1", "--train-size", "150", "--width", "16"]
    records = run(capsys, tmp_path, "loss-independence", *tiny)
    assert {r["family"] for r in records} == {"init std", "random pretraining"}  # no random-label network
    assert all(r["epochs"] == 3 and r["snapshot_epoch"] == 3 for r in records)  # no stop rule: the end of the schedule
    store = Store(tmp_path)
    phases = {row[0] for row in store.conn.execute("SELECT id FROM phases")}
    store.close()
    for name in ("l1-normalized-loss", "error-vs-normalized-loss"):  # the same runs, nothing trained again
        assert run(capsys, tmp_path, name, *tiny) == records
    store = Store(tmp_path)
    assert {row[0] for row in store.conn.execute("SELECT id FROM phases")} == phases
    store.close()
    for r in (records[1], records[-2]):
        spec, model, ws = network(tmp_path, r["run_id"])
        data = ws.dataset(spec)
        layers = layer_weights(model)
        z_train, z_test = logits(model, data.x_train), logits(model, data.x_test)
        l1 = norm_product(layers, "l1", 100.0)  # Figure 9: ||W_k||_1 / 100
        assert r["l1_normalized_train_loss"] == pytest.approx(cross_entropy(z_train / l1, data.y_train), rel=1e-6)
        assert r["l1_normalized_test_loss"] == pytest.approx(cross_entropy(z_test / l1, data.y_test), rel=1e-6)
        assert r["plain_l1_normalized_train_loss"] == pytest.approx(
            cross_entropy(z_train / norm_product(layers, "l1"), data.y_train), rel=1e-9)
        fro = norm_product(layers, "fro")
        assert r["normalized_train_loss"] == pytest.approx(cross_entropy(z_train / fro, data.y_train), rel=1e-6)
        assert r["train_loss"] == pytest.approx(cross_entropy(z_train, data.y_train), rel=1e-5)
    from badminima.experiments.paper001 import fixed_schedule as fs

    line = linregress([r["l1_normalized_train_loss"] for r in records], [r["l1_normalized_test_loss"] for r in records])
    _, rows = fs.l1_table(records)
    assert rows[0][2] == f"{line.slope:.4g}" and rows[0][4] == f"{line.rvalue ** 2:.6g}"
    fro_line = linregress([r["normalized_train_loss"] for r in records], [r["normalized_test_loss"] for r in records])
    residuals = [r["normalized_test_loss"] - fro_line.slope * r["normalized_train_loss"] - fro_line.intercept
                 for r in records]
    expected = spearmanr([r["train_loss"] for r in records], residuals).statistic
    assert fs.residual_correlation(records) == pytest.approx(expected, abs=1e-9)
    pooled = spearmanr([r["normalized_train_loss"] for r in records], [r["test_error_percent"] for r in records])
    assert fs.error_correlations(records)[-1] == ["all networks", len(records), f"{pooled.statistic:.3g}"]


def test_normalized_loss_bn_by_name(tmp_path, capsys, monkeypatch):
    from badminima.experiments.paper001 import other_architectures as oa

    protocol = oa.bn_protocol  # the random-label network's epoch cap (600) has no flag: 20 here
    monkeypatch.setattr(oa, "bn_protocol", lambda preset, data: replace(protocol(preset, data), random_labels_epochs=20))
    records = run(capsys, tmp_path, "normalized-loss-bn", "--epochs", "2", "--pretrain-epochs", "1",
                  "--train-size", "100", "--width", "8")
    assert [r["family"] for r in records] == ["init std"] * 4 + ["random pretraining"] * 5 + ["random labels"]
    rl = records[-1]
    assert rl["train_labels"] == rl["test_labels"] == "random" and rl["test_error_percent"] > 70  # Figure 12's RL
    for r in (records[2], records[6]):
        spec, model, ws = network(tmp_path, r["run_id"])
        data = ws.dataset(spec)
        net = model.net
        convs = [m for m in net if isinstance(m, torch.nn.Conv1d)]
        bns = [m for m in net if isinstance(m, torch.nn.BatchNorm1d)]
        assert len(convs) == len(bns) == 4
        sizes = []
        for i, (conv, bn) in enumerate(zip(convs, bns)):  # batch norm folded by hand: w a, beta - mu a
            a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
            w = conv.weight.detach().double().numpy() * a[:, None, None]
            b = bn.bias.detach().double().numpy() - bn.running_mean.double().numpy() * a
            sizes.append(np.linalg.norm(np.concatenate([w.ravel(), b])) if i == 0 else np.linalg.norm(w))
        sizes.append(np.linalg.norm(net[-1].weight.detach().double().numpy()))
        product = float(np.prod(sizes))
        assert r["product_of_normalization_factors"] == pytest.approx(product, rel=1e-6)
        z = logits(model, data.x_train)
        assert r["normalized_train_loss"] == pytest.approx(cross_entropy(z / product, data.y_train), rel=1e-6)
        assert r["normalized_predictions_unchanged"]


def test_normalized_loss_resnet_by_name(tmp_path, capsys):
    records = run(capsys, tmp_path, "normalized-loss-resnet", "--epochs", "1", "--pretrain-epochs", "1",
                  "--train-size", "100", "--depth", "14")
    assert [r["family"] for r in records] == ["init std"] * 3 + ["random pretraining"] * 3  # no RL point (appendix H)
    index = int(torch.randint(1000, (1,), generator=torch.Generator().manual_seed(2019)))  # the one test example
    assert {r["reference_index"] for r in records} == {index}
    for r in records[::3]:
        spec, model, ws = network(tmp_path, r["run_id"])
        assert spec.model.name == "resnet56" and spec.model.depth == 14
        data = ws.dataset(spec)
        scale = np.linalg.norm(logits(model, data.x_test[index:index + 1]))
        assert r["reference_output_norm"] == pytest.approx(scale, rel=1e-9)
        z_train, z_test = logits(model, data.x_train), logits(model, data.x_test)
        assert r["normalized_train_loss"] == pytest.approx(cross_entropy(z_train / scale, data.y_train), rel=1e-6)
        assert r["normalized_test_loss"] == pytest.approx(cross_entropy(z_test / scale, data.y_test), rel=1e-6)
        assert r["test_loss"] == pytest.approx(cross_entropy(z_test, data.y_test), rel=1e-5)


def test_output_histogram_by_name(tmp_path, capsys):
    records = run(capsys, tmp_path, "output-histogram", "--epochs", "3", "--train-size", "120")
    (r,) = records
    spec, model, ws = network(tmp_path, r["run_id"])
    data = ws.dataset(spec)
    z = logits(model, data.x_train)
    top = z.max(axis=1) / norm_product(layer_weights(model), "fro")  # max_j f_j(x) of the normalized network
    assert r["examples"] == 120
    assert r["normalized_mean"] == pytest.approx(top.mean(), rel=1e-6)
    assert r["normalized_std"] == pytest.approx(top.std(ddof=1), rel=1e-5)
    assert r["unnormalized_mean"] == pytest.approx(z.max(axis=1).mean(), rel=1e-6)
    counts, edges = np.histogram(top, bins=30)
    assert r["histogram_counts"] == counts.tolist() and sum(r["histogram_counts"]) == 120
    assert r["histogram_edges"] == pytest.approx(edges.tolist(), rel=1e-6)
    assert r["ln_C"] == pytest.approx(math.log(10))


def test_paper_presets_are_the_papers_protocols():
    """`--preset paper` grids, read against the paper's text (appendices B, C, L and the figure captions); the set's
    label and the preflight see these grids, not the cpu ones."""
    from badminima.experiments import get_experiment
    from badminima.presets import base_spec

    base = base_spec("paper", "cifar10")

    def first(name, preset="paper"):
        return get_experiment(name).grid(base if preset == "paper" else base_spec("cpu"), [0], preset)

    fig1 = first("error-vs-n")[0]  # Figure 1: 5-layer ConvNet, 16 channels, batch 100, 70 epochs, no stop
    assert (fig1.model.name, fig1.model.width, fig1.recipe.epochs, fig1.recipe.batch_size) == ("cnn5", 16, 70, 100)
    assert fig1.recipe.stop_at_train_loss is None and not fig1.recipe.augment and fig1.recipe.weight_decay == 0
    fig3 = first("error-vs-params")
    assert {s.model.width for s in fig3} == {4, 8, 16, 32, 64, 128, 256} and {s.recipe.epochs for s in fig3} == {70}
    fig10 = first("loss-independence")  # L.1.1's 24 filters, "trained ... up to epoch 300", no random-label point
    assert {(s.model.name, s.model.width, s.recipe.epochs, s.recipe.stop_at_train_loss) for s in fig10} == {
        ("cnn3", 24, 300, None)}
    assert {s.init.name for s in fig10} == {"normal", "partial-random-labels"} and len(fig10) == 25 + 7
    bn = first("normalized-loss-bn")  # Figure 5: 30 epochs of pretraining, 80 epochs, reference 0.006
    assert {(s.model.name, s.recipe.epochs, s.recipe.stop_at_train_loss) for s in bn if s.recipe.epochs} == {
        ("cnn5bn", 80, 0.006)}
    assert sorted(s.init.init_std for s in bn if s.init.name == "normal") == [0.001, 0.01, 0.05, 0.1, 0.15, 0.2]
    assert sorted(s.init.random_label_fraction for s in bn if s.init.name == "partial-random-labels"
                  and s.recipe.epochs) == [0.0, 0.01, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]
    rl = [s for s in bn if s.recipe.epochs == 0]  # Figure 12's RL point: init std 0.05
    assert len(rl) == 1 and rl[0].init.init_std == 0.05 and rl[0].init.pretrain.epochs == 800
    assert {s.init.pretrain.epochs for s in bn if s.init.name == "partial-random-labels" and s.recipe.epochs} == {30}
    resnet = first("normalized-loss-resnet")  # appendix B: 200 epochs, 0.01 then 0.001 after 100, batch 128, crop+flip
    assert {(s.model.name, s.model.depth, s.recipe.epochs, s.recipe.lr, s.recipe.lr_milestones, s.recipe.lr_gamma,
             s.recipe.batch_size, s.recipe.augment) for s in resnet} == {("resnet56", None, 200, 0.01, (100,), 0.1, 128, True)}
    assert {s.model.depth for s in first("normalized-loss-resnet", "cpu")} == {20}  # cpu: ResNet-20
    hist = first("output-histogram")  # L.1.2's MNIST net: 34 filters
    assert [(s.model.name, s.model.width) for s in hist] == [("cnn3", 34)]
