"""Norm-based complexity proxies: Frobenius norms, spectral norms and path norms.

Paper 000 section 3.6 (Figure 5) reports the Frobenius norm of the weights and the l1 and l2 path
norms [Neyshabur et al. 2015]; paper 001 (Figure 4) the product of the layers' Frobenius norms.
Conventions, where the literature has several:

- `frobenius_norm`: over all trainable parameters (weights, biases, batch-norm affine parameters),
  the same set as `relative_distance` (000 section 3.3); the input standardization is excluded.
- layer-wise norms (`layer_frobenius_norms`, `spectral_norms`) are of the weight tensors of linear and
  convolution layers, after batch norm is folded into the layer before it (see `layers.fold_batchnorm`);
  biases are not part of a layer's norm.
- spectral norm of a convolution, three named methods (SPECTRAL_METHODS):
  "zero-padding" (the default): the exact operator norm of the convolution as the layer computes it
  (its zero padding, stride, dilation, groups) on the input size it sees, by Lanczos (ARPACK) on
  A^T A, A the convolution and A^T its adjoint (the transposed convolution, by autograd);
  "circular": the operator norm with circular (wrap-around) padding on that input size, by the FFT
  method of Sedghi, Gupta & Long 2018 ("The singular values of convolutional layers", Theorem 6;
  strided convolutions by the aliasing identity below) - not the layer's operator: on ResNet's 4x4
  maps a 3x3 kernel's two norms differ by 9-21%; "reshaped": the largest singular value of the
  kernel reshaped to (out, in*k*k), which needs no input size.
- products of layer norms (`spectral_norm_product`): over the chain of weight layers, leaving out the
  shortcut (projection) convolutions of residual blocks, which act in parallel to a block and not in
  series with its layers (the product is then not a Lipschitz bound of a residual net; it is what the
  papers plot). The layers left out are returned with the product.
- path norms: of the architecture `model.net` (the standardization is preprocessing, as in the papers
  where data are normalized by the loader), after batch-norm folding, with biases as weights from a
  constant-1 unit (the usual augmentation); average pooling is the linear layer it is (see `path_norm`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .layers import (CONVOLUTIONS, architecture, batchnorm_scale_shift, fold_batchnorm, input_sizes, is_shortcut,
                     remaining_batchnorms, weight_layers)

SPECTRAL_METHODS = ("zero-padding", "circular", "reshaped")
EXPLICIT_BELOW = 256  # operators on fewer input entries than this are written out as matrices


def frobenius_norm(model: nn.Module) -> float:
    """||W||_F over all trainable parameters (paper 000 section 3.6, Figure 5)."""
    return float(sum((p.detach().double() ** 2).sum() for p in model.parameters()).sqrt())


def layer_frobenius_norms(model: nn.Module, fold: bool = True) -> dict[str, float]:
    """||W_k||_F of each linear/convolution weight (biases excluded), batch norm folded first if `fold`."""
    net = fold_batchnorm(model, torch.float64) if fold else model
    return {name: float(m.weight.detach().double().norm()) for name, m in weight_layers(net).items()}


def layer_table(model: nn.Module, fold: bool = True):
    """One row per linear/convolution layer (registration order) as a pandas DataFrame: layer (name), kind
    (module class), shape (of the weight), parameters (weight and bias entries of the layer), frobenius
    (||W||_F of the weight, bias excluded) and spectral (the largest singular value of the weight reshaped to
    (out, in * prod(kernel)), the "reshaped" method: not a convolution's operator norm, see
    `spectral_norms` for that). Batch norm is folded first if `fold` (the module doc)."""
    import pandas as pd

    net = fold_batchnorm(model, torch.float64) if fold else model
    rows = []
    for name, m in weight_layers(net).items():
        w = m.weight.detach().double()
        rows.append({"layer": name, "kind": type(m).__name__, "shape": tuple(w.shape),
                     "parameters": w.numel() + (m.bias.numel() if m.bias is not None else 0),
                     "frobenius": float(w.norm()), "spectral": float(torch.linalg.matrix_norm(w.flatten(1), 2))})
    return pd.DataFrame(rows, columns=["layer", "kind", "shape", "parameters", "frobenius", "spectral"])


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


def layer_singular_values(layer: nn.Module, input_size: tuple[int, ...] | None, method: str = "circular") -> torch.Tensor:
    """All singular values (descending, float64) of a linear layer's matrix, or of a convolution: its operator
    on `input_size` with circular padding ("circular", Sedghi et al. 2018) or its kernel reshaped to
    (out, in*k...) ("reshaped"). (The zero-padding operator's top value: `conv_operator_norm`.)"""
    w = layer.weight.detach().double()
    if not isinstance(layer, CONVOLUTIONS):
        return torch.linalg.svdvals(w)
    if method == "reshaped":
        return torch.linalg.svdvals(w.flatten(1))
    if method != "circular":
        raise ValueError(f"unknown method {method!r} (circular or reshaped)")
    if layer.groups != 1 or any(d != 1 for d in layer.dilation):
        raise ValueError("the FFT method here covers convolutions with groups=1 and dilation 1")
    if input_size is None:
        raise ValueError("the FFT method needs the layer's input size (pass a sample input)")
    return conv_singular_values(w, input_size, layer.stride)


@torch.no_grad()
def conv_operator_norm(layer: nn.Module, input_size: tuple[int, ...], tol: float = 1e-12, seed: int = 0) -> float:
    """The largest singular value of the convolution `layer` (bias left out) as the linear map it computes on
    inputs of spatial size `input_size`: its own padding (zeros unless its padding_mode says otherwise),
    stride, dilation and groups, in float64.

    sqrt of the largest eigenvalue of A^T A by Lanczos (scipy's eigsh, ARPACK: power iteration refined in its
    Krylov space), A x = the convolution and A^T y its adjoint (the transposed convolution, taken by autograd
    so that stride and padding need no bookkeeping); relative tolerance `tol`, start vector seeded by `seed`.
    Operators on fewer than EXPLICIT_BELOW input entries are written out as matrices and decomposed exactly.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    w = layer.weight.detach().double()
    shape = (w.shape[1] * layer.groups, *input_size)
    n = math.prod(shape)

    def apply(x: torch.Tensor) -> torch.Tensor:
        return layer._conv_forward(x, w, None)

    if n < EXPLICIT_BELOW:
        basis = torch.eye(n, dtype=torch.float64, device=w.device).reshape(n, *shape)
        return float(torch.linalg.matrix_norm(apply(basis).reshape(n, -1).T, ord=2))
    with torch.enable_grad():
        x0 = torch.zeros((1, *shape), dtype=torch.float64, device=w.device, requires_grad=True)
        y0 = apply(x0)
    gram_calls = [0]

    def gram(v: np.ndarray) -> np.ndarray:  # A^T A v
        gram_calls[0] += 1
        x = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(w.device).reshape(1, *shape)
        y = apply(x)
        with torch.enable_grad():
            (back,) = torch.autograd.grad(y0, x0, y, retain_graph=True)
        return back.reshape(-1).cpu().numpy()

    op = LinearOperator((n, n), matvec=gram, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    top = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    return float(math.sqrt(max(top, 0.0)))


def spectral_norms(model: nn.Module, sample: torch.Tensor | None = None, method: str = "zero-padding",
                   fold: bool = True) -> dict[str, float]:
    """Largest singular value of each linear/convolution layer (batch norm folded first if `fold`).

    Convolutions (SPECTRAL_METHODS, see the module doc): "zero-padding" (default) is the exact operator norm
    of the layer on the input size it sees on `sample` (found with forward hooks); "circular" the operator
    norm with circular padding on that size (Sedghi et al. 2018); "reshaped" the spectral norm of the kernel
    reshaped to (out, in*k*k), which needs no sample.
    """
    if method not in SPECTRAL_METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(SPECTRAL_METHODS)})")
    net = fold_batchnorm(model, torch.float64) if fold else model
    if method != "reshaped":
        if sample is None:
            raise ValueError(f"the {method} operator norm needs the layers' input sizes (pass a sample input)")
        sizes = input_sizes(net, sample.double() if fold else sample)
    out = {}
    for name, m in weight_layers(net).items():
        if method == "zero-padding" and isinstance(m, CONVOLUTIONS):
            out[name] = conv_operator_norm(m, sizes[name])
        else:
            out[name] = float(layer_singular_values(m, sizes.get(name) if method == "circular" else None,
                                                    "reshaped" if method == "reshaped" else "circular")[0])
    return out


def spectral_norm_product(norms: dict[str, float]) -> dict:
    """prod of the layers' spectral norms over the chain of weight layers, shortcut (projection) convolutions
    of residual blocks left out (`layers.is_shortcut`): {"product", "layers" (multiplied), "left_out"}."""
    kept = [name for name in norms if not is_shortcut(name)]
    return {"product": math.prod(norms[name] for name in kept), "layers": kept,
            "left_out": [name for name in norms if is_shortcut(name)]}


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


LINEAR_POOLS = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                F.adaptive_avg_pool3d)


class _PoolingAsLinearLayer(TorchFunctionMode):
    """While active, every average pool (a module or a call of torch.nn.functional's avg pools) applies the
    entrywise p-th power of its matrix: a path through a k-input average carries weight 1/k, so (1/k)^p.
    The pool's matrix on the map's spatial size is found by pooling the one-hot maps of its positions
    (the same matrix for every channel), so padding, stride, ceil_mode and adaptive windows need no rule."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in LINEAR_POOLS:
            return func(*args, **kwargs)
        x, rest = args[0], args[1:]
        spatial = x.shape[2:]
        positions = math.prod(spatial)
        basis = torch.eye(positions, dtype=x.dtype, device=x.device).reshape(positions, 1, *spatial)
        pooled = func(basis, *rest, **kwargs)  # (positions, 1, *out): column j of the matrix is pooled[j]
        matrix = pooled.reshape(positions, -1).T.abs() ** self.p
        out = x.reshape(-1, positions) @ matrix.T
        return out.reshape(*x.shape[:2], *pooled.shape[2:])


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...], p: float = 2.0) -> float:
    """The l_p path norm (Neyshabur, Salakhutdinov & Srebro 2015; paper 000 section 3.6):
    (sum over input-to-output paths of prod |w|^p)^(1/p), biases counted as paths from a constant-1 unit.

    Computed by one forward pass of `model.net`, batch norm folded first, with every weight and bias
    replaced by |.|^p, on an all-ones input of `input_shape` (one example, no batch dimension); the
    output summed over classes is the p-th power of the norm. Nonnegative signals make ReLU the identity.
    A batch norm that cannot be folded counts as a diagonal layer (|a|^p, bias |c|^p).

    Pooling. An average pool is a linear layer: a path through a k-input average carries the weight 1/k,
    which counts (1/k)^p (for p = 2, 1/k^2: the forward pass as it is would count 1/k, which inflates
    ResNet18's l2 path norm by sqrt(16) = 4 through its global pool of a 4x4 map). Every average pool of
    torch.nn.functional (modules or calls) is so replaced while the norm is computed. A max pool is not
    linear: it is counted as the forward pass does, each window passing on the largest of its inputs'
    path sums - the path norm of the network whose max pools route through that maximizing input (a
    lower bound on counting every input of a window as a path of weight 1, which would be the sum).
    """
    net = fold_batchnorm(architecture(model), torch.float64)
    for name, bn in remaining_batchnorms(net).items():
        a, c = batchnorm_scale_shift(bn)
        net.set_submodule(name, _ChannelAffine(a.abs() ** p, c.abs() ** p))
    for m in weight_layers(net).values():
        m.weight.copy_(m.weight.abs() ** p)
        if m.bias is not None:
            m.bias.copy_(m.bias.abs() ** p)
    with _PoolingAsLinearLayer(p):
        total = net(torch.ones((1, *input_shape), dtype=torch.float64, device=next(net.parameters()).device)).sum()
    return float(total) ** (1.0 / p)


def l1_path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The l1 path norm: sum over paths of prod |w| (see `path_norm`)."""
    return path_norm(model, input_shape, 1.0)


def l2_path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The l2 path norm: sqrt of the sum over paths of prod w^2 (see `path_norm`)."""
    return path_norm(model, input_shape, 2.0)
