"""Initializations by name. An init may transform the random init's weights directly (`transform`,
applied in the random-init phase) and may pretrain (on data it derives from the training set).

The built-in names are listed in `BUILTIN` with the module that registers them, so listing them imports no
init code (nor torch); `get_init` imports the module on first use."""
from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import BadInput

if TYPE_CHECKING:
    import torch

    from ..data import Dataset
    from ..spec import InitSpec

# name -> (the module of this package that registers it with register_init, its description: the one place it is
# written); a new built-in init is one entry here (tests/test_registries.py checks that the entries and the
# registrations agree)
BUILTIN = {
    "default": ("builtin", "PyTorch's default initialization of every layer (paper 000's random init)"),
    "adversarial": ("builtin", "Algorithm 1 of paper 000: pretrain with vanilla SGD on R replicas of the training "
                    "set, N% of pixels zeroed, uniformly random labels"),
    "normal": ("builtin", "paper 001 appendix B: every weight and bias of linear/conv layers ~ N(0, init_std^2)"),
    "partial-random-labels": ("builtin", "paper 001 appendix C: pretrain on the training set with a fraction "
                              "random_label_fraction of random labels (Algorithm 1 with R=1, N=0); from "
                              "N(0, init_std^2) if set"),
    "lemma1": ("paper004", "paper 004 Lemma 1: an MLP equal to a weight-decayed (linear_l2) logistic regression on "
               "every training point, all ReLUs active"),
    "bias-shift": ("paper004", "paper 004 Table 1: the default init with bias_shift added to every bias"),
    "bias-uniform": ("paper004", "paper 004 Table 1: the default init with every bias ~ U(-bias_uniform, "
                     "bias_uniform)"),
    "zero": ("paper004", "paper 004 Tables 5-7: every parameter 0"),
    "he-uniform": ("paper004", "paper 004 section 4: He's uniform init of linear/conv weights, zero biases"),
    "natural-pretraining": ("paper004", "paper 004 A.7: first train on the true labels (init.pretrain), then the "
                            "recipe fine-tunes (RankMin/RankMax)"),
}


@dataclass(frozen=True)
class InitEntry:
    name: str
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

    @property
    def description(self) -> str:
        return BUILTIN.get(self.name, ("", ""))[1]


INITS: dict[str, InitEntry] = {}  # the inits whose modules this process has imported


def register_init(name: str, pretraining_data=None, transform=None,
                  transform_fields: tuple[str, ...] = (), transform_needs_data: bool = False) -> None:
    INITS[name] = InitEntry(name, pretraining_data, transform, transform_fields, transform_needs_data)


def list_inits(pattern: str = "*") -> list[str]:
    return sorted(n for n in {*BUILTIN, *INITS} if fnmatch.fnmatch(n, pattern))


def init_descriptions() -> dict[str, str]:
    """name -> description of every init, imported or not (imports no init module)."""
    return {name: BUILTIN[name][1] for name in list_inits()}


def get_init(name: str) -> InitEntry:
    """The init `name`, its module imported on first use."""
    if name not in INITS and name in BUILTIN:
        importlib.import_module(f"{__name__}.{BUILTIN[name][0]}")
    if name not in INITS:
        raise BadInput(f"unknown initialization {name!r} (known: {', '.join(list_inits())})")
    return INITS[name]
