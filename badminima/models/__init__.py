"""Architectures by name: a registry and one entry point, `build_model`.

Every model is a `Classifier` (models/classifier.py): the input standardization (training-split
statistics, as buffers) followed by the architecture `net`. Measures that look at layers use `model.net`.

The registry holds each built-in architecture as a reference `module:function` and a description,
so listing them imports no model code. Beside the built-ins, a model name may be an installed
plug-in (entry-point group `badminima.models`) or a reference `package.module:factory` (badminima.plugins).

The contract of a factory (built-in or plug-in):

    factory(input_shape: tuple[int, ...], num_classes: int, **kwargs) -> torch.nn.Module

`input_shape` is one example's shape ((C, L) signals, (C, H, W) images, (d,) points), the network
maps a batch (N, *input_shape) of standardized inputs to logits (N, num_classes). `kwargs` are the
spec's `model.width` and `model.depth` when set and every entry of `model.options`. The network is
built under the run's seeded RNG (the random-init phase), so a factory that draws its weights from
torch's default generator gives the same weights for the same seed.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from .. import plugins
from ..errors import BadInput

# name -> (reference of the factory, description)
BUILTIN = {
    "mlp": ("badminima.models.mlp:mlp",
            "fully connected ReLU net: `depth` hidden layers (default 2) of `width` units (default 512)"),
    "cnn1d": ("badminima.models.small_cnn:cnn1d", "1-D ConvNet for signals (mnist1d): `depth` conv layers (default 3) "
              "of `width` channels (default 32), kernel 5, stride 2"),
    "cnn2d": ("badminima.models.small_cnn:cnn2d", "2-D ConvNet for small images (digits): `depth` 3x3 conv layers "
              "(default 2) of `width` channels (default 32), then a linear layer"),
    "cnn3": ("badminima.models.puzzles_cnn:cnn3", "paper 001 appendix L.1: `depth` conv layers (default 2) of `width` "
             "5x5 filters (default 24), stride 2, padding 2, bias in the first layer only, ReLU, no pooling, then a "
             "bias-free linear layer; 1-D convolutions for signals"),
    "cnn5": ("badminima.models.puzzles_cnn:cnn5", "paper 001 Figures 1 and 3: `depth` conv layers (default 4) of `width` "
             "3x3 filters (default 16), stride 2, padding 1, bias in the first layer only, ReLU, no pooling, then a "
             "bias-free linear layer (8 000 parameters on CIFAR-10); 1-D convolutions for signals"),
    "cnn5bn": ("badminima.models.puzzles_cnn:cnn5bn", "paper 001 appendix L.2: conv layers of `width` x (1, 2, 2, 4) 3x3 "
               "filters (default 32, 64, 64, 128), stride 2, each with batch norm and ReLU, no pooling, then a linear "
               "layer; 1-D convolutions for signals"),
    "resnet56": ("badminima.models.resnet:resnet56", "CIFAR ResNet of He et al. 2016 (paper 001 Figure 2c-d): depth "
                 "6n + 2 (`depth`, default 56 = 3 stages x 9 basic blocks), `width` = first-stage channels (default 16), "
                 "zero-padded identity shortcuts; 853 018 parameters for 10 classes; 1-D convolutions for signals"),
    "vgg16": ("badminima.models.vgg:vgg16",
              "VGG16 with batch norm for 32x32 images (CIFAR style), `width` = first-stage channels (default 64)"),
    "resnet18": ("badminima.models.resnet:resnet18",
                 "ResNet18, CIFAR variant (BasicBlocks 2-2-2-2), `width` = stem channels (default 64)"),
    "resnet18-noskip": ("badminima.models.resnet:resnet18_noskip",
                        "ResNet18 without skip connections (paper 004 Tables 4, 10), `width` = stem channels (default 64)"),
    "resnet20-fixup": ("badminima.models.fixup_resnet:resnet20_fixup",
                       "ResNet-20 with Fixup initialization, no batch norm (paper 004 Tables 3, 8): `width` = first-stage "
                       "channels (default 16), `depth` = 6n+2 (default 20)"),
    "mobilenetv2": ("badminima.models.mobilenetv2:mobilenetv2",
                    "MobileNetV2, CIFAR variant (paper 004 Tables 2, 3): `width` = stem channels (default 32; others scale)"),
    "resnet50": ("badminima.models.resnet:resnet50",
                 "ResNet50, CIFAR variant (Bottlenecks 3-4-6-3), `width` = stem channels (default 64)"),
    "densenet40": ("badminima.models.densenet:densenet40",
                   "DenseNet-40 (growth rate `width`, default 12; `depth` = total depth, default 40)"),
    "wrn": ("badminima.models.wide_resnet:wrn", "WideResNet-d-k (pre-activation, no dropout): `width` = widening "
            "factor k (default 1), `depth` = d (default 16)"),
    "wrn-nobn": ("badminima.models.wide_resnet:wrn_nobn",
                 "WideResNet-d-k without batch normalization (paper 004 Figure 6)"),
    "wrn-noskip": ("badminima.models.wide_resnet:wrn_noskip",
                   "WideResNet-d-k without skip connections (paper 004 Figure 6)"),
}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    target: str | Callable  # a reference "module:function" (imported on first use) or the factory itself
    description: str

    @property
    def build(self) -> Callable:
        """The factory: build(input_shape, num_classes, **kwargs) -> nn.Module."""
        return plugins.resolve(self.target, f"model {self.name!r}") if isinstance(self.target, str) else self.target


MODELS: dict[str, ModelEntry] = {name: ModelEntry(name, ref, text) for name, (ref, text) in BUILTIN.items()}


def register_model(name: str, description: str):
    """Decorator registering a factory in this process (plug-ins that workers must see use a reference
    or an entry point instead: a spawned worker does not run the code that registered it)."""
    def wrap(fn):
        MODELS[name] = ModelEntry(name, fn, description)
        return fn
    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered and installed (entry-point) model names matching a glob pattern."""
    return sorted(n for n in {*MODELS, *plugins.entry_points("model")} if fnmatch.fnmatch(n, pattern))


