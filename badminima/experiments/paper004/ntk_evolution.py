"""`ntk-evolution`: paper 004 appendix A.6, Figure 3 - the empirical NTK during training: its norm ||Phi_t||_F
(left), its correlation with the NTK at initialization (middle), and the parameter norm ||theta_t||_2 (right),
against the epoch, for ConvNets of widths 1, 10, 100, 2-layer MLPs of widths 10, 100, 1000 and 4-layer MLPs of
widths 10, 100 (the figure's legend).

Conventions. The kernel is equation 4 on NTK_INPUTS = 25 training inputs (measures/ntk.py, eval mode), the same
inputs for every epoch of a network (the `ntk` measure's seeded subset). Correlation: Pearson's coefficient of the
vectorized kernels, Cov(Phi_t, Phi_0) / (sigma(Phi_t) sigma(Phi_0)), as section 4 defines it for Figure 1b and
as the authors' evolution script computes it (its `corr_coeff`, not its cosine "similarity"). Parameter norm: the
l2 norm of all trainable parameters (the authors' `param_norm`). Epoch 0 is the initialization (norm ||Phi_0||,
correlation 1).

How the epochs are sampled: the model after epoch e is the final model of the same run capped at e epochs. With
a fixed schedule (the milestones do not depend on the cap, no early stop) and each epoch's randomness seeded by
(seed, epoch) alone (train/loop.py), the run capped at e is the first e epochs of the longer run, number for
number on a CPU (tests check this); the sampled epochs cost their sum in training, about twice the longest run.

Architectures, init, recipe: the 2- and 4-layer MLPs have 1 and 3 hidden layers and the ConvNet is our cnn2d, as
in `ntk-width` (the authors' ConvNet has 5 convolutions with max-pooling); He's uniform init (section 4). The paper
gives only weight decay 5e-4 (A.6); the paper preset follows the authors' evolution script otherwise: CIFAR-10,
200 epochs, batch 128, lr 0.01 x0.2 after epochs 60, 120, 160, momentum 0.9, no augmentation, sampled at
PAPER_EPOCHS. cpu: 8x8 digits (or --dataset), 20 epochs at lr 0.02 with momentum 0.9 and weight decay 5e-4 (the
`ntk-width` cpu recipe), sampled at CPU_EPOCHS, small widths.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...measures.registry import NTK_INPUTS
from ...measuring import Target, compute
from ...measures.norms import frobenius_norm
from ...models import num_parameters
from ...report.figures import series_figure
from ...report.tables import markdown_table
from ...runs import plan
from ...spec import InitSpec, ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, phase_model, rounded
from .ntk_width import CPU_RECIPE

ARCHITECTURES = {  # label -> (model, depth, cpu widths, paper widths)
    "ConvNet": ("cnn2d", 3, (2, 8), (1, 10, 100)),
    "2-layer MLP": ("mlp", 1, (16, 256), (10, 100, 1000)),
    "4-layer MLP": ("mlp", 3, (16, 128), (10, 100)),
}
CPU_EPOCHS = (1, 2, 5, 10, 20)
PAPER_EPOCHS = (1, 2, 5, 10, 20, 50, 100, 200)
PAPER_RECIPE = PhaseSpec(epochs=200, batch_size=128, lr=0.01, lr_milestones=(60, 120, 160), lr_gamma=0.2, momentum=0.9,
                         weight_decay=5e-4, stop_at_100=False)


def _cells(base: RunSpec, seeds: list[int], preset: str) -> list[tuple[str, int, RunSpec]]:
    """(architecture label, width, run spec) for every sampled epoch (the run's epoch cap)."""
    paper = preset == "paper"
    name = base.data.name if paper or base.data.name != "mnist1d" else "digits"  # cpu: images for the ConvNet
    recipe = PAPER_RECIPE if paper else CPU_RECIPE
    spec = RunSpec(replace(base.data, name=name), ModelSpec(), InitSpec("he-uniform"), recipe)
    return [(label, width, replace(spec, model=ModelSpec(model, width, depth), seed=seed,
                                   recipe=replace(recipe, epochs=epoch)))
            for seed in seeds for label, (model, depth, cpu, wide) in ARCHITECTURES.items()
            for width in (wide if paper else cpu) for epoch in (PAPER_EPOCHS if paper else CPU_EPOCHS)]


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, _, spec in _cells(base, seeds, "cpu")]


