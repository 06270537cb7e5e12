"""Frozen, typed specs of a run and its phases, their ids, and TOML loading.

A run is: data + model + initialization (possibly a pretraining phase) + recipe (the true-label
phase) + seed. Its id is a hash of the fields that differ from the defaults, so adding a new
field with a default keeps every old id (the open_lth convention).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

from .errors import BadInput


class Options(dict):
    """Keyword arguments of a dataset loader or a model factory (a TOML table): a dict that cannot
    change and can be hashed, as a frozen spec's field must."""

    def __hash__(self) -> int:
        return hash(json.dumps(self, sort_keys=True, default=str))

    def _frozen(self, *args, **kwargs):
        raise TypeError("spec options cannot change; use dataclasses.replace with new options")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _frozen


@dataclass(frozen=True)
class DataSpec:
    name: str = "mnist1d"  # a registered name, an installed plug-in, or package.module:loader
    train_size: int | None = None  # None: the whole training split; n: a seeded subset of n examples
    options: Options = field(default_factory=Options)  # keyword arguments of the loader (data.options in TOML)
    # the model standardizes its inputs per channel with the training split's mean and std (models.Classifier);
    # false: it sees them as they are, images in [0, 1] (paper 004 Table 2's "non-normalized" data)
    standardize: bool = True


@dataclass(frozen=True)
class ModelSpec:
    name: str = "mlp"  # a registered name, an installed plug-in, or package.module:factory
    width: int | None = None  # None: the architecture's default (hidden units, or channel multiplier)
    depth: int | None = None  # None: the architecture's default (hidden layers for mlp)
    options: Options = field(default_factory=Options)  # more keyword arguments of the factory (model.options)


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of SGD. Learning rate `lr` for epochs 1..m1, lr*gamma for m1+1..m2, and so on."""

    epochs: int = 100  # the cap, in epochs
    batch_size: int = 128
    lr: float = 0.1
    lr_milestones: tuple[int, ...] = ()  # epochs after which the rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0  # l2 coefficient, as in torch.optim.SGD (gradient of wd/2 * ||w||^2)
    augment: bool = False
    # Stop once the un-augmented training accuracy (eval mode, whole training set) reaches
    # `full_fit_accuracy`. Either way every phase records the first such epoch (`epoch_100`). Paper 000
    # trains the true-label phase for the whole schedule (section 2; the authors' main script has no
    # stop), so its presets switch this off there; Algorithm 1's pretraining stops at 100% (footnote 3).
    stop_at_100: bool = True
    # the fraction of the training set that counts as "100%": 1.0 as the paper's text says (Algorithm 1);
    # the authors' pretraining script stops at >= 99.99% (0.9999), offered as an option
    full_fit_accuracy: float = 1.0
    # stop when the running training accuracy has not improved for this many epochs; counted only after
    # the last learning-rate decay (footnote 3 of paper 000: "until convergence" runs the whole schedule)
    patience: int | None = None
    stop_at_train_loss: float | None = None  # stop once the un-augmented full training cross-entropy is <= this
    # paper 004 eq. 2, norm-bias (train/regularizers.py), theta = all trainable parameters; 0: off.
    # "absolute": norm_bias/2 * | ||theta||^2 - mu^2 | (weight decay norm_bias at mu = 0; the authors' update);
    # "squared": norm_bias * (||theta||^2 - mu^2)^2 (equation 2 as printed). Negative (mu = 0, "absolute"):
    # negative weight decay |norm_bias| (paper 004 A.5; the authors' update with a negative coefficient)
    norm_bias: float = 0.0
    norm_bias_mu: float = 0.0  # mu, the l2 norm the parameters are pulled towards
    norm_bias_form: str = "absolute"
    # paper 004 sec. 5 / A.7: RankMin ("min": singular values below the threshold set to zero) or RankMax ("max":
    # singular values clipped from above at the threshold) of the linear and convolution layers named by rank_layers,
    # after every rank_every-th epoch of the phase (or the rank_epochs); "none": off. The threshold is rank_threshold
    # x the layer's largest singular value, or rank_threshold itself (rank_threshold_scale)
    rank_mode: str = "none"
    rank_threshold: float = 0.1
    rank_every: int = 1
    rank_layers: str = "all"  # which layers: "all", or "inner" (paper 004's: not the first, the shortcuts, the classifier)
    # the epochs (1-based) after which the projection is applied; (): after every rank_every-th epoch. Paper 004
    # projects, retrains, and repeats; the authors' 15 epochs project after epochs 2, 6 and 11 (train/rank_control.py)
    rank_epochs: tuple[int, ...] = ()
    # what rank_threshold is: "largest" - a fraction of each layer's largest singular value at the start of the
    # phase (ours); "absolute" - the singular-value bound itself (the authors' code: 0.5 RankMin, 1.5 RankMax)
    rank_threshold_scale: str = "largest"
    # adversarial training (Madry et al. 2018; paper 004 A.7: 7 steps of 2/255, eps 8/255, random start): every
    # batch replaced by its L-inf PGD attack; budgets in 1/255 of the image range (other data: in units of 0.0156
    # of the inputs' mean training std, 8 = 0.125 sigma as 8/255 on CIFAR-10; measures.attacks.budget_unit); 0 steps: off
    adversarial_steps: int = 0
    adversarial_eps: float = 8.0
    adversarial_step_size: float = 2.0


@dataclass(frozen=True)
class InitSpec:
    """How the true-label phase is initialized.

    `default`: the framework's random init. `adversarial`: Algorithm 1 of paper 000 -
    R = replication_factor replicas of every training input, zeroed_percent % of each replica's
    pixels (zero_mode="pixels": all channels of a location; "values": individual entries) set to
    zero, and random_label_fraction of the labels drawn uniformly at random; then `pretrain`.
    `normal` (paper 001, appendix B): every weight ~ N(0, init_std^2). `partial-random-labels` (paper 001,
    appendix C): `pretrain` on the training set with random_label_fraction of its labels random (R = 1, N = 0).
    """

    name: str = "default"
    replication_factor: int = 1
    zeroed_percent: float = 10.0
    zero_mode: str = "pixels"
    random_label_fraction: float = 1.0
    init_std: float | None = None  # `normal`: every weight and bias of linear/conv layers ~ N(0, init_std^2)
    bias_shift: float = 0.0  # `bias-shift` (paper 004 Table 1 "Bias+20"): added to every bias
    bias_uniform: float | None = None  # `bias-uniform` (Table 1 "Bias in U(-a, a)"): every bias ~ U(-a, a)
    linear_l2: float = 0.0  # `lemma1`: l2 coefficient of the embedded logistic regression, mean CE + linear_l2/2 ||A||_F^2
    pretrain: PhaseSpec = PhaseSpec(epochs=300, patience=20)


@dataclass(frozen=True)
class ComputeSpec:
    """How the trained phases are computed (not what): the defaults are the paper's fp32 on a contiguous
    layout, uncompiled, so that they leave every run id as it was (ids hash only non-default fields).

    precision: "fp32" - IEEE float32 everywhere (TF32 off on CUDA, as on the paper's pre-Ampere GPUs);
    "tf32" - float32 storage with TF32 convolutions and matmuls on CUDA (on the CPU the same as fp32);
    "bf16" - torch.autocast to bfloat16 (weights, gradients and optimizer state stay float32).
    channels_last: the model and each batch in NHWC memory layout. compile: torch.compile of the model.
    They apply to every trained phase's steps and evaluations; a random init is computed the same way for
    all of them (its phase id ignores them)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False


PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True)
class RunSpec:
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    init: InitSpec = InitSpec()
    recipe: PhaseSpec = PhaseSpec()
    seed: int = 0
    compute: ComputeSpec = ComputeSpec()


