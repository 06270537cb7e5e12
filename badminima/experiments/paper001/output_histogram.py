"""`output-histogram` (paper 001, appendix K, Figure 20): why the normalized losses sit near ln C.

"most of the (correct) outputs of the normalized neural networks are close to zero": the histogram of f(x) of
the most likely class, max_j f_j(x), of the layer-wise (Frobenius) normalized network over the training set.
The paper's (MNIST, 50K training images): mean 0.026683, std 0.007144; before normalization mean 60.564373,
std 16.214078. With outputs this small every exponential in the cross-entropy is close to 1, so the loss is
close to ln C.

One network per seed: generalization.py's protocol from the default init, trained to the reference loss, the
snapshot with 0% training error closest to it (as every network of `normalized-loss`). The paper's network is
its MNIST 3-layer net (appendix L.1.2, 34 filters): the paper preset uses that width on the dataset given
(CIFAR-10 by default; no MNIST loader exists here).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ...measures import normalization_factors, normalized_cross_entropy, normalized_network
from ...report.figures import histogram_figure
from ...report.tables import markdown_table
from ...spec import InitSpec, ModelSpec, RunSpec
from ...store import Store
from .. import Context, Experiment, register_experiment, train_grid
from . import generalization as gen
from .published import PAPER_001_FIGURE20

BINS = 30


def protocol(preset: str, dataset: str) -> gen.Protocol:
    proto = gen.protocol(preset, dataset)
    return replace(proto, model=ModelSpec("cnn3", width=34)) if preset == "paper" else proto


def grid(base: RunSpec, preset: str, seeds: list[int]) -> list[RunSpec]:
    spec, _ = gen.experiment_base(base, preset, protocol(preset, base.data.name))
    return [replace(spec, init=InitSpec(), seed=seed) for seed in seeds]


def cells(base: RunSpec, seeds: list[int], preset: str = "cpu") -> list[RunSpec]:
    return grid(base, preset, seeds)


@torch.no_grad()
def top_outputs(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """max_j f_j(x) of `model` (eval mode) for every input, float64."""
    model.eval()
    return np.concatenate([model(x[i:i + batch_size]).double().max(dim=1).values.cpu().numpy()
                           for i in range(0, len(x), batch_size)])


def output_summary(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Figure 20's statistics of a network on (x, y): the most likely class's output of the normalized and of the
    unnormalized network (mean, std with n - 1, min, max; the normalized one's histogram in BINS bins), and
    the normalized cross-entropy beside ln C."""
    normalized = top_outputs(normalized_network(model), x)
    raw = top_outputs(model, x)
    counts, edges = np.histogram(normalized, bins=BINS)
    with torch.no_grad():
        num_classes = int(model.eval()(x[:1]).shape[-1])
    return {"examples": len(x), "normalized_mean": float(normalized.mean()), "normalized_std": float(normalized.std(ddof=1)),
            "normalized_min": float(normalized.min()), "normalized_max": float(normalized.max()),
            "unnormalized_mean": float(raw.mean()), "unnormalized_std": float(raw.std(ddof=1)),
            "product_of_normalization_factors": math.prod(normalization_factors(model)),
            "normalized_train_loss": normalized_cross_entropy(model, x, y), "ln_C": math.log(num_classes),
            "histogram_counts": counts.tolist(), "histogram_edges": edges.tolist()}


def records(ctx: Context) -> list[dict]:
    specs = grid(ctx.base, ctx.preset, ctx.seeds)
    gen.check_normalizable(ctx, specs[0])
    out = []
    for spec, summary in zip(specs, train_grid(ctx, specs, "output-histogram")):
        record = {"seed": spec.seed, "run_id": summary["run_id"], "status": summary["status"]}
        if summary["status"] == "done":
            data = ctx.ws.dataset(spec)
            model, snapshot = gen._snapshot(ctx, spec, False, data.x_train, data.y_train, spec.recipe.stop_at_train_loss)
            record |= {"snapshot_epoch": snapshot["epoch"], "zero_train_error": snapshot["zero_train_error"],
                       **output_summary(model, data.x_train, data.y_train)}
        out.append(record)
    return out


TABLE_KEYS = ("examples", "normalized_mean", "normalized_std", "unnormalized_mean", "unnormalized_std",
              "normalized_train_loss", "ln_C")


def table(recs: list[dict]) -> tuple[list[str], list[list]]:
    header = ["network", "examples", "normalized f: mean", "std", "unnormalized f: mean", "std",
              "normalized train loss", "ln C"]
    rows = [[f"seed {r['seed']}"] + [gen._fmt(r.get(k), 6) for k in TABLE_KEYS] for r in recs]
    paper = PAPER_001_FIGURE20
    rows.append(["paper 001 Figure 20 (MNIST)", 50000] + [str(paper[k]) for k in ("normalized_mean", "normalized_std",
                 "unnormalized_mean", "unnormalized_std")] + ["-", f"{math.log(10):.6g}"])
    return header, rows


def verdict(recs: list[dict]) -> str:
    done = [r for r in recs if "normalized_mean" in r]
    if not done:
        return "Figure 20: no network measured"
    mean = float(np.mean([r["normalized_mean"] for r in done]))
    top = max(r["normalized_max"] for r in done)
    below = float(np.mean([r["ln_C"] - r["normalized_train_loss"] for r in done]))
    return (f"Figure 20: the normalized network's top output averages {mean:.4g} (paper "
            f"{PAPER_001_FIGURE20['normalized_mean']}), at most {top:.3g} (e^f within {100 * math.expm1(top):.3g}% of 1), "
            f"its train loss {below:.3g} below ln C: "
            + ("near zero and near ln C, as the paper's" if mean < 0.1 else "not near zero, unlike the paper's"))


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    series = {f"seed {r['seed']} (mean {r['normalized_mean']:.4g}, std {r['normalized_std']:.3g})":
              (r["histogram_edges"], r["histogram_counts"]) for r in recs if "histogram_counts" in r}
    figure = histogram_figure(folder / "output-histogram.png", series,
                              "f(x) of the most likely class, layer-wise normalized network",
                              f"Paper 001 Figure 20: outputs of the normalized network on the training set\n{scale}")
    text = ("# output-histogram: paper 001 Figure 20 (outputs of the normalized network)\n\n"
            f"Ours: {scale}. One network per seed from the default init, trained to the reference loss; the output "
            "of its most likely class, max_j f_j(x), over the training set, after dividing every layer by its "
            "Frobenius norm (the first layer's bias with its weights) and before.\n\n"
            "Paper 001 (MNIST, its 3-layer net, 50 000 training images): normalized mean 0.026683, std 0.007144; "
            "unnormalized mean 60.564373, std 16.214078, so that every exponential in the loss is close to 1 and "
            "the normalized loss close to ln C.\n\n" + markdown_table(*table(recs)) + "\n" + f"{verdict(recs)}.\n")
    md = folder / "output-histogram.md"
    md.write_text(text)
    return [md, figure]


register_experiment(Experiment(
    "output-histogram", records, table, render, cells, verdict=verdict))
