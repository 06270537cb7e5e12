"""The measures `badminima measure` knows by name (module `measuring` applies them to a stored run): each is a
function of a target (`measuring.Target`: a stored run's final model, its random init, its data and spec),
registered with a description, whether it is in the default set (the measures that take seconds on a CPU;
`all` adds the Hessian, the NTK and PGD) and a version, raised when its convention changes so that values
stored under the old one are not read. Subsets are seeded by the run's seed, so a measure is a function of
the run alone:

- attacks: at most ATTACK_EXAMPLES test examples. Budgets in the units of `attacks.budget_unit`:
  1/255 of the pixel range for images (clamped to [0, 1]); for other data, 0.01564 of the inputs'
  mean training std (so that 8 units are 0.125 sigma, as 8/255 on CIFAR-10), without clamping. PGD
  starts at a random point of the ball (seeded by the run's seed), as the authors evaluate it.
- Hessian: at most HESSIAN_EXAMPLES training examples (paper 004 uses the full dataset); every eigenvalue is
  shown with its convergence flag and the Hessian-vector products it used.
- NTK: NTK_INPUTS training inputs (paper 004: 25 images), the run's random init vs its final model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..errors import BadInput
from ..store.db import measure_key
from ..train import derive_seed, evaluate
from .attacks import budget_label, budget_unit, fgsm_accuracy, pgd_accuracy, unit_description
from .curvature import (HessianOperator, extreme_eigenvalues_power, full_batch_loss_and_gradient, hutchinson_trace,
                        lanczos_eigenvalue)
from .distance import relative_distance
from .margins import decision_boundary_summary, margin_summary, output_margins
from .normalized import normalized_cross_entropy, normalized_network, output_normalized_cross_entropy
from .norms import (frobenius_norm, l1_path_norm, l2_path_norm, product_of_frobenius_norms, spectral_norm_product,
                    spectral_norms, sum_of_frobenius_norms)
from .ntk import ntk_change
from .rank import layer_ranks, mean_effective_rank

if TYPE_CHECKING:
    from ..measuring import Target

ATTACK_EXAMPLES = 1000
FGSM_BUDGETS = (1, 2, 4, 8)  # in 1/255 of the image range (paper 000's Figure 6 budgets are not in its text)
PGD_BUDGETS = (8, 1)  # paper 004, Tables 4, 9, 10: eps 8/255 and 1/255, 20 steps of eps/4
PGD_STEPS = 20
HESSIAN_EXAMPLES = 1000
HESSIAN_POWER_ITERATIONS = 500  # paper 004, Table 1
HESSIAN_LANCZOS_HVPS = 1000  # at most, per eigenvalue
HESSIAN_TOL = 1e-3  # converged: residual <= HESSIAN_TOL * |eigenvalue| (measures/curvature.py)
HUTCHINSON_SAMPLES = 100
NTK_INPUTS = 25
GRID_POINTS = 400  # decision-boundary grid: points along the longer side


@dataclass(frozen=True)
class Measure:
    name: str
    compute: Callable[[Target], Any]
    description: str
    default: bool = True
    applies: Callable[[Target], bool] = lambda target: True
    version: int = 1  # raised when a measure's convention changes, so that values stored under the old one are not read

    @property
    def key(self) -> str:
        """The name its values are stored under."""
        return measure_key(self.name, self.version)


MEASURES: dict[str, Measure] = {}


def _measure(name: str, description: str, default: bool = True, applies=lambda target: True, version: int = 1):
    def wrap(fn):
        MEASURES[name] = Measure(name, fn, description, default, applies, version)
        return fn
    return wrap


def _sample(t: Target) -> torch.Tensor:
    return t.data.x_train[:1]


@_measure("frobenius", "Frobenius norm of all parameters (000 sec 3.6)")
def _frobenius(t):
    return frobenius_norm(t.model)


@_measure("frobenius_product", "product of the layers' Frobenius norms, batch norm folded (001 Fig. 4)")
def _frobenius_product(t):
    return product_of_frobenius_norms(t.model)


@_measure("frobenius_sum", "sum of the layers' Frobenius norms, batch norm folded")
def _frobenius_sum(t):
    return sum_of_frobenius_norms(t.model)


@_measure("spectral", "layers' spectral norms: conv operator with its zero padding (exact), with circular padding (FFT) "
          "and reshaped kernel; product over the chain (shortcut convs left out), sum", version=2)
def _spectral(t):
    norms = {method: spectral_norms(t.model, _sample(t), method) for method in ("zero-padding", "circular", "reshaped")}
    exact = norms["zero-padding"]
    product = spectral_norm_product(exact)
    return {"product": product["product"], "sum": sum(exact.values()), "left_out_of_product": product["left_out"],
            "circular_product": spectral_norm_product(norms["circular"])["product"],
            "reshaped_product": spectral_norm_product(norms["reshaped"])["product"],
            "layers": {k: {m: norms[m][k] for m in norms} for k in exact}}


@_measure("l1_path_norm", "l1 path norm, batch norm folded (000 sec 3.6; Neyshabur et al. 2015)")
def _l1_path(t):
    return l1_path_norm(t.model, t.data.input_shape)


@_measure("l2_path_norm", "l2 path norm, batch norm folded, average pools as linear layers (000 sec 3.6; Neyshabur et al. 2015)",
          version=2)
def _l2_path(t):
    return l2_path_norm(t.model, t.data.input_shape)


@_measure("normalized_cross_entropy", "cross-entropy of the layer-wise (Frobenius) normalized net on train and test (001 Fig. 2)")
def _normalized_ce(t):
    d = t.data
    try:
        normalized_network(t.model)
    except BadInput:  # residual / dense nets: 001's normalization by the output norm on one example
        x_ref, _ = t.subset("train", 1, "normalized_cross_entropy")
        return {"method": "output norm on one training example",
                "train": output_normalized_cross_entropy(t.model, d.x_train, d.y_train, x_ref[0]),
                "test": output_normalized_cross_entropy(t.model, d.x_test, d.y_test, x_ref[0])}
    return {"method": "layer-wise Frobenius", "train": normalized_cross_entropy(t.model, d.x_train, d.y_train),
            "test": normalized_cross_entropy(t.model, d.x_test, d.y_test)}


@_measure("margins", "output margins f_y - max_{j!=y} f_j on train and test: percentiles, mean, fraction negative")
def _margins(t):
    d = t.data
    return {"train": margin_summary(output_margins(t.model, d.x_train, d.y_train)),
            "test": margin_summary(output_margins(t.model, d.x_test, d.y_test))}


def _budgets(t: Target, budgets) -> dict:
    """The budgets in input units and as tables write them (see attacks.budget_unit)."""
    unit = budget_unit(t.data)[0]
    return {"budgets": list(budgets), "eps": [b * unit for b in budgets], "labels": [budget_label(t.data, b) for b in budgets],
            "unit": unit_description(t.data)}


@_measure("fgsm", f"test accuracy under FGSM, eps = {FGSM_BUDGETS}/255 (non-images: x 0.0156 input std) (000 sec 3.7)",
          version=2)
def _fgsm(t):
    _, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    budgets = _budgets(t, FGSM_BUDGETS)
    return {**budgets, "accuracy": [fgsm_accuracy(t.model, x, y, e, bounds) for e in budgets["eps"]],
            "clean_accuracy": evaluate(t.model, x, y)[1], "examples": len(y)}


@_measure("pgd", f"test accuracy under 20-step L-inf PGD from a random start, eps = {PGD_BUDGETS}/255 (non-images: x 0.0156 "
          "input std), step eps/4 (004 sec 5)", default=False, version=2)
def _pgd(t):
    _, bounds = t.attack_scale()
    x, y = t.subset("test", ATTACK_EXAMPLES, "attacks")
    budgets = _budgets(t, PGD_BUDGETS)
    accuracy = [pgd_accuracy(t.model, x, y, e, PGD_STEPS, bounds=bounds, random_start=True,
                             generator=torch.Generator().manual_seed(derive_seed(t.spec.seed, "measure", f"pgd {b}")))
                for b, e in zip(PGD_BUDGETS, budgets["eps"])]
    return {**budgets, "steps": PGD_STEPS, "random_start": True, "accuracy": accuracy, "examples": len(y)}


@_measure("effective_rank", "ranks of every layer's raw weights (||s||_1/||s||_2, entropy, stable, numerical); conv "
          "operators by FFT, circular padding (004 sec 5)", version=2)
def _ranks(t):
    ranks = layer_ranks(t.model, _sample(t))
    return {"mean_effective_rank": mean_effective_rank(ranks), "layers": ranks}


@_measure("effective_rank_folded", "as effective_rank, batch norm folded into the layer before it first", default=False)
def _ranks_folded(t):
    ranks = layer_ranks(t.model, _sample(t), fold=True)
    return {"mean_effective_rank": mean_effective_rank(ranks), "layers": ranks}


@_measure("loss_gradient", "full training-set loss and gradient norm, eval mode (004 Table 1)")
def _loss_gradient(t):
    loss, grad = full_batch_loss_and_gradient(t.model, t.data.x_train, t.data.y_train)
    return {"loss": loss, "gradient_norm": float(grad.double().norm()), "examples": len(t.data.y_train)}


@_measure("hessian", f"smallest and largest Hessian eigenvalues by Lanczos and by the shifted power method (004 Table 1), float64 products, each with its convergence flag and products, {HESSIAN_EXAMPLES} train examples", default=False,
          version=2)  # 2: Lanczos' answer survives ARPACK's restarts (curvature.lanczos_eigenvalue)
def _hessian(t):
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    op = HessianOperator(t.model, x, y, dtype=torch.float64, progress=t.progress)
    out = {}
    for end, which in (("min", "SA"), ("max", "LA")):
        r = lanczos_eigenvalue(op, which, HESSIAN_TOL, max_hvps=HESSIAN_LANCZOS_HVPS)
        out |= {f"{end}_lanczos": r["eigenvalue"], f"{end}_lanczos_converged": r["converged"], f"{end}_lanczos_hvps": r["hvps"]}
    power = extreme_eigenvalues_power(op, HESSIAN_POWER_ITERATIONS, HESSIAN_TOL)
    for end in ("min", "max"):
        out |= {f"{end}_power": power[end], f"{end}_power_converged": power[f"{end}_converged"],
                f"{end}_power_hvps": power[f"{end}_hvps"]}
    return out | {"examples": len(y)}


@_measure("hessian_trace", f"Hessian trace by Hutchinson ({HUTCHINSON_SAMPLES} Rademacher vectors), {HESSIAN_EXAMPLES} train examples", default=False)
def _hessian_trace(t):
    x, y = t.subset("train", HESSIAN_EXAMPLES, "hessian")
    return {**hutchinson_trace(HessianOperator(t.model, x, y, progress=t.progress), HUTCHINSON_SAMPLES), "examples": len(y)}


@_measure("ntk", f"empirical NTK on {NTK_INPUTS} train inputs at random init vs final: norms, relative change, correlation (004 sec 4)", default=False)
def _ntk(t):
    x, _ = t.subset("train", NTK_INPUTS, "ntk")
    return {**ntk_change(t.initial_model, t.model, x), "inputs": len(x)}


@_measure("distance_from_init", "||W - W_0||_F / ||W_0||_F from the run's random init (000 sec 3.3)")
def _distance(t):
    return relative_distance(t.model, t.initial_model)


def _is_2d(t: Target) -> bool:
    return t.data.input_shape == (2,)


@_measure("decision_boundary", "2-D inputs: decision-boundary length and connected class regions on a grid (000 Fig. 1)",
          applies=_is_2d)
def _boundary(t):
    points = torch.cat([t.data.x_train, t.data.x_test]).cpu()
    lo, hi = points.min(0).values, points.max(0).values
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    spacing = float((hi - lo).max()) / (GRID_POINTS - 1)
    return decision_boundary_summary(t.model, (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])), spacing)


def resolve_names(names: list[str] | None) -> list[str]:
    """The measures to compute: the default set, `all`, or the given names in order; BadInput on an unknown name."""
    if not names:
        return [n for n, m in MEASURES.items() if m.default]
    out: list[str] = []
    for name in names:
        if name == "all":
            chosen = list(MEASURES)
        elif name == "default":
            chosen = [n for n, m in MEASURES.items() if m.default]
        elif name in MEASURES:
            chosen = [name]
        else:
            raise BadInput(f"unknown measure {name!r} (known: all, default, {', '.join(MEASURES)})")
        out += [n for n in chosen if n not in out]
    return out
