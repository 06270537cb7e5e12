"""`local-minima`: paper 004 section 2, Table 1 (and Tables 5-7) - bad local minima reached from bad inits.

Rows: the default init; Lemma 1 (an MLP equal to a weight-decayed logistic regression on every training point,
all ReLUs active; MLPs only); every parameter zero; every bias +20; biases ~ U(-50, 50); biases ~ U(-10, 10)
trained without momentum (NM). Each is trained by full-batch gradient descent ("vanilla gradient descent",
Tables 5-7), and at init and after training we measure on the training set: the loss, the norm of the
full-dataset gradient, the smallest and largest Hessian eigenvalues, and the fraction of ReLU units active on
every training point (all active: the network is affine on the training set, as at Lemma 1's minima).

Choices (the paper gives no optimizer settings for Table 1):
- Gradient descent with momentum 0.9 (0 in the NM row) at lr 0.1, except Lemma 1 at lr 1e-5: its init is
  very sharp (largest Hessian eigenvalue ~3e4 on MNIST-1D here, 1.1e5 in the paper's Remark 2.2), and gradient
  descent diverges above 2(1 + momentum)/lambda_max. Mini-batch SGD does not stay there either (its gradient
  noise along the sharp direction throws it out) - the reason we use full batches.
- Eigenvalues: Lanczos (scipy eigsh, tolerance 1e-3) for both ends, and also the paper's protocol, the power
  method on H then on H - lambda_max I ("min (power)"), which can stop far from the smallest eigenvalue of a
  Hessian whose spectrum clusters near 0. The Hessian uses HESSIAN_EXAMPLES training examples at the cpu
  preset (a seeded subset) and the full training set at the paper preset; loss and gradient the full set.
- Paper preset: 1000 steps; convolutional nets (Table 5's ResNet-18) take batches of PAPER_CONV_BATCH, not the
  full set (our loop has no gradient accumulation, and 50k CIFAR images of ResNet-18 do not fit one GPU).
- Lemma 1's classifier: weight decay LINEAR_L2 on its weights (the paper does not give its coefficient).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..measures.activity import activity
from ..measures.curvature import HessianOperator, extreme_eigenvalues_power, full_batch_loss_and_gradient, lanczos_eigenvalue
from ..report.figures import bars_figure
from ..report.tables import markdown_table
from ..runs import plan
from ..spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from ..store import Store
from ..train import derive_seed, evaluate
from . import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, phase_model, rounded
from .published004 import SOURCE, TABLE1, TABLE1_MAX_EIGENVALUE_LEMMA1, TABLE5

LINEAR_L2 = 1e-3
LR, LEMMA1_LR, MOMENTUM = 0.1, 1e-5, 0.9
FULL_BATCH = 1_000_000  # batch size above any training set here: one gradient-descent step per epoch
PAPER_CONV_BATCH = 1000  # paper preset, convolutional nets: a full CIFAR batch of ResNet-18 does not fit a GPU
CPU = {"width": 128, "steps": 500, "hessian_examples": 1000, "power_iterations": 100}
PAPER = {"steps": 1000, "hessian_examples": None, "power_iterations": 500}  # None: the whole training set
ROWS = {  # label -> (init, momentum, lr)
    "default": (InitSpec(), MOMENTUM, LR),
    "lemma1": (InitSpec("lemma1", linear_l2=LINEAR_L2), MOMENTUM, LEMMA1_LR),
    "zero": (InitSpec("zero"), MOMENTUM, LR),
    "bias+20": (InitSpec("bias-shift", bias_shift=20.0), MOMENTUM, LR),
    "bias U(-50,50)": (InitSpec("bias-uniform", bias_uniform=50.0), MOMENTUM, LR),
    "bias U(-10,10) NM": (InitSpec("bias-uniform", bias_uniform=10.0), 0.0, LR),
}


def _settings(preset: str) -> dict:
    return PAPER if preset == "paper" else CPU


def base_spec(base: RunSpec, preset: str) -> RunSpec:
    """The data of `base`; its model (cpu: width CPU['width'] unless --width); full-batch gradient descent."""
    model = base.model if preset == "paper" or base.model.width is not None else replace(base.model, width=CPU["width"])
    steps = _settings(preset)["steps"]
    batch = FULL_BATCH if model.name == "mlp" or preset != "paper" else PAPER_CONV_BATCH
    recipe = PhaseSpec(epochs=steps, batch_size=batch, lr=LR, momentum=MOMENTUM, stop_at_100=False)
    return RunSpec(DataSpec(base.data.name, base.data.train_size), model, InitSpec(), recipe)


def rows_for(model: ModelSpec) -> list[str]:
    return [r for r in ROWS if r != "lemma1" or model.name == "mlp"]


def _cells(base: RunSpec, seeds: list[int], preset: str) -> list[tuple[str, RunSpec]]:
    spec = base_spec(base, preset)
    out = []
    for seed in seeds:
        for row in rows_for(spec.model):
            init, momentum, lr = ROWS[row]
            out.append((row, replace(spec, init=init, recipe=replace(spec.recipe, momentum=momentum, lr=lr), seed=seed)))
    return out


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, spec in _cells(base, seeds, "cpu")]


def landscape(model, data, seed: int, settings: dict) -> dict:
    """Loss, gradient norm, extreme Hessian eigenvalues and ReLU activity of `model` on the training set."""
    x, y = data.x_train, data.y_train
    loss, grad = full_batch_loss_and_gradient(model, x, y)
    n = settings["hessian_examples"]
    if n is not None and n < len(y):
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(seed, "hessian")))[:n].to(y.device)
        hx, hy = x[keep], y[keep]
    else:
        hx, hy = x, y
    op = HessianOperator(model, hx, hy)
    top, bottom = lanczos_eigenvalue(op, "LA", 1e-3), lanczos_eigenvalue(op, "SA", 1e-3)
    power = extreme_eigenvalues_power(op, settings["power_iterations"])
    act = activity(model, x)
    return {"loss": loss, "gradient_norm": float(grad.double().norm()), "max_eigenvalue": top["eigenvalue"],
            "min_eigenvalue": bottom["eigenvalue"], "min_eigenvalue_power": power["min"], "power_converged": power["converged"],
            "hessian_examples": len(hy), "always_active": None if act is None else act["always_active"],
            "train_acc": evaluate(model, x, y)[1], "test_acc": evaluate(model, data.x_test, data.y_test)[1]}


def records(ctx: Context) -> list[dict]:
    cells_ = _cells(ctx.base, ctx.seeds, ctx.preset)
    summaries = train_grid(ctx, [spec for _, spec in cells_], "local-minima")
    settings = _settings(ctx.preset)
    name = f"landscape(hessian={settings['hessian_examples']},power={settings['power_iterations']})"
    out = []
    for (row, spec), summary in zip(cells_, summaries):
        phases = plan(spec)
        data = ctx.ws.dataset(spec)
        rec = {"row": row, "seed": spec.seed, "init": spec.init.name, "lr": spec.recipe.lr,
               "momentum": spec.recipe.momentum, "steps": spec.recipe.epochs, "run_id": summary["run_id"],
               "status": summary["status"]}
        for prefix, index in (("init_", 0), ("", -1)):
            if index == -1 and summary["status"] != "done":
                continue
            values = cached(ctx, phases[index].id, name,
                            lambda i=index: landscape(phase_model(ctx, spec, i), data, spec.seed, settings))
            rec |= {prefix + k: (rounded(v) if isinstance(v, float) else v) for k, v in values.items()}
            rec |= {prefix + k: rounded(100 * values[k]) for k in ("train_acc", "test_acc")}  # percent (stored: fraction)
        out.append(rec)
    return out


KEYS = ("loss", "gradient_norm", "min_eigenvalue", "max_eigenvalue")
HEADER = ["row", "seed", "lr", "loss@init", "grad@init", "min EV@init", "max EV@init", "active %@init",
          "loss", "grad", "min EV", "max EV", "min EV (power)", "active %", "train acc %", "status"]


def _pct(v):
    return None if v is None else round(100 * v, 2)


def _g(v):
    """4 significant digits as text (gradient norms and eigenvalues span many orders of magnitude)."""
    return None if v is None else f"{v:.4g}"


def table(recs: list[dict]):
    rows = [[r["row"], r["seed"], f"{r['lr']:g}", *(_g(r.get("init_" + k)) for k in KEYS), _pct(r.get("init_always_active")),
             *(_g(r.get(k)) for k in KEYS), _g(r.get("min_eigenvalue_power")), _pct(r.get("always_active")),
             r.get("train_acc"), r["status"]] for r in recs]
    return HEADER, rows


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paper_rows = []
    for row, values in TABLE1.items():
        paper_rows.append(["Table 1 (MLP, CIFAR-10)", row, *(f"{v:.5g}" for v in values)])
    for row, values in TABLE5.items():
        l0, g0, l1, g1 = (f"{v:.6g}" for v in values)
        paper_rows.append(["Table 5 (ResNet-18, CIFAR-10)", row, l0, g0, None, l1, g1, None])
    text = (f"# local-minima: paper 004 Table 1 (and Tables 5-7)\n\nOurs: {scale}. Full-batch gradient descent; "
            "loss and gradient norm on the whole training set, Hessian eigenvalues by Lanczos (and, as the paper, by "
            "the shifted power method: 'min EV (power)') on "
            f"{recs[0].get('init_hessian_examples', '?') if recs else '?'} training examples; 'active %' is the "
            "percentage of ReLU units whose pre-activation is positive on every training point. Lemma 1 is trained at "
            "lr 1e-5 (its init is sharp, see the module docstring), the others at lr 0.1.\n\n"
            + markdown_table(*table(recs))
            + f"\n## Paper ({SOURCE})\n\nAt init: loss, gradient norm, min eigenvalue; after training: the same. Remark "
            f"2.2: largest eigenvalue {TABLE1_MAX_EIGENVALUE_LEMMA1} after training from Lemma 1.\n\n"
            + markdown_table(["table", "row", "loss@init", "grad@init", "min EV@init", "loss", "grad", "min EV"], paper_rows))
    md = folder / "local-minima.md"
    md.write_text(text)
    rows = list(dict.fromkeys(r["row"] for r in recs))
    paths = [md]

    def by_row(key):
        return [[r[key] for r in recs if r["row"] == row and r.get(key) is not None] or [float("nan")] for row in rows]
    if recs:
        groups = [row.replace(" ", "\n", 1) for row in rows]
        paths.append(bars_figure(folder / "local-minima-loss.png", groups,
                                 {"at init": by_row("init_loss"), "after training": by_row("loss")},
                                 "training loss (log scale)", f"Table 1 of paper 004: loss at init and after GD\n{scale}",
                                 logy=True))
        paths.append(bars_figure(folder / "local-minima-sharpness.png", groups,
                                 {"at init": by_row("init_max_eigenvalue"), "after training": by_row("max_eigenvalue")},
                                 "largest Hessian eigenvalue (log scale)",
                                 f"Remark 2.2 of paper 004: sharpness at init and after GD\n{scale}", logy=True))
    return paths


register_experiment(Experiment("local-minima", "paper 004 Table 1 (5-7): loss, gradient, Hessian extremes and ReLU "
                               "activity at init and after GD from Lemma 1, zero and large-bias inits", records, table,
                               render, cells))
