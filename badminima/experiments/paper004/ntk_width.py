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
smaller rate). Three seeds by default; tables give mean [min, max] over them.

How far the cpu preset goes. The WideResNet runs widths 1, 2 and 4 (paper: 1, 2, 4, 8), its two variants 1 and 2.
The Jacobian behind a non-MLP's NTK holds 25 x 10 x (parameters) float32 numbers: 2.75 GB at WRN-16-4 (peak
3.3 GB, ~20 s a kernel; measures/ntk.py's Jacobian path is the fast one there), 11 GB at WRN-16-8, which would
also take ~4 min a run to train on one core - beyond a shared CPU. The whole default took 429 s of wall time
with the default two pool workers on the 2-core machine, a test run sharing it part of the time (836 s on a
machine under a load of about 5).

The verdict compares, per architecture, each seed's value at the narrowest and the widest width: a trend counts
only when the two sets of seeds do not overlap. What the cpu default shows (3 seeds, `badminima run ntk-width`):
- MLPs, as the paper: the relative change shrinks (2-layer 3.75 -> 0.093 from width 16 to 1024; 4-layer
  15 -> 0.51) and the correlation rises towards 1 (0.71 -> 0.999; 0.42 -> 0.91).
- WideResNet-16-k, NOT as the paper: the relative change is flat (0.924 [0.908, 0.935] at k = 1, 0.96 at 2,
  0.94 [0.91, 0.97] at 4), and the correlation rises (0.534 -> 0.621 -> 0.712, the seed ranges apart), where
  the paper sees it fall (Figure 1b); the parameter change shrinks (0.119 -> 0.055) where the paper's stays
  nearly constant (Figure 1d). The relative change sits near 1 because training shrinks this kernel 5-25 fold
  (||Phi_1|| / ||Phi_0|| from 0.04 to 0.21): it then measures mostly that shrinkage, which the paper calls a linear
  rescaling, and cannot grow much whatever the width.
- The ConvNet's relative change shrinks with width (33.8 -> 3.6), against the paper's rising one for
  convolutional networks (Figure 1a); its correlation rises (0.44 -> 0.91), as the paper's.
- Without batch norm the WideResNet's correlation falls with width (0.606 -> 0.316, widths 1-2) and without
  skips it rises (0.424 -> 0.541); the paper's Figure 6 sees both nearly flat.
So at this scale (8x8 digits, widths to 4, 20 epochs) the WideResNet's reversal does not appear. Whether it
would at CIFAR-10 size, widths to 8 and 100 epochs (the paper preset) this machine cannot say.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...measures.registry import NTK_INPUTS
from ...measuring import Target, compute
from ...models import num_parameters
from ...report.figures import series_figure
from ...report.stats import over_seeds
from ...report.tables import markdown_table
from ...runs import plan
from ...spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from .backpropaganda import rounded

ARCHITECTURES = {  # label -> (model, depth, cpu widths, paper widths); cpu widths: see the module doc
    "2-layer MLP": ("mlp", 1, (16, 64, 256, 1024), (10, 100, 1000, 10000)),
    "4-layer MLP": ("mlp", 3, (16, 64, 256, 1024), (10, 100, 1000, 4000)),
    "ConvNet": ("cnn2d", 3, (4, 16, 64), (4, 16, 64, 256)),
    "WideResNet": ("wrn", 16, (1, 2, 4), (1, 2, 4, 8)),
    "WideResNet no BN": ("wrn-nobn", 16, (1, 2), (1, 2, 4, 8)),
    "WideResNet no skip": ("wrn-noskip", 16, (1, 2), (1, 2, 4, 8)),
}
DEFAULT_SEEDS = (0, 1, 2)
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


RUN_HEADER = ["architecture", "width", "seed", "parameters", "NTK relative change", "NTK correlation", "||Phi_0||",
              "||Phi_1||", "param change", "test acc %", "status"]


def run_rows(recs: list[dict]) -> list[list]:
    return [[r["architecture"], r["width"], r["seed"], r["parameters"], r.get("relative_change"), r.get("correlation"),
             r.get("norm_before"), r.get("norm_after"), r["distance_travelled"], r["test_acc"], r["status"]] for r in recs]


def _spread(values) -> str | None:
    """mean [min, max] over seeds (3 significant digits), or None."""
    s = over_seeds(values)
    return None if not s["n"] else f"{s['mean']:.3g} [{s['min']:.3g}, {s['max']:.3g}]"


