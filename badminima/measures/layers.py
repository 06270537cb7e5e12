"""The layers that measures look at: weight layers (linear and convolution), the input size each one
sees, and batch norm folded into the layer before it.

Batch norm in eval mode is the per-channel affine map y = a*x + c with a = gamma/sqrt(var + eps) and
c = beta - mu*a. When it directly follows a linear or convolution layer (and is that layer's only
consumer) it is folded into it: w' = w*a, b' = (b - mu)*a + beta = a*b + c. This is how paper 001
(appendix, Figure 5 caption) "absorbs" batch norm after training. A batch norm that follows anything
else (DenseNet's BN-ReLU-conv after a concatenation) stays as it is.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import BadInput

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Linear and convolution modules by name, in registration order (forward order for our models)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}


SHORTCUT_NAMES = ("shortcut", "downsample")  # how residual blocks name their projection (the models here, torchvision)


def is_shortcut(name: str) -> bool:
    """Whether the module `name` (a dotted path) is, or lies inside, a residual block's shortcut projection."""
    return any(part in SHORTCUT_NAMES for part in name.split("."))


def inner_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The weight layers between the first and the last one (in registration order, forward order for our
    models), shortcut projections left out: a ResNet's block convolutions without its stem convolution, its
    shortcuts and its classifier; an MLP's hidden-to-hidden layers. Paper 004's rank study (Figure 2, the
    authors' `max_rank`/`clip_network`) measures and changes exactly a ResNet's block convolutions."""
    layers = list(weight_layers(model).items())[1:-1]
    return {name: m for name, m in layers if not is_shortcut(name)}


def batchnorm_scale_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, c) with bn(x) = a*x + c per channel in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise BadInput(f"{type(bn).__name__} without running statistics cannot be folded (eval mode needs them)")
    a = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        a = a * bn.weight
    c = -bn.running_mean * a
    if bn.bias is not None:
        c = c + bn.bias
    return a.detach(), c.detach()


def _foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(weight layer, batch norm) names where the batch norm's only input is the weight layer's output
    and the weight layer has no other consumer, found by tracing the forward pass with torch.fx."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001  (fx raises many kinds on untraceable control flow)
        raise BadInput(f"cannot trace {type(model).__name__} to fold batch norm: {exc}") from None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), BATCH_NORMS):
            continue
        source = node.args[0] if node.args else None
        if (isinstance(source, torch.fx.Node) and source.op == "call_module"
                and isinstance(modules.get(source.target), WEIGHT_LAYERS) and len(source.users) == 1):
            pairs.append((source.target, node.target))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of `model` in eval mode with every batch norm that directly follows a linear or convolution
    layer folded into that layer and replaced by nn.Identity (equal outputs in eval mode); the copy is
    converted to `dtype` first if given (float64 keeps the folding exact to rounding)."""
    folded = copy.deepcopy(model).eval()
    if dtype is not None:
        folded = folded.to(dtype)
    for layer_name, bn_name in _foldable_pairs(folded):
        layer, bn = folded.get_submodule(layer_name), folded.get_submodule(bn_name)
        a, c = batchnorm_scale_shift(bn)
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        bias = a * layer.bias if layer.bias is not None else torch.zeros_like(a)
        layer.weight = nn.Parameter(layer.weight * a.reshape(shape).to(layer.weight.dtype))
        layer.bias = nn.Parameter((bias + c).to(layer.weight.dtype))
        folded.set_submodule(bn_name, nn.Identity())
    return folded


def remaining_batchnorms(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, BATCH_NORMS)}


@torch.no_grad()
def input_sizes(model: nn.Module, sample: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """The spatial size of the input each convolution sees on `sample` (one example is enough),
    found with forward hooks; linear layers are left out."""
    sizes: dict[str, tuple[int, ...]] = {}

    def hook(name):
        def record(module, inputs, output):  # returns None: the output is left as it is
            sizes.setdefault(name, tuple(inputs[0].shape[2:]))
        return record

    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if isinstance(m, CONVOLUTIONS)]
    was_training = model.training
    model.eval()
    try:
        model(sample[:1])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sizes


def architecture(model: nn.Module) -> nn.Module:
    """The network after the input standardization (`model.net` of a Classifier), else the model itself."""
    return getattr(model, "net", model)
