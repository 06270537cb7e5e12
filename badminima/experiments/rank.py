"""`rank` and `rank-adversarial`: paper 004 section 5, Tables 4, 9 and 10 and Figure 2 - RankMin and RankMax.

A model is first trained normally (`rank`) or adversarially with 7-step L-inf PGD (`rank-adversarial`; eps 8/255,
steps 2/255, random start), then fine-tuned for a few more epochs in three ways: as it is, with RankMin (singular
values below a threshold set to zero) or with RankMax (singular values clipped from above) applied to the inner
layers after every RANK_EVERY-th epoch, the last included (train/rank_control.py, `rank_layers="inner"`: not the
first layer, the shortcut projections or the classifier, as the authors' code; thresholds are a fraction of each
layer's largest singular value at the start of fine-tuning). The three share the first phase (init
`natural-pretraining`). We report training and clean test accuracy, test accuracy under 20-step PGD from a random
start at eps 8/255 and 1/255 (step eps/4; measures/command.py's `pgd`: 1000 test examples; non-image data: budgets
in input standard deviations, 8 units = 0.125σ as 8/255 on CIFAR-10, see measures.attacks), and the effective
rank ||s||_1 / ||s||_2 of each inner layer's raw weights, batch norm not folded, as the authors measure them
(Figure 2; the random init and the model before fine-tuning as references). RANKS_FOLDED = True measures
after folding batch norm instead (the `effective_rank_folded` measure does the same for one run).

Settings. paper preset: appendix A.7 - ResNet-18: 200 epochs, batch 128, lr 0.01, x0.1 after 100, 150, 175, 190,
crops and flips, then 15 epochs at lr 0.001, x0.1 after the 3rd and 5th; an MLP: 100 epochs at lr 0.01, x0.1
after 60, 80, 90, then 8 epochs. Momentum 0.9 and weight decay 5e-4 are our assumption (A.7 does not say).
cpu preset: MNIST-1D, an MLP with 3 hidden layers of 256, 40 epochs at lr 0.1 (x0.1 after 24, 32, 36; the
paper's 0.01 underfits in 40 epochs), then 8 epochs as the paper's MLP. Thresholds (the paper gives none):
RankMin 0.2, RankMax 0.8 of the largest singular value - RankMax at 0.7 or below costs this MLP (with biases, no
batch norm) over 3 points of test accuracy, "taking care to make sure that the loss remains small" (A.7).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..measures.command import PGD_BUDGETS, Target, compute
from ..measures.layers import inner_layers
from ..measures.rank import layer_ranks
from ..report.figures import bars_figure, series_figure
from ..report.tables import markdown_table
from ..runs import plan
from ..spec import DataSpec, InitSpec, PhaseSpec, RunSpec
from ..store import Store
from . import Context, Experiment, register_experiment, train_grid
from .backpropaganda import cached, phase_model
from .published004 import SOURCE, TABLE4, TABLE9, TABLE10

RANKMIN_THRESHOLD, RANKMAX_THRESHOLD, RANK_EVERY = 0.2, 0.8, 2
RANK_LAYERS = "inner"  # the layers RankMin/RankMax change and Figure 2 shows (see train/rank_control.py)
RANKS_FOLDED = False  # Figure 2: raw weights (the authors'); True: batch norm folded into the layer before it first
ADVERSARIAL = {"adversarial_steps": 7, "adversarial_eps": 8.0, "adversarial_step_size": 2.0}
CPU_MODEL = {"width": 256, "depth": 3}
CPU_PRETRAIN = PhaseSpec(epochs=40, batch_size=128, lr=0.1, lr_milestones=(24, 32, 36), momentum=0.9, augment=True,
                         stop_at_100=False)
PAPER_PRETRAIN = {"mlp": PhaseSpec(epochs=100, batch_size=128, lr=0.01, lr_milestones=(60, 80, 90), momentum=0.9,
                                   weight_decay=5e-4, augment=True, stop_at_100=False),
                  "other": PhaseSpec(epochs=200, batch_size=128, lr=0.01, lr_milestones=(100, 150, 175, 190),
                                     momentum=0.9, weight_decay=5e-4, augment=True, stop_at_100=False)}
FINE_TUNE = PhaseSpec(epochs=8, batch_size=128, lr=0.001, lr_milestones=(3, 5), momentum=0.9, augment=True,
                      stop_at_100=False)
METHODS = {"natural": ("none", 1.0), "RankMax": ("max", RANKMAX_THRESHOLD), "RankMin": ("min", RANKMIN_THRESHOLD)}


def _specs(base: RunSpec, seeds: list[int], preset: str, adversarial: bool) -> list[tuple[str, RunSpec]]:
    model = base.model
    if preset == "paper":
        pretrain = PAPER_PRETRAIN["mlp" if model.name == "mlp" else "other"]
        fine = replace(FINE_TUNE, weight_decay=5e-4, epochs=8 if model.name == "mlp" else 15)
    else:
        if model.name == "mlp":
            model = replace(model, width=model.width or CPU_MODEL["width"], depth=model.depth or CPU_MODEL["depth"])
        pretrain, fine = CPU_PRETRAIN, FINE_TUNE
    if adversarial:
        pretrain, fine = replace(pretrain, **ADVERSARIAL), replace(fine, **ADVERSARIAL)
    spec = RunSpec(DataSpec(base.data.name, base.data.train_size), model, InitSpec("natural-pretraining", pretrain=pretrain))
    out = []
    for seed in seeds:
        for method, (mode, threshold) in METHODS.items():
            recipe = fine if mode == "none" else replace(fine, rank_mode=mode, rank_threshold=threshold, rank_every=RANK_EVERY,
                                                         rank_layers=RANK_LAYERS)
            label = ("adversarial" if method == "natural" else method + "Adv") if adversarial else method
            out.append((label, replace(spec, recipe=recipe, seed=seed)))
    return out


def _ranks(ctx: Context, spec: RunSpec, index: int) -> dict[str, float]:
    """Effective rank of each of the model's inner layers (Figure 2's filters) after phase `index`."""
    phase = plan(spec)[index].id
    data = ctx.ws.dataset(spec)
    model = phase_model(ctx, spec, index)
    name = "effective_rank_folded" if RANKS_FOLDED else "effective_rank_raw"
    value = cached(ctx, phase, name, lambda: {"layers": layer_ranks(model, data.x_train[:1], fold=RANKS_FOLDED)})
    shown = [n for n in value["layers"] if n in inner_layers(model)] if RANK_LAYERS == "inner" else list(value["layers"])
    return {n: value["layers"][n]["effective_rank"] for n in shown}


def make_records(ctx: Context, adversarial: bool) -> list[dict]:
    grid = _specs(ctx.base, ctx.seeds, ctx.preset, adversarial)
    summaries = train_grid(ctx, [spec for _, spec in grid], "rank-adversarial" if adversarial else "rank")
    out = []
    for (method, spec), summary in zip(grid, summaries):
        rec = {"method": method, "seed": spec.seed, "run_id": summary["run_id"], "status": summary["status"],
               "rank_mode": spec.recipe.rank_mode, "rank_threshold": spec.recipe.rank_threshold}
        if summary["status"] == "done":
            target = Target(ctx.store, summary["run_id"], [p.id for p in plan(spec)], spec, ctx.ws)
            pgd = compute(target, ["pgd"])[0]["value"]
            rec |= {"train_acc": round(100 * summary["train_acc"], 2), "test_acc": round(100 * summary["test_acc"], 2),
                    **{f"pgd_{b}": round(100 * a, 2) for b, a in zip(PGD_BUDGETS, pgd["accuracy"])},
                    "pgd_labels": pgd["labels"], "pgd_unit": pgd["unit"], "pgd_examples": pgd["examples"],
                    "ranks_folded": RANKS_FOLDED, "effective_rank": _ranks(ctx, spec, -1),
                    "effective_rank_init": _ranks(ctx, spec, 0), "effective_rank_pretrained": _ranks(ctx, spec, 1)}
        out.append(rec)
    return out


def records(ctx: Context) -> list[dict]:
    return make_records(ctx, adversarial=False)


def adversarial_records(ctx: Context) -> list[dict]:
    return make_records(ctx, adversarial=True)


def _mean_rank(r: dict) -> float | None:
    ranks = r.get("effective_rank")
    return round(sum(ranks.values()) / len(ranks), 3) if ranks else None


def budget_labels(recs: list[dict]) -> list[str]:
    """The PGD budgets as the records' data write them ("8/255" for images, "0.125σ" otherwise)."""
    return next((r["pgd_labels"] for r in recs if r.get("pgd_labels")), [f"{b} units" for b in PGD_BUDGETS])


