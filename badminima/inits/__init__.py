"""Initializations by name. An init either pretrains (on data it derives from the training set)
or is the framework's default; later inits may also transform weights directly."""
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


INITS: dict[str, InitEntry] = {}


def register_init(name: str, description: str, pretraining_data=None) -> None:
    INITS[name] = InitEntry(name, description, pretraining_data)


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
