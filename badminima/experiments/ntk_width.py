"""`ntk-width`: paper 004 section 4, Figure 1 (and Figure 6) - how much the empirical NTK changes in training,
against width, for a 2-layer MLP, a 4-layer MLP, a small ConvNet and a WideResNet-16-k with its no-batch-norm
and no-skip variants.

Each network starts from He's uniform init (as the paper) and is trained normally; the NTK (equation 4) is
sampled on NTK_INPUTS = 25 training inputs at init (Phi_0) and after training (Phi_1) and compared by the relative
change ||Phi_1 - Phi_0||_F / ||Phi_0||_F (Figure 1a, c) and the correlation coefficient of the vectorized
kernels (Figure 1b); Figure 1d's relative parameter change ||W_1 - W_0||_F / ||W_0||_F is the run's distance
travelled. Against the number of parameters, as the paper plots.

Choices: "2-layer" and "4-layer" MLPs have 1 and 3 hidden layers; the ConvNet is our cnn2d (3 strided 3x3
convolutions and a linear layer; the paper's has 6 layers with max-pooling). The paper gives no training
recipe beyond weight decay 5e-4 (Figure 3); ours: SGD, momentum 0.9, weight decay 5e-4, a fixed number of
epochs. cpu: 8x8 digits, 20 epochs at lr 0.02 (at 0.05 the no-batch-norm WideResNet-16-2 diverges); paper:
CIFAR-10, 100 epochs at lr 0.1, x0.1 after 50 and 75, crops and flips (the no-batch-norm variant may need a
smaller rate). cpu widths are small: the Jacobian behind a non-MLP's NTK holds 25 x 10 x (parameters) numbers.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..measures.command import NTK_INPUTS, Target, compute
from ..models import num_parameters
from ..report.figures import series_figure
from ..report.tables import markdown_table
from ..runs import plan
from ..spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .backpropaganda import rounded

ARCHITECTURES = {  # label -> (model, depth, cpu widths, paper widths)
    "2-layer MLP": ("mlp", 1, (16, 64, 256, 1024), (10, 100, 1000, 10000)),
    "4-layer MLP": ("mlp", 3, (16, 64, 256, 1024), (10, 100, 1000, 4000)),
    "ConvNet": ("cnn2d", 3, (4, 16, 64), (4, 16, 64, 256)),
    "WideResNet": ("wrn", 16, (1, 2), (1, 2, 4, 8)),
    "WideResNet no BN": ("wrn-nobn", 16, (1, 2), (1, 2, 4, 8)),
    "WideResNet no skip": ("wrn-noskip", 16, (1, 2), (1, 2, 4, 8)),
}
CPU_RECIPE = PhaseSpec(epochs=20, batch_size=128, lr=0.02, momentum=0.9, weight_decay=5e-4, stop_at_100=False)
PAPER_RECIPE = PhaseSpec(epochs=100, batch_size=128, lr=0.1, lr_milestones=(50, 75), momentum=0.9, weight_decay=5e-4,
                         augment=True, stop_at_100=False)


def _cells(base: RunSpec, seeds: list[int], preset: str) -> list[tuple[str, RunSpec]]:
    paper = preset == "paper"
    name = base.data.name if paper or base.data.name != "mnist1d" else "digits"  # cpu: images for the convnets
    spec = RunSpec(DataSpec(name, base.data.train_size), ModelSpec(), InitSpec("he-uniform"),
                   PAPER_RECIPE if paper else CPU_RECIPE)
    return [(label, replace(spec, model=ModelSpec(name, width, depth), seed=seed))
            for seed in seeds for label, (name, depth, cpu, wide) in ARCHITECTURES.items()
            for width in (wide if paper else cpu)]


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, spec in _cells(base, seeds, "cpu")]


def records(ctx: Context) -> list[dict]:
    grid = _cells(ctx.base, ctx.seeds, ctx.preset)
    summaries = train_grid(ctx, [spec for _, spec in grid], "ntk-width")
    out = []
    for (label, spec), summary in zip(grid, summaries):
        rec = {"architecture": label, "model": spec.model.name, "width": spec.model.width, "seed": spec.seed,
               "parameters": num_parameters(ctx.ws.skeleton(spec)), "run_id": summary["run_id"],
               "status": summary["status"], "test_acc": None, "distance_travelled": None}
        if summary["status"] == "done":
            target = Target(ctx.store, summary["run_id"], [p.id for p in plan(spec)], spec, ctx.ws)
            ntk = compute(target, ["ntk"])[0]["value"]
            rec |= {k: rounded(ntk[k]) for k in ("relative_change", "correlation", "norm_before", "norm_after")}
            rec |= {"inputs": ntk["inputs"], "test_acc": round(100 * summary["test_acc"], 2),
                    "distance_travelled": rounded(summary["distance_travelled"])}
        out.append(rec)
    return out


HEADER = ["architecture", "width", "seed", "parameters", "NTK relative change", "NTK correlation", "||Phi_0||",
          "||Phi_1||", "param change", "test acc %", "status"]


def table(recs: list[dict]):
    return HEADER, [[r["architecture"], r["width"], r["seed"], r["parameters"], r.get("relative_change"),
                     r.get("correlation"), r.get("norm_before"), r.get("norm_after"), r["distance_travelled"],
                     r["test_acc"], r["status"]] for r in recs]


def _series(recs: list[dict], key: str, labels) -> dict:
    out = {}
    for label in labels:
        rows = [r for r in recs if r["architecture"] == label and r.get(key) is not None]
        widths = sorted({r["width"] for r in rows})
        if widths:
            xs = [min(r["parameters"] for r in rows if r["width"] == w) for w in widths]
            out[label] = (xs, [[r[key] for r in rows if r["width"] == w] for w in widths])
    return out


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    labels = list(ARCHITECTURES)
    panels = [{"series": _series(recs, key, labels), "xscale": "log", "yscale": "log" if key == "relative_change" else "linear",
               "xlabel": "number of parameters", "ylabel": ylabel, "title": title} for key, ylabel, title in (
        ("relative_change", "||Phi_1 - Phi_0|| / ||Phi_0||", "(a) relative change of the NTK"),
        ("correlation", "corr(Phi_1, Phi_0)", "(b) correlation of the NTK after training with its init"),
        ("distance_travelled", "||W_1 - W_0|| / ||W_0||", "(d) relative change of the parameters"))]
    figure = series_figure(folder / "ntk-width.png", panels, f"Figure 1 of paper 004 ({NTK_INPUTS} inputs)\n{scale}")
    variants = [lab for lab in labels if lab.startswith("WideResNet")]
    figure6 = series_figure(folder / "ntk-width-wideresnets.png", [
        {"series": _series(recs, "correlation", variants), "xscale": "log", "xlabel": "number of parameters",
         "ylabel": "corr(Phi_1, Phi_0)", "title": "correlation coefficient"},
        {"series": _series(recs, "relative_change", variants), "xscale": "log", "xlabel": "number of parameters",
         "ylabel": "||Phi_1 - Phi_0|| / ||Phi_0||", "title": "relative change"}],
        f"Figure 6 of paper 004: WideResNet without batch norm / skip connections\n{scale}")
    md = folder / "ntk-width.md"
    md.write_text(f"# ntk-width: paper 004 Figure 1 (and 6)\n\nOurs: {scale}. Empirical NTK on {NTK_INPUTS} training "
                  "inputs at He-uniform init and after training: relative change ||Phi_1 - Phi_0||_F / ||Phi_0||_F and "
                  "correlation coefficient; param change is ||W_1 - W_0||_F / ||W_0||_F. The paper expects the "
                  "correlation to rise towards 1 with width for MLPs and ConvNets, and sees it fall for WideResNets "
                  "(Figure 1b), a trend that removing batch norm or skips flattens (Figure 6).\n\n"
                  + markdown_table(*table(recs)))
    return [md, figure, figure6]


register_experiment(Experiment("ntk-width", "paper 004 Figures 1, 6: empirical NTK change (relative, correlation) "
                               "against width for MLPs, a ConvNet and WideResNets", records, table, render, cells))