def table(recs: list[dict]):
    header = ["method", "seed", "train acc %", "clean test acc %"] + [f"PGD eps {b} %" for b in budget_labels(recs)] + \
             ["effective rank per inner layer", "status"]
    return header, [[r["method"], r["seed"], r.get("train_acc"), r.get("test_acc"), *(r.get(f"pgd_{b}") for b in PGD_BUDGETS),
                     " / ".join(f"{v:.2f}" for v in r.get("effective_rank", {}).values()) or None, r["status"]] for r in recs]


def render(folder: Path, store: Store, recs: list[dict], scale: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    name = "rank-adversarial" if any(r["method"].startswith(("adversarial", "RankMaxAdv", "RankMinAdv")) for r in recs) else "rank"
    methods = list(dict.fromkeys(r["method"] for r in recs))
    done = [r for r in recs if r.get("effective_rank")]
    layers = list(done[0]["effective_rank"]) if done else []
    xs = list(range(1, len(layers) + 1))
    series = {m: (xs, [[r["effective_rank"][layer] for r in done if r["method"] == m] for layer in layers]) for m in methods}
    if done:  # the random init and the pretrained model are shared by a seed's methods: one value per seed
        per_seed = list({r["seed"]: r for r in done}.values())
        series["random init"] = (xs, [[r["effective_rank_init"][layer] for r in per_seed] for layer in layers])
        series["before fine-tuning"] = (xs, [[r["effective_rank_pretrained"][layer] for r in per_seed]
                                             for layer in layers])
    figure = series_figure(folder / f"{name}-effective-rank.png", [
        {"series": series, "xlabel": "layer (" + ", ".join(layers) + ")", "ylabel": "effective rank ||s||_1 / ||s||_2",
         "title": "effective rank per layer"}], f"Figure 2 of paper 004\n{scale}")
    groups = ["clean"] + [f"PGD {b}" for b in budget_labels(recs)]
    keys = ["test_acc"] + [f"pgd_{b}" for b in PGD_BUDGETS]
    accuracy = bars_figure(folder / f"{name}-accuracy.png", groups,
                           {m: [[r[k] for r in done if r["method"] == m] or [float("nan")] for k in keys] for m in methods},
                           "test accuracy (%)", f"Tables 4, 9 of paper 004: clean and robust accuracy\n{scale}")
    paper = [["Table 9 (MLP, CIFAR-10)", m, *v] for m, v in TABLE9.items()] + \
            [["Table 4 (ResNet-18, CIFAR-10)", m, None, *v] for m, v in TABLE4.items()] + \
            [["Table 10 (ResNet-18, CIFAR-100)", m, *v] for m, v in TABLE10.items()]
    md = folder / f"{name}.md"
    unit = next((r["pgd_unit"] for r in recs if r.get("pgd_unit")), "")
    weights = "batch norm folded into the layer before it" if RANKS_FOLDED else "raw weights, batch norm not folded"
    md.write_text(f"# {name}: paper 004 Tables 4, 9, 10 and Figure 2\n\nOurs: {scale}. RankMin threshold "
                  f"{RANKMIN_THRESHOLD}, RankMax {RANKMAX_THRESHOLD} of each layer's largest singular value at the start "
                  f"of fine-tuning, applied every {RANK_EVERY} epochs to the {RANK_LAYERS} layers; robust accuracy "
                  f"under 20-step PGD from a random start (step eps/4), {unit}. Effective rank of each inner layer "
                  f"({weights}) in forward order.\n\n" + markdown_table(*table(recs))
                  + f"\n## Paper ({SOURCE})\n\n" + markdown_table(
                      ["table", "method", "train acc %", "clean test acc %", "PGD 8/255 %", "PGD 1/255 %"], paper))
    return [md, figure, accuracy]


def cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, spec in _specs(base, seeds, "cpu", False)]


def adversarial_cells(base: RunSpec, seeds: list[int]) -> list[RunSpec]:
    return [spec for _, spec in _specs(base, seeds, "cpu", True)]


register_experiment(Experiment("rank", "paper 004 Tables 4, 9, 10, Figure 2: RankMin / RankMax fine-tuning of a naturally "
                               "trained model; effective ranks, clean and PGD accuracy", records, table, render, cells))
register_experiment(Experiment("rank-adversarial", "paper 004 Tables 4, 10: RankMin / RankMax with 7-step PGD adversarial "
                               "training", adversarial_records, table, render, adversarial_cells))
