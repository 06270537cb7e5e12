"""Norm-based complexity proxies: Frobenius norms, spectral norms and path norms.

Paper 000 section 3.6 (Figure 5) reports the Frobenius norm of the weights and the l1 and l2 path
norms [Neyshabur et al. 2015]; paper 001 (Figure 4) the product of the layers' Frobenius norms.
Conventions, where the literature has several:

- `frobenius_norm`: over all trainable parameters (weights, biases, batch-norm affine parameters),
  the same set as `relative_distance` (000 section 3.3); the input standardization is excluded.
- layer-wise norms (`layer_frobenius_norms`, `spectral_norms`) are of the weight tensors of linear and
  convolution layers, after batch norm is folded into the layer before it (see `layers.fold_batchnorm`);
  biases are not part of a layer's norm.
- spectral norm of a convolution: either the operator norm of the convolution on the layer's true
  input size with circular (wrap-around) padding, by the FFT method of Sedghi, Gupta & Long 2018
  ("The singular values of convolutional layers", Theorem 6; strided convolutions by the aliasing
  identity below), or the largest singular value of the kernel reshaped to (out, in*k*k).
- path norms: of the architecture `model.net` (the standardization is preprocessing, as in the papers
  where data are normalized by the loader), after batch-norm folding, with biases as weights from a
  constant-1 unit (the usual augmentation).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import (CONVOLUTIONS, architecture, batchnorm_scale_shift, fold_batchnorm, input_sizes,
                     remaining_batchnorms, weight_layers)


def frobenius_norm(model: nn.Module) -> float:
    """||W||_F over all trainable parameters (paper 000 section 3.6, Figure 5)."""
    return float(sum((p.detach().double() ** 2).sum() for p in model.parameters()).sqrt())


def layer_frobenius_norms(model: nn.Module, fold: bool = True) -> dict[str, float]:
    """||W_k||_F of each linear/convolution weight (biases excluded), batch norm folded first if `fold`."""
    net = fold_batchnorm(model, torch.float64) if fold else model
    return {name: float(m.weight.detach().double().norm()) for name, m in weight_layers(net).items()}


def product_of_frobenius_norms(model: nn.Module, fold: bool = True) -> float:
    """prod_k ||W_k||_F (paper 001 sections 1-2 and Figure 4: rho = rho_1 ... rho_K)."""
    return math.prod(layer_frobenius_norms(model, fold).values())


def sum_of_frobenius_norms(model: nn.Module, fold: bool = True) -> float:
    """sum_k ||W_k||_F."""
    return sum(layer_frobenius_norms(model, fold).values())


def _wrap_kernel(weight: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The kernel folded modulo the input size (a kernel larger than the input wraps around)."""
    spatial = weight.shape[2:]
    if all(k <= n for k, n in zip(spatial, size)):
        return weight
    pad = []
    for k, n in reversed(list(zip(spatial, size))):
        pad += [0, -k % n]
    w = torch.nn.functional.pad(weight, pad)
    for d, n in enumerate(size):
        dim = 2 + d
        w = w.unflatten(dim, (w.shape[dim] // n, n)).sum(dim)
    return w


def conv_singular_values(weight: torch.Tensor, input_size: tuple[int, ...], stride: tuple[int, ...] | int = 1) -> torch.Tensor:
    """All singular values (descending) of the convolution with kernel `weight` (out, in, *k) as a linear
    map on inputs of spatial size `input_size`, with circular padding.

    Stride 1 (Sedghi et al. 2018, Theorem 6): with K^ = FFT of the kernel zero-padded to the input size,
    the singular values are the union over frequencies u of those of the (out x in) matrices K^[:, :, u].
    Stride s (n divisible by s): the output at frequency u' (of n/s) collects the input frequencies
    u' + a*n/s, a = 0..s-1, so the blocks are the (out x in*s^d) matrices [K^[u' + a n/s]]_a / sqrt(s^d).
    """
    d = weight.dim() - 2
    size = tuple(input_size)
    stride = (stride,) * d if isinstance(stride, int) else tuple(stride)
    if any(n % s for n, s in zip(size, stride)):
        raise ValueError(f"input size {size} is not divisible by the stride {stride}")
    w = _wrap_kernel(weight.detach().double(), size)
    spectrum = torch.fft.fftn(w, s=size, dim=tuple(range(2, 2 + d)))  # (out, in, *n)
    cout, cin = spectrum.shape[:2]
    # split every frequency axis n into (alias a, output frequency u') = (s, n/s)
    shape = [cout, cin]
    for n, s in zip(size, stride):
        shape += [s, n // s]
    spectrum = spectrum.reshape(shape)
    alias_dims = [2 + 2 * i for i in range(d)]
    freq_dims = [3 + 2 * i for i in range(d)]
    blocks = spectrum.permute(*freq_dims, 0, 1, *alias_dims).reshape(math.prod(n // s for n, s in zip(size, stride)),
                                                                      cout, cin * math.prod(stride))
    values = torch.linalg.svdvals(blocks / math.sqrt(math.prod(stride))).flatten()
    return values.sort(descending=True).values


def layer_singular_values(layer: nn.Module, input_size: tuple[int, ...] | None, method: str = "fft") -> torch.Tensor:
    """Singular values (descending, float64) of a linear layer's matrix, or of a convolution: its operator
    on `input_size` ("fft", circular padding) or its kernel reshaped to (out, in*k...) ("reshaped")."""
    w = layer.weight.detach().double()
    if not isinstance(layer, CONVOLUTIONS):
        return torch.linalg.svdvals(w)
    if method == "reshaped":
        return torch.linalg.svdvals(w.flatten(1))
    if method != "fft":
        raise ValueError(f"unknown method {method!r} (fft or reshaped)")
    if layer.groups != 1 or any(d != 1 for d in layer.dilation):
        raise ValueError("the FFT method here covers convolutions with groups=1 and dilation 1")
    if input_size is None:
        raise ValueError("the FFT method needs the layer's input size (pass a sample input)")
    return conv_singular_values(w, input_size, layer.stride)


def spectral_norms(model: nn.Module, sample: torch.Tensor | None = None, method: str = "fft",
                   fold: bool = True) -> dict[str, float]:
    """Largest singular value of each linear/convolution layer (batch norm folded first if `fold`).

    Convolutions: method "fft" is the operator norm on the input size the layer sees on `sample`
    (found with forward hooks), circular padding (Sedghi et al. 2018); "reshaped" is the spectral norm
    of the kernel reshaped to (out, in*k*k), which needs no sample.
    """
    net = fold_batchnorm(model, torch.float64) if fold else model
    sample = sample.double() if (sample is not None and fold) else sample
    sizes = input_sizes(net, sample) if (method == "fft" and sample is not None) else {}
    return {name: float(layer_singular_values(m, sizes.get(name), method)[0])
            for name, m in weight_layers(net).items()}


class _ChannelAffine(nn.Module):
    """x -> scale*x + shift per channel (dimension 1): a batch norm that could not be folded, with its
    eval-mode scale and shift replaced for the path-norm forward pass."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.reshape(shape) + self.shift.reshape(shape)


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...], p: float = 2.0) -> float:
    """The l_p path norm (Neyshabur, Salakhutdinov & Srebro 2015; paper 000 section 3.6):
    (sum over input-to-output paths of prod |w|^p)^(1/p), biases counted as paths from a constant-1 unit.

    Computed by one forward pass of `model.net`, batch norm folded first, with every weight and bias
    replaced by |.|^p, on an all-ones input of `input_shape` (one example, no batch dimension); the
    output summed over classes is the p-th power of the norm. Nonnegative signals make ReLU the identity.
    A batch norm that cannot be folded counts as a diagonal layer (|a|^p, bias |c|^p). Pooling is applied
    as it is: average pools weigh a path by 1/k (not 1/k^p) and max pools keep the largest incoming sum,
    as in the usual forward-pass implementation (Jiang et al. 2020, "Fantastic generalization measures").
    """
    net = fold_batchnorm(architecture(model), torch.float64)
    for name, bn in remaining_batchnorms(net).items():
        a, c = batchnorm_scale_shift(bn)
        net.set_submodule(name, _ChannelAffine(a.abs() ** p, c.abs() ** p))
    for m in weight_layers(net).values():
        m.weight.copy_(m.weight.abs() ** p)
        if m.bias is not None:
            m.bias.copy_(m.bias.abs() ** p)
    total = net(torch.ones((1, *input_shape), dtype=torch.float64, device=next(net.parameters()).device)).sum()
    return float(total) ** (1.0 / p)


def l1_path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The l1 path norm: sum over paths of prod |w| (see `path_norm`)."""
    return path_norm(model, input_shape, 1.0)


def l2_path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The l2 path norm: sqrt of the sum over paths of prod w^2 (see `path_norm`)."""
    return path_norm(model, input_shape, 2.0)
