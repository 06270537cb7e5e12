"""The initializations of papers 000 and 001: PyTorch's default, Algorithm 1's adversarial pretraining (paper 000),
normal weights N(0, s^2) and pretraining on partly random labels (paper 001, appendices B and C)."""
from __future__ import annotations

import torch

from ..data import Dataset
from ..data.corruptions import adversarial_dataset
from ..spec import InitSpec
from . import register_init


def _algorithm1(data: Dataset, init: InitSpec, generator: torch.Generator):
    return adversarial_dataset(data.x_train, data.y_train, data.num_classes, init.replication_factor,
                               init.zeroed_percent, init.zero_mode, init.random_label_fraction, generator)


register_init("default")
register_init("adversarial", _algorithm1)


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


register_init("normal", transform=_normal_weights, transform_fields=("init_std",))
register_init("partial-random-labels", _partial_random_labels, transform=_normal_weights,
              transform_fields=("init_std",))
