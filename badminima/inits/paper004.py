"""Paper 004's initializations: Lemma 1 (see lemma1.py), large or spread-out biases and the zero init
(section 2, Tables 1 and 5-7), He's uniform init (section 4, the NTK experiment), and natural pretraining on
the true labels (appendix A.7: RankMin/RankMax fine-tune a naturally or adversarially trained model).

"Bias" means every parameter named `bias`: of linear and convolution layers and the shifts of batch norm.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Dataset
from ..spec import InitSpec
from . import register_init
from .lemma1 import lemma1_transform

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _biases(model: nn.Module) -> list[torch.Tensor]:
    return [p for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] == "bias"]


@torch.no_grad()
def shift_biases(model: nn.Module, init: InitSpec, generator: torch.Generator) -> None:
    """Every bias += bias_shift (Table 1 "Bias+20"); no-op at the default 0."""
    for p in _biases(model):
        p.add_(init.bias_shift)


@torch.no_grad()
def uniform_biases(model: nn.Module, init: InitSpec, generator: torch.Generator) -> None:
    """Every bias ~ U(-a, a), a = bias_uniform (Table 1 "Bias in U(-50, 50)"); no-op without bias_uniform."""
    if init.bias_uniform is None:
        return
    for p in _biases(model):
        draw = torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1
        p.copy_((draw * init.bias_uniform).to(p))


@torch.no_grad()
def zero_parameters(model: nn.Module, init: InitSpec, generator: torch.Generator) -> None:
    """Every trainable parameter = 0 (Tables 5-7 "Zero"; batch-norm scales too)."""
    for p in model.parameters():
        p.zero_()


@torch.no_grad()
def he_uniform(model: nn.Module, init: InitSpec, generator: torch.Generator) -> None:
    """Weights of linear/conv layers ~ U(-b, b), b = sqrt(6 / fan_in) (He et al. 2015, "uniform He
    initialization" of paper 004 section 4), biases 0; batch norm keeps scale 1, shift 0."""
    for m in model.modules():
        if isinstance(m, WEIGHT_LAYERS):
            nn.init.kaiming_uniform_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                m.bias.zero_()


def true_labels(data: Dataset, init: InitSpec, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set as it is: a pretraining phase of ordinary training (init.pretrain)."""
    return data.x_train, data.y_train


register_init("lemma1", transform=lemma1_transform,
              transform_fields=("name", "linear_l2"), transform_needs_data=True)
register_init("bias-shift", transform=shift_biases, transform_fields=("bias_shift",))
register_init("bias-uniform", transform=uniform_biases, transform_fields=("bias_uniform",))
register_init("zero", transform=zero_parameters, transform_fields=("name",))
register_init("he-uniform", transform=he_uniform, transform_fields=("name",))
register_init("natural-pretraining", true_labels)