def recipe_name(recipe: PhaseSpec) -> str:
    """The paper's name of a recipe (Table 2 of paper 000): the heuristics it switches on."""
    parts = [name for name, on in (("DA", recipe.augment), ("l2", recipe.weight_decay > 0),
                                   ("momentum", recipe.momentum > 0)) if on]
    if len(parts) == 3:
        return "sota"
    return "+".join(parts) if parts else "vanilla"


RECIPES = {  # name -> (augmentation, l2, momentum): vanilla, sota and every subset between (paper 000, Table 2)
    "vanilla": (False, False, False), "DA": (True, False, False), "l2": (False, True, False),
    "momentum": (False, False, True), "DA+l2": (True, True, False), "DA+momentum": (True, False, True),
    "l2+momentum": (False, True, True), "sota": (True, True, True),
}


def apply_recipe(sota: PhaseSpec, name: str) -> PhaseSpec:
    """The recipe `name` derived from a SOTA phase: heuristics not in `name` are switched off
    (no augmentation, weight decay 0, momentum 0); the others keep the SOTA phase's values."""
    augment, l2, momentum = RECIPES[name]
    return replace(sota, augment=sota.augment and augment, weight_decay=sota.weight_decay if l2 else 0.0,
                   momentum=sota.momentum if momentum else 0.0)


# ---- ids ---------------------------------------------------------------------------------------