def get_model(name: str) -> ModelEntry:
    """The registry entry of a built-in name, an installed plug-in or a `package.module:factory` reference."""
    if name in MODELS:
        return MODELS[name]
    reference = plugins.reference_of("model", name, {})
    if reference is None:
        raise BadInput(f"unknown model {name!r} (known: {', '.join(list_models())}; "
                       f"or your own as package.module:factory)")
    return ModelEntry(name, reference, f"plug-in {reference}")


def check_model_name(name: str) -> None:
    """BadInput unless `name` resolves to a callable factory (a plug-in is imported here)."""
    get_model(name).build  # noqa: B018


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, mean, std, width: int | None = None,
                depth: int | None = None, options: dict | None = None):
    """The architecture `name` wrapped in a Classifier, initialized from the current RNG state
    (PyTorch's defaults for the built-ins)."""
    from torch import nn

    from .classifier import Classifier

    build = get_model(name).build
    for key in ("width", "depth"):
        if key in (options or {}):
            raise BadInput(f"model {name!r}: set model.{key}, not model.options.{key}")
    kwargs = {**{k: v for k, v in (("width", width), ("depth", depth)) if v is not None}, **(options or {})}
    plugins.check_arguments(build, f"model {name!r}", tuple(input_shape), num_classes, **kwargs)
    net = build(tuple(input_shape), num_classes, **kwargs)
    if not isinstance(net, nn.Module):
        raise BadInput(f"model {name!r}: the factory returned {type(net).__name__}, not a torch.nn.Module")
    return Classifier(net, mean, std, len(input_shape))


def num_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def __getattr__(name: str):  # `from badminima.models import Classifier` without importing torch up front
    if name == "Classifier":
        from .classifier import Classifier
        return Classifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
