"""RankMin and RankMax (paper 004, section 5 and appendix A.7): low- and high-rank projections of linear and
convolution layers, applied by a training callback after every k-th epoch of a phase.

Which layers (`PhaseSpec.rank_layers`): "inner" - the weight layers between the first and the last, shortcut
projections left out (`measures.layers.inner_layers`): as the authors' code, which changes every ResNet-18
convolution named "conv" except the stem `conv1.weight` (Rank_study/utils.py, `max_rank`/`clip_network`), so not
the stem, the shortcuts or the classifier; for an MLP, the hidden-to-hidden layers (our reading: the authors'
loop matches no MLP layer name). "all": every linear and convolution layer.

For singular values s of a layer's operator and a threshold t:
- RankMin: s_i -> 0 if s_i < t, else s_i ("setting each singular value below some threshold to zero");
- RankMax: s_i -> min(s_i, t) ("the minimum of some chosen constant and the true singular value"),
  which flattens the spectrum and so raises the effective rank ||s||_1 / ||s||_2.
The paper gives no constants ("some chosen constant"). `rank_threshold_scale="largest"` (ours, the default):
t = rank_threshold * (the layer's largest singular value at the start of the phase), fixed for the phase - a
threshold relative to the current largest value would compound under RankMax (each application would shrink the
top of the spectrum by the same factor again). "absolute": t = rank_threshold in every layer, as the authors' code
(Rank_study/train_net.py: `--clip_to 0.5` for RankMin, `--max_sig 1.5` for RankMax).

When: after the epochs in `rank_epochs` (1-based), or, when it is empty, after every `rank_every`-th epoch. The
text projects, retrains and repeats; the authors' fine-tuning projects after epochs 2, 6 and 11 of 15.

Linear layers: the SVD of the weight matrix, exact. Convolutions: as the paper, by the method of Sedghi
et al. (2018): the operator on the layer's input size with circular padding is block-diagonalized by
the FFT of the kernel zero-padded to that size; each frequency's (out x in) block is changed through
its SVD, transformed back, and the kernel is cut back to its original k x k support (the projected
operator generally needs larger filters, so after the cut its singular values only approximate the
target). Strided convolutions are treated as their stride-1 operator, and a kernel larger than its input on
the operator of the kernel's size. Biases are left alone.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..measures.layers import CONVOLUTIONS, inner_layers, input_sizes, weight_layers
from ..measures.norms import conv_singular_values
from ..spec import PhaseSpec
from .loop import EpochState

MODES = ("min", "max")
SCOPES = ("inner", "all")


def controlled_layers(model: nn.Module, scope: str) -> dict[str, nn.Module]:
    """The layers RankMin/RankMax change: "inner" (see the module doc) or "all" weight layers."""
    if scope not in SCOPES:
        raise ValueError(f"unknown rank_layers {scope!r} (known: {', '.join(SCOPES)})")
    return inner_layers(model) if scope == "inner" else weight_layers(model)


def rank_min(s: torch.Tensor, threshold: float) -> torch.Tensor:
    """RankMin on singular values: those below `threshold` set to zero."""
    return torch.where(s < threshold, torch.zeros_like(s), s)


def rank_max(s: torch.Tensor, threshold: float) -> torch.Tensor:
    """RankMax on singular values: clipped from above at `threshold`."""
    return s.clamp(max=threshold)


def _rule(mode: str) -> Callable[[torch.Tensor, float], torch.Tensor]:
    if mode not in MODES:
        raise ValueError(f"unknown rank mode {mode!r} (known: {', '.join(MODES)})")
    return rank_min if mode == "min" else rank_max


def project_matrix(weight: torch.Tensor, mode: str, threshold: float) -> torch.Tensor:
    """The matrix U f(S) V^T for weight = U S V^T, f the RankMin/RankMax rule (computed in float64)."""
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    return ((u * _rule(mode)(s, threshold)) @ vh).to(weight.dtype)


def project_circular_operator(weight: torch.Tensor, input_size: tuple[int, ...], mode: str,
                              threshold: float) -> torch.Tensor:
    """The full-size kernel (out, in, *input_size) whose circular convolution operator on `input_size` has the
    singular values f(s) of the kernel's own (stride-1) operator (Sedghi et al. 2018, "Clip_OperatorNorm"), before
    any cut."""
    d = weight.dim() - 2
    size = tuple(input_size)
    if any(k > n for k, n in zip(weight.shape[2:], size)):
        raise ValueError(f"kernel {tuple(weight.shape[2:])} larger than the input {size}")
    spatial = tuple(range(2, 2 + d))
    spectrum = torch.fft.fftn(weight.double(), s=size, dim=spatial)  # (out, in, *n)
    blocks = spectrum.permute(*spatial, 0, 1)  # (*n, out, in)
    u, s, vh = torch.linalg.svd(blocks, full_matrices=False)
    changed = (u * _rule(mode)(s, threshold).unsqueeze(-2).to(u.dtype)) @ vh
    back = list(range(d, d + 2)) + list(range(d))
    return torch.fft.ifftn(changed.permute(*back), dim=spatial).real


def operator_size(weight: torch.Tensor, input_size: tuple[int, ...]) -> tuple[int, ...]:
    """The size on which a convolution's operator is taken: its input size, enlarged to the kernel where the kernel
    is larger (a 3x3 kernel on the 1x1 or 2x2 maps of a small-input ResNet's last stage)."""
    return tuple(max(n, k) for n, k in zip(input_size, weight.shape[2:]))


def project_convolution(weight: torch.Tensor, input_size: tuple[int, ...], mode: str, threshold: float) -> torch.Tensor:
    """RankMin/RankMax of a convolution kernel: the projected circular operator cut back to the kernel's support."""
    full = project_circular_operator(weight, operator_size(weight, input_size), mode, threshold)
    index = (slice(None), slice(None)) + tuple(slice(0, k) for k in weight.shape[2:])
    return full[index].to(weight.dtype)


def _layers_and_sizes(model: nn.Module, sample: torch.Tensor | None, names=None):
    layers = {n: m for n, m in weight_layers(model).items() if names is None or n in names}
    convs = [name for name, m in layers.items() if isinstance(m, CONVOLUTIONS)]
    sizes = input_sizes(model, sample) if sample is not None and convs else {}
    for name in convs:
        layer = layers[name]
        if name not in sizes:
            raise ValueError(f"convolution {name}: pass a sample input to find its input size")
        if layer.groups != 1 or any(x != 1 for x in layer.dilation):
            raise ValueError(f"convolution {name}: only groups=1 and dilation 1 are supported")
    return layers, sizes


@torch.no_grad()
def largest_singular_values(model: nn.Module, sample: torch.Tensor | None = None, scope: str = "all") -> dict[str, float]:
    """The largest singular value of every controlled linear layer's matrix and convolution's stride-1 circular
    operator on its input size (seen on `sample`)."""
    layers, sizes = _layers_and_sizes(model, sample, controlled_layers(model, scope))
    return {name: float(conv_singular_values(m.weight.detach().double(), operator_size(m.weight, sizes[name]), 1)[0]
                        if name in sizes
                        else torch.linalg.svdvals(m.weight.detach().double())[0]) for name, m in layers.items()}


def relative_thresholds(model: nn.Module, fraction: float, sample: torch.Tensor | None = None,
                        scope: str = "all") -> dict[str, float]:
    """fraction x the largest singular value of each layer in `scope`: the thresholds of `apply_rank_control`."""
    return {name: fraction * s for name, s in largest_singular_values(model, sample, scope).items()}


@torch.no_grad()
def apply_rank_control(model: nn.Module, mode: str, thresholds: dict[str, float], sample: torch.Tensor | None = None) -> None:
    """Replace the weight of every layer named in `thresholds` by its RankMin ("min") or RankMax ("max") projection
    with that threshold, in place; other layers are left alone. Convolutions need `sample` (one input)."""
    layers, sizes = _layers_and_sizes(model, sample, thresholds)
    for name, layer in layers.items():
        w = layer.weight
        if name in sizes:
            w.copy_(project_convolution(w, sizes[name], mode, thresholds[name]))
        else:
            w.copy_(project_matrix(w, mode, thresholds[name]))


def rank_thresholds(phase: PhaseSpec, reference: nn.Module, sample: torch.Tensor | None) -> dict[str, float]:
    """The phase's threshold for each of its `rank_layers`: rank_threshold x the layer's largest singular value in
    `reference` ("largest"), or rank_threshold itself for every layer ("absolute", the authors' code)."""
    if phase.rank_threshold_scale == "absolute":
        return {name: phase.rank_threshold for name in controlled_layers(reference, phase.rank_layers)}
    return relative_thresholds(reference, phase.rank_threshold, sample, phase.rank_layers)


def projects_after(phase: PhaseSpec, epoch: int) -> bool:
    """Whether RankMin/RankMax is applied after `epoch` (1-based): one of `rank_epochs`, or when that is empty a
    multiple of `rank_every`."""
    return epoch in phase.rank_epochs if phase.rank_epochs else epoch % phase.rank_every == 0


def rank_callback(phase: PhaseSpec, sample: torch.Tensor, reference: nn.Module) -> Callable[[EpochState], None] | None:
    """A callback applying the phase's RankMin/RankMax to its `rank_layers` after the epochs `projects_after`
    names (None when off), with the thresholds `rank_thresholds` finds in `reference` (the model the phase starts
    from). It must run before the callbacks that evaluate, so that the recorded metrics are those of the projected
    model."""
    if phase.rank_mode == "none":
        return None
    thresholds = rank_thresholds(phase, reference, sample)

    def callback(state: EpochState) -> None:
        if projects_after(phase, state.epoch):
            apply_rank_control(state.model, phase.rank_mode, thresholds, sample)
            state.metrics["rank_projected"] = 1.0
    return callback