def non_default(obj: Any, default: Any = None) -> dict:
    """The fields of a (nested) spec dataclass that differ from their defaults."""
    default = type(obj)() if default is None else default
    out = {}
    for f in fields(obj):
        value, base = getattr(obj, f.name), getattr(default, f.name)
        if is_dataclass(value):
            sub = non_default(value, base)
            if sub:
                out[f.name] = sub
        elif value != base:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def canonical(spec: RunSpec) -> RunSpec:
    """Drop fields that cannot matter: the default init has no settings."""
    if spec.init.name == "default":
        spec = replace(spec, init=InitSpec(name=spec.init.name))
    return spec


def digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def run_id(spec: RunSpec) -> str:
    return digest(non_default(canonical(spec)))


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj, dict_factory=lambda pairs: {k: dict(v) if isinstance(v, Options) else v
                                                                for k, v in pairs})


# ---- building specs from dicts (TOML files, flags) ---------------------------------------------

def from_dict(cls: type, data: dict, where: str = "spec") -> Any:
    """Build a spec dataclass from a plain dict, checking names and types; BadInput on a mistake."""
    if not isinstance(data, dict):
        raise BadInput(f"{where} must be a table, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadInput(f"unknown field {where}.{unknown[0]} (known: {', '.join(sorted(known))})")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}", getattr(cls(), name))
              for name, value in data.items()}
    return replace(cls(), **kwargs) if kwargs else cls()


def _coerce(hint: Any, value: Any, where: str, default: Any) -> Any:
    if is_dataclass(default):
        return from_dict(type(default), value, where)
    if isinstance(default, Options):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise BadInput(f"{where} must be a table of keyword arguments, got {value!r}")
        return Options(value)
    text = str(hint)
    if value is None and "None" in text:
        return None
    if "tuple" in text:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise BadInput(f"{where} must be a list of integers, got {value!r}")
        return tuple(value)
    if "int" in text:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInput(f"{where} must be an integer, got {value!r}")
        return value
    if "float" in text:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInput(f"{where} must be a number, got {value!r}")
        return float(value)
    if "bool" in text:
        if not isinstance(value, bool):
            raise BadInput(f"{where} must be true or false, got {value!r}")
        return value
    if "str" in text:
        if not isinstance(value, str):
            raise BadInput(f"{where} must be a string, got {value!r}")
        return value
    raise BadInput(f"{where}: cannot read {value!r}")


def allows_none(path: tuple[str, ...]) -> bool:
    """Whether the RunSpec field at `path` (e.g. ("data", "train_size")) may be None."""
    cls: Any = RunSpec
    for i, key in enumerate(path):
        if not is_dataclass(cls) or key not in {f.name for f in fields(cls)}:
            return False
        if i == len(path) - 1:
            return "None" in str(get_type_hints(cls)[key])
        cls = type(getattr(cls(), key))
    return False


