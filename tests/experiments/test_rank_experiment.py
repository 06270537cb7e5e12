"""Paper 004's rank study as the authors run it (issue 12, item 9): ranks of the raw convolution weights, and
RankMin/RankMax on the inner layers only (not the stem convolution, the shortcuts or the classifier) - checked
against numpy FFTs and SVDs written here, after the authors' description (Sedghi et al. 2018)."""
import numpy as np
import pytest
import torch
from torch import nn

from badminima.experiments import rank as rank_exp
from badminima.measures import inner_layers, layer_ranks
from badminima.models import build_model
from badminima.spec import DataSpec, ModelSpec, PhaseSpec, RunSpec
from badminima.train.loop import EpochState
from badminima.train.rank_control import rank_callback


def _randomized_resnet(seed=0):
    torch.manual_seed(seed)
    model = build_model("resnet18", (3, 8, 8), 5, torch.zeros(3), torch.ones(3), width=2).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # far from the identity, so that folding would change the ranks
            m.running_var.copy_(0.1 + 3 * torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.2 + 3 * torch.rand(m.num_features, generator=g))
    return model


def _numpy_circular_singular_values(kernel: np.ndarray, n: int) -> np.ndarray:
    """Singular values of the stride-1 circular convolution on n x n maps: per FFT frequency, those of the
    (out x in) matrix of kernel coefficients (Sedghi et al. 2018, Theorem 6); kernel (out, in, k, k), k <= n."""
    coefficients = np.fft.fft2(kernel, (n, n), axes=(2, 3))  # (out, in, n, n)
    return np.sort(np.linalg.svd(coefficients.transpose(2, 3, 0, 1), compute_uv=False).ravel())[::-1]


def _numpy_rank_projection(kernel: np.ndarray, n: int, mode: str, threshold: float) -> np.ndarray:
    """RankMin/RankMax of a kernel as paper 004 appendix A.7 describes it: SVD of every frequency's block of the
    n x n circular operator, singular values zeroed below / clipped above the threshold, back to space, and the
    kernel cut back to its k x k support."""
    k = kernel.shape[-1]
    coefficients = np.fft.fft2(kernel, (n, n), axes=(2, 3)).transpose(2, 3, 0, 1)
    u, s, vh = np.linalg.svd(coefficients, full_matrices=False)
    s = np.where(s < threshold, 0.0, s) if mode == "min" else np.minimum(s, threshold)
    back = np.fft.ifft2((u * s[..., None, :]) @ vh, axes=(0, 1)).real.transpose(2, 3, 0, 1)
    return back[:, :, :k, :k]


def test_inner_layers_of_resnet18_and_mlp():
    resnet = _randomized_resnet()
    names = list(inner_layers(resnet))
    assert len(names) == 16 and all(n.startswith("net.layers.") and ".conv" in n for n in names)
    mlp = build_model("mlp", (1, 40), 10, torch.zeros(1), torch.ones(1), width=8, depth=3)
    assert list(inner_layers(mlp)) == ["net.3", "net.5"]  # hidden-to-hidden; not net.1 (input) or net.7 (classifier)


def test_ranks_are_of_the_raw_convolution_weights_by_default():
    model = _randomized_resnet()
    sample = torch.rand(1, 3, 8, 8)
    ranks = layer_ranks(model, sample)
    conv = model.net.layers[1].conv2  # stage 1: 2 -> 2 channels on 8x8 maps, stride 1
    s = _numpy_circular_singular_values(conv.weight.detach().double().numpy(), 8)
    expected = s.sum() / np.linalg.norm(s)
    assert ranks["net.layers.1.conv2"]["effective_rank"] == pytest.approx(expected, rel=1e-10)
    folded = layer_ranks(model, sample, fold=True)["net.layers.1.conv2"]["effective_rank"]
    assert abs(folded / expected - 1) > 1e-3  # folding is another convention (kept as an option)


@pytest.mark.parametrize("mode,fraction", [("min", 0.5), ("max", 0.5)])
def test_rank_control_changes_the_inner_layers_only(mode, fraction):
    model = _randomized_resnet(1)
    sample = torch.rand(1, 3, 8, 8)
    before = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    phase = PhaseSpec(rank_mode=mode, rank_threshold=fraction, rank_every=1, rank_layers="inner")
    callback = rank_callback(phase, sample, model)
    callback(EpochState(epoch=1, model=model, optimizer=None, metrics={}, history=[]))
    inner = set(inner_layers(model))
    untouched = [n for n in before if n not in inner]
    assert "net.conv1" in untouched and "net.linear" in untouched and sum(".shortcut." in n for n in untouched) == 3
    for name, m in model.named_modules():
        if name in untouched:
            assert torch.equal(m.weight, before[name]), name
    conv = model.net.layers[3].conv1  # stage 2: 4 -> 4 channels, stride 1, on 4x4 maps
    old = before["net.layers.3.conv1"].double().numpy()
    threshold = fraction * _numpy_circular_singular_values(old, 4)[0]
    expected = _numpy_rank_projection(old, 4, mode, threshold)
    assert np.allclose(conv.weight.detach().double().numpy(), expected, atol=1e-6)
    assert not np.allclose(expected, old, atol=1e-3)


def test_the_experiment_controls_the_inner_layers_and_shows_them():
    specs = rank_exp._specs(RunSpec(DataSpec("mnist1d"), ModelSpec("mlp")), [0], "cpu", False)
    layers = {label: spec.recipe.rank_layers for label, spec in specs if spec.recipe.rank_mode != "none"}
    assert layers == {"RankMax": "inner", "RankMin": "inner"}
    assert rank_exp.RANKS_FOLDED is False
