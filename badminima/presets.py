"""Scale presets: the base spec of an experiment for a dataset.

`cpu` (the default) scales the protocol down so it runs in minutes on a 2-core CPU with the
built-in data. `paper` is paper 000's protocol as written (section 2): batch size 128, momentum
0.9 and l2 5e-4 (1e-4 on CINIC-10) when used, learning rate 0.1 / 0.01 / 0.001 switching at
epochs 150 and 250 of 350 on CIFAR, at 150 and 225 of 300 on CINIC-10 and Restricted ImageNet.
The base recipe is SOTA SGD; experiments switch heuristics off with spec.apply_recipe.
"""
from __future__ import annotations

from .errors import BadInput
from .spec import DataSpec, InitSpec, ModelSpec, PhaseSpec, RunSpec

PRESETS = ("cpu", "paper")

# cpu: MNIST-1D with a 2-hidden-layer MLP (40-512-512-10). The true-label phase keeps the paper's
# schedule shape (lr 0.1, x0.1 after epochs 150 and 250) with a 300-epoch cap; l2 is 1e-4 (the
# paper's CINIC-10 value), with which SOTA SGD reaches 100% training accuracy on MNIST-1D (5e-4 stalls
# near 99.7%). Algorithm 1 with R = 3 and 10% zeroed, pretraining at a constant lr 0.1.
CPU_MODEL = {"mnist1d": ModelSpec("mlp"), "digits": ModelSpec("mlp"), "gaussians2d": ModelSpec("mlp", width=100)}
CPU_RECIPE = PhaseSpec(epochs=300, batch_size=128, lr=0.1, lr_milestones=(150, 250), momentum=0.9,
                       weight_decay=1e-4, augment=True)
CPU_PRETRAIN = PhaseSpec(epochs=250, batch_size=128, lr=0.1, patience=20)
CPU_INIT = InitSpec("adversarial", replication_factor=3, zeroed_percent=10.0, pretrain=CPU_PRETRAIN)

PAPER_SCHEDULES = {  # dataset -> (epochs, milestones, l2)
    "cifar10": (350, (150, 250), 5e-4), "cifar100": (350, (150, 250), 5e-4),
    "cinic10": (300, (150, 225), 1e-4), "restricted-imagenet": (300, (150, 225), 5e-4),
}
PAPER_REPLICATION_FACTOR = 5  # the paper varies R (Figure 4) at 10% zeroed; 5 is our default


def base_spec(preset: str, dataset: str | None = None) -> RunSpec:
    if preset == "cpu":
        dataset = dataset or "mnist1d"
        return RunSpec(DataSpec(dataset), CPU_MODEL.get(dataset, ModelSpec("resnet18")), CPU_INIT, CPU_RECIPE)
    if preset == "paper":
        dataset = dataset or "cifar10"
        epochs, milestones, l2 = PAPER_SCHEDULES.get(dataset, PAPER_SCHEDULES["cifar10"])
        recipe = PhaseSpec(epochs=epochs, batch_size=128, lr=0.1, lr_milestones=milestones, momentum=0.9,
                           weight_decay=l2, augment=True)
        pretrain = PhaseSpec(epochs=epochs, batch_size=128, lr=0.1, lr_milestones=milestones, patience=20)
        init = InitSpec("adversarial", replication_factor=PAPER_REPLICATION_FACTOR, zeroed_percent=10.0,
                        pretrain=pretrain)
        return RunSpec(DataSpec(dataset), ModelSpec("resnet18"), init, recipe)
    raise BadInput(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