def load_toml(path: str | Path) -> dict:
    """Read a spec file: tables [data], [model], [init], [init.pretrain], [recipe], [compute] and `seed`."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BadInput(f"spec file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read spec file {path}: {exc}") from None


def merge(spec: RunSpec, overrides: dict) -> RunSpec:
    """`spec` with the (nested) values of `overrides` replacing its own; fields are type-checked."""
    base = to_dict(spec)
    _deep_update(base, overrides, "spec")
    return from_dict(RunSpec, base)


def _deep_update(base: dict, new: dict, where: str) -> None:
    if not isinstance(new, dict):
        raise BadInput(f"{where} must be a table, got {new!r}")
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value, f"{where}.{key}")
        else:
            base[key] = value


MAX_SEED = 2 ** 63 - 1  # seeds feed torch.Generator.manual_seed and 63-bit derived seeds
MAX_DEPTH = 1000  # the deepest nets of the papers here have about 100 layers; building 10^5 takes minutes


def _require_finite(obj: Any, where: str = "") -> None:
    """Every float field of a spec dataclass (nested ones too) is finite: nan and inf train nothing meaningful."""
    for f in fields(obj):
        value, name = getattr(obj, f.name), f"{where}{f.name}"
        if is_dataclass(value):
            _require_finite(value, f"{name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"{name} must be a finite number, got {value}")


def _validate_phase(phase: PhaseSpec, where: str) -> None:
    if phase.epochs < 0 or phase.batch_size < 1 or not phase.lr > 0:
        raise BadInput(f"{where}: epochs must be >= 0, batch size >= 1 and lr > 0")
    if not 0.0 <= phase.momentum < 1.0:
        raise BadInput(f"{where}.momentum must lie in [0, 1), got {phase.momentum}")
    if phase.weight_decay < 0:
        raise BadInput(f"{where}.weight_decay must be >= 0, got {phase.weight_decay}")
    if not phase.lr_gamma > 0:
        raise BadInput(f"{where}.lr_gamma must be positive, got {phase.lr_gamma}")
    milestones = phase.lr_milestones
    if any(m < 0 for m in milestones) or any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise BadInput(f"{where}.lr_milestones must be non-negative and strictly increasing, got {list(milestones)}")
    if not 0.0 < phase.full_fit_accuracy <= 1.0:
        raise BadInput(f"{where}.full_fit_accuracy must lie in (0, 1], got {phase.full_fit_accuracy}")
    if phase.patience is not None and phase.patience < 1:
        raise BadInput(f"{where}.patience must be at least 1")
    if phase.stop_at_train_loss is not None and not phase.stop_at_train_loss > 0:
        raise BadInput(f"{where}.stop_at_train_loss must be positive")
    if phase.norm_bias_mu < 0 or phase.norm_bias_form not in ("squared", "absolute"):
        raise BadInput(f"{where}: norm_bias_mu must be >= 0, norm_bias_form 'squared' or 'absolute'")
    if phase.norm_bias < 0 and (phase.norm_bias_mu != 0 or phase.norm_bias_form != "absolute"):
        raise BadInput(f"{where}: a negative norm_bias is negative weight decay: it needs norm_bias_mu = 0 and "
                       "norm_bias_form 'absolute'")
    if phase.rank_mode not in ("none", "min", "max") or not phase.rank_threshold > 0 or phase.rank_every < 1:
        raise BadInput(f"{where}: rank_mode must be none, min or max, rank_threshold > 0 and rank_every >= 1")
    if phase.rank_layers not in ("inner", "all"):
        raise BadInput(f"{where}: rank_layers must be inner or all, got {phase.rank_layers!r}")
    if any(e < 1 for e in phase.rank_epochs) or phase.rank_threshold_scale not in ("largest", "absolute"):
        raise BadInput(f"{where}: rank_epochs must be >= 1 and rank_threshold_scale largest or absolute")
    if phase.adversarial_steps < 0 or phase.adversarial_eps < 0 or phase.adversarial_step_size < 0:
        raise BadInput(f"{where}: adversarial_steps, adversarial_eps and adversarial_step_size must be >= 0")


def validate(spec: RunSpec) -> RunSpec:
    """Range checks that do not need the registries (those are checked where names are resolved).
    Every number must be finite; sizes are bounded by memory where the data and model are known (cli)."""
    _require_finite(spec)
    init = spec.init
    if init.replication_factor < 1:
        raise BadInput(f"replication factor R must be at least 1, got {init.replication_factor}")
    if not 0.0 <= init.zeroed_percent <= 100.0:
        raise BadInput(f"zeroed percentage N must lie in [0, 100], got {init.zeroed_percent}")
    if init.zero_mode not in ("pixels", "values"):
        raise BadInput(f"zero mode must be 'pixels' or 'values', got {init.zero_mode!r}")
    if not 0.0 <= init.random_label_fraction <= 1.0:
        raise BadInput(f"random label fraction must lie in [0, 1], got {init.random_label_fraction}")
    if init.init_std is not None and not init.init_std > 0:
        raise BadInput(f"init std must be positive, got {init.init_std}")
    if init.name == "normal" and init.init_std is None:
        raise BadInput("the normal init needs init.init_std (the standard deviation of every weight)")
    if init.name == "bias-uniform" and init.bias_uniform is None:
        raise BadInput("the bias-uniform init needs init.bias_uniform (the half-width a of U(-a, a))")
    if init.bias_uniform is not None and not init.bias_uniform > 0:
        raise BadInput(f"bias_uniform (the half-width a of U(-a, a)) must be positive, got {init.bias_uniform}")
    if init.linear_l2 < 0:
        raise BadInput(f"linear_l2 must be >= 0, got {init.linear_l2}")
    for where, phase in (("recipe", spec.recipe), ("init.pretrain", init.pretrain)):
        _validate_phase(phase, where)
    if spec.compute.precision not in PRECISIONS:
        raise BadInput(f"precision must be one of {', '.join(PRECISIONS)}, got {spec.compute.precision!r}")
    if not 0 <= spec.seed <= MAX_SEED:
        raise BadInput(f"seed must lie in [0, 2^63 - 1], got {spec.seed}")
    if spec.data.train_size is not None and spec.data.train_size < 1:
        raise BadInput(f"train size must be at least 1, got {spec.data.train_size}")
    for name in ("width", "depth"):
        value = getattr(spec.model, name)
        if value is not None and value < 1:
            raise BadInput(f"model {name} must be at least 1, got {value}")
    if spec.model.depth is not None and spec.model.depth > MAX_DEPTH:
        raise BadInput(f"model depth must be at most {MAX_DEPTH}, got {spec.model.depth}")
    return spec
