"""Initializations by name. An init may transform the random init's weights directly (`transform`,
applied in the random-init phase) and may pretrain (on data it derives from the training set)."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

import torch

from ..data import Dataset
from ..data.corruptions import adversarial_dataset
from ..errors import BadInput
from ..spec import InitSpec


@dataclass(frozen=True)
class InitEntry:
    name: str
    description: str
    # (dataset, init spec, generator) -> (inputs, labels) of a pretraining phase; None: no pretraining
    pretraining_data: Callable[[Dataset, InitSpec, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None
    # (model, init spec, generator) -> None: changes the random init's weights in place; None: keeps them.
    # It reads only the InitSpec fields named in `transform_fields` and must leave the weights as they are
    # when those all have their defaults (the random-init phase's id includes just those fields).
    transform: Callable[[torch.nn.Module, InitSpec, torch.Generator], None] | None = None
    transform_fields: tuple[str, ...] = ()
    # True: `transform` is also given the training set, transform(model, init spec, generator, data=Dataset on the
    # CPU) (`lemma1` fits a linear classifier on it); the random-init phase's id includes the data spec anyway
    transform_needs_data: bool = False


INITS: dict[str, InitEntry] = {}


def register_init(name: str, description: str, pretraining_data=None, transform=None,
                  transform_fields: tuple[str, ...] = (), transform_needs_data: bool = False) -> None:
    INITS[name] = InitEntry(name, description, pretraining_data, transform, transform_fields, transform_needs_data)


def list_inits(pattern: str = "*") -> list[str]:
    return sorted(n for n in INITS if fnmatch.fnmatch(n, pattern))


def get_init(name: str) -> InitEntry:
    if name not in INITS:
        raise BadInput(f"unknown initialization {name!r} (known: {', '.join(list_inits())})")
    return INITS[name]


def _algorithm1(data: Dataset, init: InitSpec, generator: torch.Generator):
    return adversarial_dataset(data.x_train, data.y_train, data.num_classes, init.replication_factor,
                               init.zeroed_percent, init.zero_mode, init.random_label_fraction, generator)


register_init("default", "PyTorch's default initialization of every layer (paper 000's random init)")
register_init("adversarial", "Algorithm 1 of paper 000: pretrain with vanilla SGD on R replicas of the training set, "
              "N% of pixels zeroed, uniformly random labels", _algorithm1)


@torch.no_grad()
def _normal_weights(model: torch.nn.Module, init: InitSpec, generator: torch.Generator) -> None:
    """Every weight and bias of the linear and convolution layers ~ N(0, init_std^2) (paper 001, appendix B:
    "initialized from a normal distribution with mean 0 and standard deviation" s); no-op without init_std."""
    if init.init_std is None:
        return
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            for p in (m.weight, m.bias):
                if p is not None:
                    p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * init.init_std)


def _partial_random_labels(data: Dataset, init: InitSpec, generator: torch.Generator):
    """Paper 001 appendix C's "random pretraining" set: the training set once (R = 1, nothing zeroed) with
    random_label_fraction of its labels replaced by uniform random classes."""
    return adversarial_dataset(data.x_train, data.y_train, data.num_classes, 1, 0.0, init.zero_mode,
                               init.random_label_fraction, generator)


register_init("normal", "paper 001 appendix B: every weight and bias of linear/conv layers ~ N(0, init_std^2)",
              transform=_normal_weights, transform_fields=("init_std",))
register_init("partial-random-labels", "paper 001 appendix C: pretrain on the training set with a fraction "
              "random_label_fraction of random labels (Algorithm 1 with R=1, N=0); from N(0, init_std^2) if set",
              _partial_random_labels, transform=_normal_weights, transform_fields=("init_std",))

from . import lemma1, paper004  # noqa: E402,F401  (registration: paper 004's inits)
