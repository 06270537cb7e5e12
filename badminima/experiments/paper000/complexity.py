"""`norms` (paper 000 Figure 5) and `fgsm` (Figure 6): complexity proxies of the four bad-minima
settings - Frobenius, path and spectral norms, and test accuracy under FGSM for a range of budgets.

Runs are the `bad-minima` grid (shared in one output directory). Norm values come from the measures
registry (measures/registry.py) and are cached in the store with the run: the l2 path norm counts average
pools as linear layers, the spectral product is of the exact (zero-padding) operator norms over the chain
of layers, shortcut convolutions left out (measures/norms.py). FGSM budgets are in 1/255 of the image
range; for non-image data, in input standard deviations, 8 units = 0.125σ as 8/255 on CIFAR-10, no
clamping (measures/attacks.py); tables write each budget in its unit.
"""
from __future__ import annotations

from pathlib import Path

from ...measures.attacks import budget_label, fgsm_accuracy, unit_description
from ...measures.registry import ATTACK_EXAMPLES
from ...measuring import Target, compute
from ...report.figures import bars_figure, lines_figure
from ...report.tables import markdown_table
from ...runs import plan
from ...store import Store
from ...train import evaluate
from .. import Context, Experiment, register_experiment, train_grid
from .bad_minima import DEFAULT_SEEDS, cells

NORMS = ("frobenius", "l1_path_norm", "l2_path_norm", "spectral_product")
FGSM_BUDGETS = (0, 2, 4, 8, 16, 32, 64)  # in 1/255 of the input range (see the module docstring)
SETTINGS = [(i, r) for i in ("random", "adversarial") for r in ("vanilla", "sota")]


def _targets(ctx: Context, label: str):
    specs = cells(ctx.base, ctx.seeds)
    for spec, summary in zip(specs, train_grid(ctx, specs, label)):
        if summary["status"] == "done":
            yield summary, Target(ctx.store, summary["run_id"], [p.id for p in plan(spec)], spec, ctx.ws)


def norm_records(ctx: Context) -> list[dict]:
    out = []
    for summary, target in _targets(ctx, "norms"):
        values = {row["name"]: row["value"] for row in compute(target, ["frobenius", "l1_path_norm", "l2_path_norm", "spectral"])}
        out.append({k: summary[k] for k in ("run_id", "init", "recipe", "seed")} |
                   {"frobenius": values["frobenius"], "l1_path_norm": values["l1_path_norm"],
                    "l2_path_norm": values["l2_path_norm"], "spectral_product": values["spectral"]["product"],
                    "spectral_left_out": values["spectral"]["left_out_of_product"]})
    return out


def norm_table(recs: list[dict]):
    return ["init", "recipe", "seed", *NORMS], [[r["init"], r["recipe"], r["seed"], *(r[n] for n in NORMS)] for r in recs]


def _by_setting(recs: list[dict], key: str) -> list[list[float]]:
    return [[r[key] for r in recs if (r["init"], r["recipe"]) == s] for s in SETTINGS]


def norm_render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    groups = [f"{i}\n{r}\n(n = {len(_by_setting(recs, 'seed')[k])})" for k, (i, r) in enumerate(SETTINGS)]
    figure = bars_figure(folder / "norms.png", groups, {n: _by_setting(recs, n) for n in NORMS}, "norm (log scale)",
                         f"Figure 5 of paper 000: norms per setting (mean, min-max bar over seeds)\n{scale}", logy=True)
    md = folder / "norms.md"
    left_out = sorted({n for r in recs for n in r.get("spectral_left_out", [])})
    md.write_text("# norms: paper 000 Figure 5\n\nFrobenius norm of all parameters; l1 and l2 path norms (batch norm "
                  "folded, average pools counted as the linear layers they are); product of the layers' spectral "
                  "norms (convolutions: the exact operator norm with the layer's zero padding on its input size)"
                  + (f", shortcut convolutions left out of the product ({', '.join(left_out)})" if left_out else "")
                  + ".\n\n" + markdown_table(*norm_table(recs)))
    return [md, figure]


def fgsm_records(ctx: Context) -> list[dict]:
    out = []
    for summary, target in _targets(ctx, "fgsm"):
        unit, bounds = target.attack_scale()
        x, y = target.subset("test", ATTACK_EXAMPLES, "attacks")
        model = target.model
        accuracy = [100 * (fgsm_accuracy(model, x, y, b * unit, bounds) if b else evaluate(model, x, y)[1])
                    for b in FGSM_BUDGETS]
        out.append({k: summary[k] for k in ("run_id", "init", "recipe", "seed")} |
                   {"budgets": list(FGSM_BUDGETS), "eps": [b * unit for b in FGSM_BUDGETS], "accuracy": accuracy,
                    "labels": [budget_label(target.data, b) for b in FGSM_BUDGETS], "unit": unit_description(target.data),
                    "examples": len(y)})
    return out


def fgsm_labels(recs: list[dict]) -> list[str]:
    """The budgets as the records' data write them ("8/255" for images, "0.125σ" otherwise)."""
    return next((r["labels"] for r in recs if r.get("labels")), [f"{b} units" for b in FGSM_BUDGETS])


def fgsm_table(recs: list[dict]):
    header = ["init", "recipe", "seed"] + [f"eps {b} %" for b in fgsm_labels(recs)]
    return header, [[r["init"], r["recipe"], r["seed"], *r["accuracy"]] for r in recs]


def fgsm_render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    series = {f"{i} init, {r} (n = {sum((rec['init'], rec['recipe']) == (i, r) for rec in recs)})":
              [[rec["accuracy"][k] for rec in recs if (rec["init"], rec["recipe"]) == (i, r)]
               for k in range(len(FGSM_BUDGETS))] for i, r in SETTINGS}
    unit = next((r["unit"] for r in recs if r.get("unit")), "")
    image = any(r.get("labels", [""])[-1].endswith("/255") for r in recs)
    figure = lines_figure(folder / "fgsm.png", list(FGSM_BUDGETS), series,
                          "FGSM budget eps (x 1/255 of the pixel range)" if image else
                          "FGSM budget eps (x 1/255 of CIFAR-10's pixel std, in input std: 8 = 0.125σ)",
                          "test accuracy (%)", f"Figure 6 of paper 000: accuracy under FGSM (mean, min-max band over seeds)\n{scale}")
    md = folder / "fgsm.md"
    md.write_text("# fgsm: paper 000 Figure 6\n\nTest accuracy (%) under FGSM (Goodfellow et al. 2014), model in eval "
                  f"mode, on at most 1000 test examples; {unit}.\n\n" + markdown_table(*fgsm_table(recs)))
    return [md, figure]


register_experiment(Experiment("norms", norm_records, norm_table, norm_render, cells, default_seeds=DEFAULT_SEEDS))
register_experiment(Experiment("fgsm", fgsm_records, fgsm_table, fgsm_render, cells, default_seeds=DEFAULT_SEEDS))