def _groups(recs: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """The done records by (architecture, width), in the order of ARCHITECTURES and of width."""
    order = list(ARCHITECTURES)
    out: dict[tuple[str, int], list[dict]] = {}
    for r in sorted(recs, key=lambda r: (order.index(r["architecture"]) if r["architecture"] in order else len(order),
                                         r["architecture"], r["width"])):
        if r.get("relative_change") is not None:
            out.setdefault((r["architecture"], r["width"]), []).append(r)
    return out


HEADER = ["architecture", "width", "parameters", "n", "NTK relative change mean [min, max]",
          "NTK correlation mean [min, max]", "param change mean [min, max]", "test acc % mean"]


def table(recs: list[dict]):
    """One row per (architecture, width): mean [min, max] over seeds."""
    rows = []
    for (label, width), group in _groups(recs).items():
        rows.append([label, width, group[0]["parameters"], len(group), _spread(r["relative_change"] for r in group),
                     _spread(r["correlation"] for r in group), _spread(r["distance_travelled"] for r in group),
                     round(over_seeds(r["test_acc"] for r in group)["mean"], 2)])
    return HEADER, rows


def trend(narrow: list[float], wide: list[float]) -> str:
    """"grows" / "shrinks" when every seed's value at the widest width lies above / below every seed's value at the
    narrowest, else "flat within the seed spread" (with one seed each: the sign of the difference)."""
    if min(wide) > max(narrow):
        return "grows"
    if max(wide) < min(narrow):
        return "shrinks"
    return "flat within the seed spread"


def _trends(recs: list[dict], key: str) -> dict[str, tuple[int, int, str, str]]:
    """label -> (narrowest width, widest width, 'mean -> mean', trend) of `key`, over the architectures with 2+ widths."""
    groups = _groups(recs)
    out = {}
    for label in dict.fromkeys(lab for lab, _ in groups):
        widths = sorted(w for lab, w in groups if lab == label)
        if len(widths) > 1:
            narrow = [r[key] for r in groups[(label, widths[0])]]
            wide = [r[key] for r in groups[(label, widths[-1])]]
            means = f"{sum(narrow) / len(narrow):.3g} -> {sum(wide) / len(wide):.3g}"
            out[label] = (widths[0], widths[-1], means, trend(narrow, wide))
    return out


def verdict(recs: list[dict]) -> str:
    """Figure 1's reversal: with width, the NTK's relative change shrinks (and its correlation with the initial NTK
    rises) for the MLPs, while for the WideResNet the relative change grows (and the correlation falls)."""
    lines = []
    for key, name, paper_wrn in (("relative_change", "relative change", "grows"), ("correlation", "correlation", "shrinks")):
        trends = _trends(recs, key)
        mlps = {lab: t for lab, t in trends.items() if lab.endswith("MLP")}
        if "WideResNet" not in trends or not mlps:
            lines.append(f"{name}: not tested (needs the WideResNet and an MLP at two widths or more)")
            continue
        paper_mlp = "shrinks" if paper_wrn == "grows" else "grows"
        holds = trends["WideResNet"][3] == paper_wrn and all(t[3] == paper_mlp for t in mlps.values())
        shown = {"WideResNet": trends["WideResNet"], **mlps}
        lines.append(f"{name}: reversal {'HOLDS' if holds else 'does NOT hold'} (paper: WideResNet {paper_wrn}, MLP "
                     f"{paper_mlp}) - " + "; ".join(f"{lab} width {a}->{b}: {m} ({t})" for lab, (a, b, m, t) in shown.items()))
    n = max((len(g) for g in _groups(recs).values()), default=0)
    return f"NTK vs width (n = {n} seeds; mean at narrowest -> widest width): " + " | ".join(lines)


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
    md.write_text(f"# ntk-width: paper 004 Figure 1 (and 6)\n\n**{verdict(recs)}**\n\nOurs: {scale}. Empirical NTK on {NTK_INPUTS} training "
                  "inputs at He-uniform init and after training: relative change ||Phi_1 - Phi_0||_F / ||Phi_0||_F and "
                  "correlation coefficient; param change is ||W_1 - W_0||_F / ||W_0||_F. The paper expects the "
                  "correlation to rise towards 1 with width for MLPs and ConvNets, and sees it fall for WideResNets "
                  "(Figure 1b), a trend that removing batch norm or skips flattens (Figure 6). Mean [min, max] over "
                  "seeds:\n\n" + markdown_table(*table(recs)) + "\n## Every run\n\n" + markdown_table(RUN_HEADER, run_rows(recs)))
    return [md, figure, figure6]


register_experiment(Experiment("ntk-width", records, table, render, cells,
                               default_seeds=DEFAULT_SEEDS, verdict=verdict))