def records(ctx: Context) -> list[dict]:
    grid = _cells(ctx.base, ctx.seeds, ctx.preset)
    summaries = train_grid(ctx, [spec for _, _, spec in grid], "ntk-evolution")
    out, initial = [], {}
    for (label, width, spec), summary in zip(grid, summaries):
        rec = {"architecture": label, "model": spec.model.name, "width": width, "seed": spec.seed,
               "epoch": spec.recipe.epochs, "parameters": num_parameters(ctx.ws.skeleton(spec)),
               "run_id": summary["run_id"], "status": summary["status"]}
        if summary["status"] == "done":
            target = Target(ctx.store, summary["run_id"], [p.id for p in plan(spec)], spec, ctx.ws)
            ntk = compute(target, ["ntk"])[0]["value"]
            init_norm = cached(ctx, plan(spec)[0].id, "frobenius", lambda: frobenius_norm(phase_model(ctx, spec, 0)))
            rec |= {"ntk_norm": rounded(ntk["norm_after"]), "correlation": rounded(ntk["correlation"]),
                    "parameter_norm": rounded(cached(ctx, plan(spec)[-1].id, "frobenius",
                                                     lambda: frobenius_norm(phase_model(ctx, spec, -1)))),
                    "inputs": ntk["inputs"], "test_acc": round(100 * summary["test_acc"], 2)}
            initial[(label, width, spec.seed)] = {"ntk_norm": rounded(ntk["norm_before"]), "correlation": 1.0,
                                                  "parameter_norm": rounded(init_norm)}
        out.append(rec)
    starts = [{"architecture": label, "model": ARCHITECTURES[label][0], "width": width, "seed": seed, "epoch": 0,
               "parameters": next(r["parameters"] for r in out if (r["architecture"], r["width"]) == (label, width)),
               "run_id": None, "status": "done", **values, "inputs": NTK_INPUTS, "test_acc": None}
              for (label, width, seed), values in initial.items()]
    return sorted(starts + out, key=lambda r: (list(ARCHITECTURES).index(r["architecture"]), r["width"], r["seed"],
                                               r["epoch"]))


HEADER = ["architecture", "width", "seed", "parameters", "epoch", "||Phi_t||", "corr(Phi_t, Phi_0)", "||theta_t||",
          "test acc %", "status"]


def table(recs: list[dict]):
    return HEADER, [[r["architecture"], r["width"], r["seed"], r["parameters"], r["epoch"], r.get("ntk_norm"),
                     r.get("correlation"), r.get("parameter_norm"), r.get("test_acc"), r["status"]] for r in recs]


def _series(recs: list[dict], key: str) -> dict:
    out = {}
    for label, width in dict.fromkeys((r["architecture"], r["width"]) for r in recs):
        rows = [r for r in recs if (r["architecture"], r["width"]) == (label, width) and r.get(key) is not None]
        epochs = sorted({r["epoch"] for r in rows})
        if epochs:
            out[f"{label}, width {width}"] = (epochs, [[r[key] for r in rows if r["epoch"] == e] for e in epochs])
    return out


def direction(recs: list[dict]) -> str:
    """The paper's reading of Figure 3, per network: the NTK norm grows in training much more than the
    correlation falls (most change is a rescaling), and most of the change happens in the first epochs."""
    lines = []
    for label, width in dict.fromkeys((r["architecture"], r["width"]) for r in recs):
        rows = sorted((r for r in recs if (r["architecture"], r["width"]) == (label, width)
                       and r.get("ntk_norm") is not None), key=lambda r: r["epoch"])
        if len(rows) < 3:
            continue
        first, last = rows[0], rows[-1]
        growth = last["ntk_norm"] / first["ntk_norm"]
        early = next(r for r in rows if r["epoch"] >= max(1, last["epoch"] // 4))  # the first quarter of training
        share = (1 - early["correlation"]) / (1 - last["correlation"]) if last["correlation"] < 1 else None
        lines.append([f"{label}, width {width}", f"{growth:.3g}", f"{last['correlation']:.3f}",
                      None if share is None else f"{100 * share:.0f}% by epoch {early['epoch']}"])
    return markdown_table(["network", "||Phi_T|| / ||Phi_0||", "corr(Phi_T, Phi_0)", "correlation drop in the first quarter"],
                          lines)


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    panels = [{"series": _series(recs, key), "xscale": "symlog", "yscale": yscale, "xlabel": "epoch", "ylabel": ylabel,
               "title": title} for key, ylabel, title, yscale in (
        ("ntk_norm", "||Phi_t||_F", "NTK norm", "log"),
        ("correlation", "corr(Phi_t, Phi_0)", "correlation with the initial NTK", "linear"),
        ("parameter_norm", "||theta_t||_2", "parameter norm", "linear"))]
    figure = series_figure(folder / "ntk-evolution.png", panels,
                           f"Figure 3 of paper 004: the NTK during training ({NTK_INPUTS} inputs)\n{scale}")
    md = folder / "ntk-evolution.md"
    md.write_text(f"# ntk-evolution: paper 004 Figure 3 (appendix A.6)\n\nOurs: {scale}. Empirical NTK on {NTK_INPUTS} "
                  "training inputs after each sampled epoch (epoch 0: the He-uniform init): its Frobenius norm, its "
                  "Pearson correlation with the initial NTK, and the l2 norm of the parameters. The paper (no numbers, "
                  "Figure 3 only): the parameter norm behaves normally while the NTK norm rapidly increases; most of "
                  "that is a rescaling, the correlation changing much less; most change happens in the first epochs.\n\n"
                  + direction(recs) + "\n## Every sample\n\n" + markdown_table(*table(recs)))
    return [md, figure]


def scale(ctx: Context) -> str:
    grid = _cells(ctx.base, ctx.seeds, ctx.preset)
    widths = {label: sorted({w for lab, w, _ in grid if lab == label}) for label in ARCHITECTURES}
    what = "paper preset (the paper's protocol)" if ctx.preset == "paper" else "cpu preset (scaled down; not paper scale)"
    return (f"{grid[0][2].data.name} / " + ", ".join(f"{label} widths {w}" for label, w in widths.items())
            + f", epochs {sorted({s.recipe.epochs for _, _, s in grid})}, {what}")


register_experiment(Experiment("ntk-evolution", records, table, render,
                               cells, scale))
