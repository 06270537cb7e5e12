"""Architectures by name: a decorator registry and one entry point, `build_model`.

Every model is a `Classifier`: the input standardization (training-split statistics, as buffers)
followed by the architecture `net`. Measures that look at layers use `model.net`.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import BadInput


class Classifier(nn.Module):
    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor, input_dims: int):
        super().__init__()
        self.net = net
        shape = (1, -1) + (1,) * (input_dims - 1)  # broadcast per channel (per feature for points)
        self.register_buffer("mean", mean.reshape(shape).clone())
        self.register_buffer("std", std.reshape(shape).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]  # build(input_shape, num_classes, width=None, depth=None)
    description: str


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, description: str):
    def wrap(fn):
        MODELS[name] = ModelEntry(name, fn, description)
        return fn
    return wrap


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in MODELS if fnmatch.fnmatch(n, pattern))


def check_model_name(name: str) -> None:
    if name not in MODELS:
        raise BadInput(f"unknown model {name!r} (known: {', '.join(list_models())})")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, mean: torch.Tensor,
                std: torch.Tensor, width: int | None = None, depth: int | None = None) -> Classifier:
    """The architecture `name`, initialized by PyTorch's defaults from the current RNG state."""
    check_model_name(name)
    kwargs = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
    try:
        net = MODELS[name].build(tuple(input_shape), num_classes, **kwargs)
    except TypeError as exc:
        raise BadInput(f"model {name!r} does not take {', '.join(kwargs)}: {exc}") from None
    return Classifier(net, mean, std, len(input_shape))


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


from . import densenet, mlp, puzzles_cnn, resnet, small_cnn, vgg, wide_resnet  # noqa: E402,F401  (registration)
