"""The SGD loop over in-memory tensors: batching, augmentation, learning-rate schedule.

Randomness of epoch e (the shuffle and the augmentation) comes from a generator seeded by
(seed, e) alone, so a phase resumed at epoch e from its checkpoint repeats the uninterrupted
run's numbers exactly. Evaluation, stopping, checkpointing and progress are callbacks.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..spec import PhaseSpec


def derive_seed(*parts) -> int:
    """A 63-bit seed determined by `parts` (stable across processes and Python versions)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def lr_at(phase: PhaseSpec, epoch: int) -> float:
    """Learning rate of 1-based `epoch`: lr * gamma ** (number of milestones passed before it)."""
    return phase.lr * phase.lr_gamma ** sum(epoch > m for m in phase.lr_milestones)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """(mean cross-entropy, accuracy as a fraction) of `model` in eval mode on (x, y)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = model(x[i:i + batch_size])
        loss += F.cross_entropy(out, y[i:i + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return loss / max(len(y), 1), correct / max(len(y), 1)


def weights_finite(model: torch.nn.Module) -> bool:
    """Whether every parameter and buffer (batch-norm statistics too) of `model` is finite."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


@dataclass
class EpochState:
    """What callbacks see after each epoch; they add metrics and may ask to stop."""

    epoch: int
    metrics: dict
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: list[dict]
    stop_reason: str | None = None


@dataclass
class PhaseOutcome:
    epochs: int
    stop_reason: str  # "100% train accuracy" | "reference train loss" | "no improvement" | "epoch cap" | "diverged"
    history: list[dict] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def train_phase(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, phase: PhaseSpec, seed: int,
                augment: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None,
                callbacks: list[Callable[[EpochState], None]], start_epoch: int = 0,
                history: list[dict] | None = None, optimizer_state: Callable | None = None,
                penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
                perturb: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                ) -> PhaseOutcome:
    """Train `model` on (x, y) for epochs start_epoch+1 .. phase.epochs, or until a callback stops it.
    `penalty(model)` is added to every batch's loss; `perturb(model, xb, yb, generator)` replaces every
    (augmented) batch's inputs before the step (adversarial training)."""
    opt = torch.optim.SGD(model.parameters(), lr=phase.lr, momentum=phase.momentum,
                          weight_decay=phase.weight_decay)
    if optimizer_state is not None:
        optimizer_state(opt)
    history = list(history or [])
    model.train()
    n = len(y)
    for epoch in range(start_epoch + 1, phase.epochs + 1):
        started = time.perf_counter()
        lr = lr_at(phase, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(derive_seed(seed, epoch))
        order = torch.randperm(n, generator=g)
        loss_sum = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device)  # counted per original example (augmentation may add copies)
        for i in range(0, n, phase.batch_size):
            idx = order[i:i + phase.batch_size].to(x.device)
            xb, yb = x[idx], y[idx]
            if phase.augment and augment is not None:
                xb, yb = augment(xb, yb, g)
            if perturb is not None:
                xb = perturb(model, xb, yb, g)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            objective = loss + penalty(model) if penalty is not None else loss
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.argmax(1) == yb).sum() * len(idx) / len(yb)
        train_loss = loss_sum.item() / n
        # checked once per epoch (no device sync per step): a loss that blew up in the epoch's last
        # step leaves a finite running loss but non-finite weights
        if not math.isfinite(train_loss) or not weights_finite(model):
            return PhaseOutcome(epoch, "diverged", history)
        metrics = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": correct.item() / n,
                   "seconds": time.perf_counter() - started}
        state = EpochState(epoch, metrics, model, opt, history)
        for callback in callbacks:
            callback(state)
        history.append(metrics)
        if state.stop_reason:
            return PhaseOutcome(epoch, state.stop_reason, history)
    return PhaseOutcome(phase.epochs, "epoch cap", history)
