"""The SGD loop over in-memory tensors: batching, augmentation, learning-rate schedule.

Randomness of epoch e (the shuffle and the augmentation) comes from a generator seeded by
(seed, e) alone, so a phase resumed at epoch e from its checkpoint repeats the uninterrupted
run's numbers exactly. Evaluation, stopping, checkpointing and progress are callbacks.

On a GPU the loop never waits for the device inside an epoch: inputs may be stored as uint8 pixels
(data.as_inputs turns each batch into floats inside the step), the random numbers are drawn on the CPU
(the same numbers on every device) and sent over asynchronously, and the epoch's loss and accuracy
accumulate on the device, read once at its end. `ComputeSpec` says how the steps are computed:
precision (fp32, tf32, bf16 autocast), channels_last layout, torch.compile of the model.
"""
from __future__ import annotations

import contextvars
import hashlib
import math
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ..data import as_inputs
from ..data.augment import to_device
from ..spec import ComputeSpec, PhaseSpec

EVAL_BATCH_SIZE = 1024  # evaluation batches (8x the paper's training batch; no gradients are kept)
# the compute settings that `evaluate` uses when it is given none: the phase's, while its callbacks run
_EVAL_COMPUTE: contextvars.ContextVar[ComputeSpec | None] = contextvars.ContextVar("eval_compute", default=None)


@contextmanager
def precision(compute: ComputeSpec | None, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed ops at `compute.precision` on `device`: bf16 autocast, or float32 with TF32 on
    ("tf32") or off ("fp32": IEEE float32, also for convolutions, which torch would run in TF32 on CUDA)."""
    device = torch.device(device)
    mode = compute.precision if compute is not None else "fp32"
    with ExitStack() as stack:
        if device.type == "cuda":
            for backend in (torch.backends.cuda.matmul, torch.backends.cudnn.conv):
                stack.callback(setattr, backend, "fp32_precision", backend.fp32_precision)
                backend.fp32_precision = "tf32" if mode == "tf32" else "ieee"
        if mode == "bf16":
            stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
        yield


def memory_format(compute: ComputeSpec | None, x: torch.Tensor) -> torch.Tensor:
    """`x` in channels_last layout when `compute` asks for it and x is a batch of images."""
    if compute is not None and compute.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def derive_seed(*parts) -> int:
    """A 63-bit seed determined by `parts` (stable across processes and Python versions)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def lr_at(phase: PhaseSpec, epoch: int) -> float:
    """Learning rate of 1-based `epoch`: lr * gamma ** (number of milestones passed before it)."""
    return phase.lr * phase.lr_gamma ** sum(epoch > m for m in phase.lr_milestones)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE,
             compute: ComputeSpec | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy as a fraction) of `model` in eval mode on (x, y); x may hold uint8
    pixels. Computed as `compute` says (None: as the phase whose callbacks are running, else fp32); the
    sums stay on the device (float64 loss, as Python's float sum of batch sums) and are read once."""
    compute = compute if compute is not None else _EVAL_COMPUTE.get()
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=y.device)
    correct = torch.zeros((), dtype=torch.int64, device=y.device)
    with precision(compute, y.device):
        for i in range(0, len(y), batch_size):
            out = model(memory_format(compute, as_inputs(x[i:i + batch_size])))
            loss += F.cross_entropy(full_precision(out), y[i:i + batch_size], reduction="sum").double()
            correct += (out.argmax(1) == y[i:i + batch_size]).sum()
    model.train(was_training)
    return loss.item() / max(len(y), 1), correct.item() / max(len(y), 1)


def weights_finite(model: torch.nn.Module) -> bool:
    """Whether every parameter and buffer (batch-norm statistics too) of `model` is finite."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def full_precision(out: torch.Tensor) -> torch.Tensor:
    """Logits for the loss: half-precision outputs (bf16/fp16 autocast) in float32; float32 and float64
    outputs as they are (a float64 model keeps float64 losses)."""
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


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
                compute: ComputeSpec | None = None) -> PhaseOutcome:
    """Train `model` on (x, y) for epochs start_epoch+1 .. phase.epochs, or until a callback stops it.
    `x` holds float inputs or uint8 pixels (augmented as pixels, turned into floats per batch).
    `penalty(model)` is added to every batch's loss; `perturb(model, xb, yb, generator)` replaces every
    (augmented) batch's inputs before the step (adversarial training). `compute`: how the steps and the
    callbacks' evaluations are computed (None: fp32, contiguous, not compiled). With channels_last the
    model keeps that layout after the phase (its values are the same; checkpoints store contiguous copies)."""
    compute = compute or ComputeSpec()
    if compute.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=phase.lr, momentum=phase.momentum,
                          weight_decay=phase.weight_decay)
    if optimizer_state is not None:
        optimizer_state(opt)
    forward = torch.compile(model) if compute.compile else model  # shares the parameters of `model`
    history = list(history or [])
    model.train()
    n = len(y)
    for epoch in range(start_epoch + 1, phase.epochs + 1):
        started = time.perf_counter()
        lr = lr_at(phase, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(derive_seed(seed, epoch))
        order = to_device(torch.randperm(n, generator=g), x.device)
        loss_sum = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device)  # counted per original example (augmentation may add copies)
        for i in range(0, n, phase.batch_size):
            idx = order[i:i + phase.batch_size]
            xb, yb = x[idx], y[idx]
            if phase.augment and augment is not None:
                xb, yb = augment(xb, yb, g)
            xb = memory_format(compute, as_inputs(xb))
            with precision(compute, x.device):
                if perturb is not None:
                    xb = perturb(model, xb, yb, g)
                out = forward(xb)
                loss = F.cross_entropy(full_precision(out), yb)
            objective = loss + penalty(model) if penalty is not None else loss  # the penalty in float32
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
        token = _EVAL_COMPUTE.set(compute)
        try:
            for callback in callbacks:
                callback(state)
        finally:
            _EVAL_COMPUTE.reset(token)
        history.append(metrics)
        if state.stop_reason:
            return PhaseOutcome(epoch, state.stop_reason, history)
    return PhaseOutcome(phase.epochs, "epoch cap", history)
