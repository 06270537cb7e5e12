"""`local-minima`: paper 004 section 2, Table 1 (and Tables 5-7) - bad local minima reached from bad inits.

Rows: the default init; Lemma 1 (an MLP equal to a weight-decayed logistic regression on every training point,
all ReLUs active; MLPs only); every parameter zero; every bias +20 or +10; biases ~ U(-a, a) for a = 5, 10, 50,
100; biases ~ U(-10, 10) trained without momentum (NM). The cpu preset runs every row; the paper preset runs the
rows of the table whose dataset and model it is given (TABLES: Table 1, CIFAR-10 MLP; Table 5, CIFAR-10
ResNet-18; Table 6, CIFAR-100 ResNet-18; Table 7, CIFAR-100 MLP), every row otherwise. At init and after training we measure, all on the same examples - the whole
training set unless settings["examples"] names a seeded subset, in chunks of 1000 - the loss, the norm of the
gradient, the smallest and largest Hessian eigenvalues, and the fraction of ReLU units active on every one of
those examples (all active: the network is affine on them, as at Lemma 1's minima).

Training. The paper's text names the optimizer but gives no learning rate or schedule: Table 1 is "SGD"
with momentum (its last row is rerun "with SGD without momentum (NM)"), and Tables 5-7 are "vanilla gradient
descent" "as above in the previous experiment", trained "until convergence" (appendix A.4) - we read both as
gradient descent with Table 1's momentum. Ours, for every table: full-batch gradient descent (every step sees
the whole training set: mini-batch SGD's gradient noise along the sharp directions throws Lemma 1's network
out of its minimum even at lr 1e-4), momentum MOMENTUM (0 in the NM row), `steps` steps with the rate x0.1
after 75% and 87.5% of them (the decay lets the last steps settle). Rate LR, except Lemma 1 at LEMMA1_LR: its
init is very sharp (largest Hessian eigenvalue ~3.1e4 on MNIST-1D here, 1.1e5 in the paper's Remark 2.2) and
gradient descent with momentum beta is unstable above 2(1 + beta)/lambda_max = 1.2e-4; the paper preset
(CIFAR-10) uses LEMMA1_LR_PAPER, below that bound (3.5e-5) for the paper's 1.1e5. Lemma 1's gradient lies
mostly along directions of curvature ~1 (condition number ~1e4-1e5), so gradient descent needs thousands of
steps to reduce it: 500 steps at lr 1e-5 left the gradient norm unchanged (0.039 -> 0.040), 2000 at 1e-4 with
the decay take it to ~0.02 (the paper: 0.0992 -> 0.0414) while every ReLU stays active.

Eigenvalues (measures/curvature.py), in float64 products: the headline lambda_max and lambda_min by Lanczos
(scipy eigsh, relative tolerance EIGEN_TOL, at most `lanczos_hvps` products per end), and the paper's protocol
as a comparison column: the power method on H, then on H - lambda_max I ("min EV (power)"), `power_iterations`
products each. Each value carries its certificate: converged means ||H v - lambda v|| <= EIGEN_TOL |lambda|
(+ PRODUCT_PRECISION lambda_max, for eigenvalues at 0), and the products it used. The shifted power method
rarely converges to lambda_min of a Hessian whose spectrum clusters near 0 beside a large lambda_max.

- Paper preset: 1000 steps; convolutional nets (Table 5's ResNet-18) take batches of PAPER_CONV_BATCH, not the
  full set (our loop has no gradient accumulation, and 50k CIFAR images of ResNet-18 do not fit one GPU).
- Lemma 1's classifier: weight decay LINEAR_L2 on its weights (the paper does not give its coefficient).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ...measures.activity import activity
from ...measures.curvature import HessianOperator, extreme_eigenvalues_power, full_batch_loss_and_gradient, lanczos_eigenvalue
from ...presets import user_model
from ...report.figures import bars_figure
from ...report.tables import markdown_table
from ...runs import plan
from ...spec import DataSpec, InitSpec, PhaseSpec, RunSpec
from ...store import Store
from ...train import derive_seed, evaluate
from .. import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, phase_model, rounded
from .published import SOURCE, TABLE1, TABLE1_MAX_EIGENVALUE_LEMMA1, TABLE5, TABLE6, TABLE7

LINEAR_L2 = 1e-3
LR, LEMMA1_LR, LEMMA1_LR_PAPER, MOMENTUM = 0.1, 1e-4, 2e-5, 0.9
FULL_BATCH = 1_000_000  # batch size above any training set here: one gradient-descent step per epoch
PAPER_CONV_BATCH = 1000  # paper preset, convolutional nets: a full CIFAR batch of ResNet-18 does not fit a GPU
EIGEN_TOL = 1e-3  # relative to the eigenvalue reported
PRODUCT_PRECISION = 1e-10  # of float64 Hessian-vector products, relative to lambda_max
# examples: None = the whole training set (loss, gradient, Hessian and activity all on it)
CPU = {"width": 128, "steps": 2000, "examples": None, "lanczos_hvps": 400, "power_iterations": 100}
PAPER = {"steps": 1000, "examples": None, "lanczos_hvps": 1000, "power_iterations": 500}
ROWS = {  # label -> (init, momentum, lr)
    "default": (InitSpec(), MOMENTUM, LR),
    "lemma1": (InitSpec("lemma1", linear_l2=LINEAR_L2), MOMENTUM, LEMMA1_LR),
    "zero": (InitSpec("zero"), MOMENTUM, LR),
    "bias+20": (InitSpec("bias-shift", bias_shift=20.0), MOMENTUM, LR),
    "bias U(-50,50)": (InitSpec("bias-uniform", bias_uniform=50.0), MOMENTUM, LR),
    "bias U(-10,10) NM": (InitSpec("bias-uniform", bias_uniform=10.0), 0.0, LR),
    "bias+10": (InitSpec("bias-shift", bias_shift=10.0), MOMENTUM, LR),  # Table 7
    "bias U(-5,5)": (InitSpec("bias-uniform", bias_uniform=5.0), MOMENTUM, LR),  # Table 7
    "bias U(-10,10)": (InitSpec("bias-uniform", bias_uniform=10.0), MOMENTUM, LR),  # Tables 5, 7 (with momentum)
    "bias U(-100,100)": (InitSpec("bias-uniform", bias_uniform=100.0), MOMENTUM, LR),  # Table 6
}
TABLES = {  # (dataset, model) -> (the paper's table, its rows: those the paper preset runs, and its numbers)
    ("cifar10", "mlp"): ("Table 1 (MLP, CIFAR-10)", TABLE1),
    ("cifar10", "resnet18"): ("Table 5 (ResNet-18, CIFAR-10)", TABLE5),
    ("cifar100", "resnet18"): ("Table 6 (ResNet-18, CIFAR-100)", TABLE6),
    ("cifar100", "mlp"): ("Table 7 (MLP, CIFAR-100)", TABLE7),
}


def _settings(preset: str) -> dict:
    return PAPER if preset == "paper" else CPU


def base_spec(base: RunSpec, preset: str) -> RunSpec:
    """The data of `base`; its model (cpu: width CPU['width'] unless --width); full-batch gradient descent,
    the rate x0.1 after 75% and 87.5% of the steps (module docstring)."""
    model = user_model(base, preset)
    model = model if preset == "paper" or model.width is not None else replace(model, width=CPU["width"])
    steps = _settings(preset)["steps"]
    batch = FULL_BATCH if model.name == "mlp" or preset != "paper" else PAPER_CONV_BATCH
    recipe = PhaseSpec(epochs=steps, batch_size=batch, lr=LR, momentum=MOMENTUM, stop_at_100=False,
                       lr_milestones=(steps * 3 // 4, steps * 7 // 8))
    return RunSpec(DataSpec(base.data.name, base.data.train_size), model, InitSpec(), recipe)


def rows_for(spec: RunSpec, preset: str = "cpu") -> list[str]:
    """The rows run: the paper preset's table for this dataset and model (TABLES), else every row (Lemma 1 for
    MLPs only)."""
    table = TABLES.get((spec.data.name, spec.model.name)) if preset == "paper" else None
    rows = [r for r in ROWS if r in table[1]] if table else list(ROWS)
    return [r for r in rows if r != "lemma1" or spec.model.name == "mlp"]


def _cells(base: RunSpec, seeds: list[int], preset: str) -> list[tuple[str, RunSpec]]:
    spec = base_spec(base, preset)
    out = []
    for seed in seeds:
        for row in rows_for(spec, preset):
            init, momentum, lr = ROWS[row]
            lr = LEMMA1_LR_PAPER if row == "lemma1" and preset == "paper" else lr
            out.append((row, replace(spec, init=init, recipe=replace(spec.recipe, momentum=momentum, lr=lr), seed=seed)))
    return out


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, spec in _cells(base, seeds, "cpu")]


def _eigen_fields(prefix: str, result: dict) -> dict:
    return {prefix: result["eigenvalue"], prefix + "_converged": result["converged"], prefix + "_hvps": result["hvps"],
            prefix + "_residual": result["residual"]}


def landscape(model, data, seed: int, settings: dict) -> dict:
    """Loss, gradient norm, extreme Hessian eigenvalues (each with its certificate) and ReLU activity of `model`,
    all on the same examples: the whole training set, or a seeded subset of settings["examples"]."""
    x, y = data.x_train, data.y_train
    n = settings["examples"]
    if n is not None and n < len(y):
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(seed, "hessian")))[:n].to(y.device)
        x, y = x[keep], y[keep]
    loss, grad = full_batch_loss_and_gradient(model, x, y)
    op = HessianOperator(model, x, y, dtype=torch.float64)
    top = lanczos_eigenvalue(op, "LA", EIGEN_TOL, max_hvps=settings["lanczos_hvps"])
    atol = PRODUCT_PRECISION * abs(top["eigenvalue"])
    bottom = lanczos_eigenvalue(op, "SA", EIGEN_TOL, max_hvps=settings["lanczos_hvps"], atol=atol)
    power = extreme_eigenvalues_power(op, settings["power_iterations"], EIGEN_TOL, atol=atol)
    act = activity(model, x)
    out = {"loss": loss, "gradient_norm": float(grad.double().norm()), "examples": len(y),
           **_eigen_fields("max_eigenvalue", top), **_eigen_fields("min_eigenvalue", bottom)}
    for end in ("max", "min"):
        out |= {f"{end}_eigenvalue_power": power[end], f"{end}_eigenvalue_power_converged": power[f"{end}_converged"],
                f"{end}_eigenvalue_power_hvps": power[f"{end}_hvps"], f"{end}_eigenvalue_power_residual": power[f"{end}_residual"]}
    return out | {"always_active": None if act is None else act["always_active"],
                  "train_acc": evaluate(model, data.x_train, data.y_train)[1],
                  "test_acc": evaluate(model, data.x_test, data.y_test)[1]}


def records(ctx: Context) -> list[dict]:
    cells_ = _cells(ctx.base, ctx.seeds, ctx.preset)
    summaries = train_grid(ctx, [spec for _, spec in cells_], "local-minima")
    settings = _settings(ctx.preset)
    # v2: Lanczos' answer survives ARPACK's restarts (curvature.lanczos_eigenvalue); v1 values are not read
    name = (f"landscape.v2(examples={settings['examples'] or 'all'},float64,tol={EIGEN_TOL},"
            f"lanczos={settings['lanczos_hvps']},power={settings['power_iterations']})")
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


HEADER = ["row", "seed", "lr", "examples", "loss@init", "grad@init", "min EV@init", "max EV@init", "active %@init",
          "loss", "grad", "min EV", "max EV", "min EV (power)", "active %", "train acc %", "status"]
EIGEN_NOTE = ("Every eigenvalue is followed by (conv, products) when its residual ||H v - lambda v|| is within "
              f"{EIGEN_TOL:g} |lambda| (+{PRODUCT_PRECISION:g} lambda_max), (NOT conv, products) otherwise.")


def _pct(v):
    return None if v is None else round(100 * v, 2)


def _g(v):
    """4 significant digits as text (gradient norms and eigenvalues span many orders of magnitude)."""
    return None if v is None else f"{v:.4g}"


def eigen_cell(rec: dict, key: str) -> str | None:
    """An eigenvalue with its convergence flag and the Hessian-vector products it used."""
    if rec.get(key) is None:
        return None
    return f"{rec[key]:.4g} ({'conv' if rec.get(key + '_converged') else 'NOT conv'}, {rec.get(key + '_hvps')})"


def table(recs: list[dict]):
    rows = [[r["row"], r["seed"], f"{r['lr']:g}", r.get("init_examples"), _g(r.get("init_loss")), _g(r.get("init_gradient_norm")),
             eigen_cell(r, "init_min_eigenvalue"), eigen_cell(r, "init_max_eigenvalue"), _pct(r.get("init_always_active")),
             _g(r.get("loss")), _g(r.get("gradient_norm")), eigen_cell(r, "min_eigenvalue"), eigen_cell(r, "max_eigenvalue"),
             eigen_cell(r, "min_eigenvalue_power"), _pct(r.get("always_active")), r.get("train_acc"), r["status"]]
            for r in recs]
    return HEADER, rows


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paper_rows = []
    for row, values in TABLE1.items():
        paper_rows.append(["Table 1 (MLP, CIFAR-10)", row, *(f"{v:.5g}" for v in values)])
    for name, published in list(TABLES.values())[1:]:  # Tables 5-7: no eigenvalues
        for row, values in published.items():
            l0, g0, l1, g1 = (f"{v:.6g}" for v in values)
            paper_rows.append([name, row, l0, g0, None, l1, g1, None])
    examples = recs[0].get("init_examples", "?") if recs else "?"
    steps = recs[0]["steps"] if recs else "?"
    text = (f"# local-minima: paper 004 Table 1 (and Tables 5-7)\n\nOurs: {scale}. Loss, gradient norm, Hessian "
            f"eigenvalues and ReLU activity all on the same {examples} examples (the whole training set unless a "
            "subset is set). Training: full-batch gradient descent (momentum "
            f"{MOMENTUM:g}, 0 in the NM row), {steps} steps, the rate x0.1 after 75% and 87.5% of them; lr per row "
            "below (Lemma 1's init is sharp: see the module docstring). Eigenvalues: Lanczos for 'min EV' and "
            "'max EV' (the headline), and, as the paper, the shifted power method for 'min EV (power)'. "
            + EIGEN_NOTE + " 'active %' is the percentage of ReLU units whose pre-activation is positive on every "
            "one of those examples.\n\n"
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


register_experiment(Experiment("local-minima", records, table,
                               render, cells))
