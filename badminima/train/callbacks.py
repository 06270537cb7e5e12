"""Callbacks of the training loop: test evaluation, the stop rule, recording, progress."""
from __future__ import annotations

import sys
import time

import torch

from ..spec import PhaseSpec
from ..store import Store, save_checkpoint
from ..store.checkpoints import model_tensors, optimizer_payload
from .loop import EpochState, evaluate

# The full un-augmented pass over the training set (for the 100% stop rule) runs only once the
# running accuracy of the epoch reaches this fraction, and at the last epoch.
FULL_CHECK_FROM = 0.95
# Likewise the full pass for `stop_at_train_loss` runs once the epoch's running loss is within this
# factor of the target (the running loss averages over the epoch, so it lags the end-of-epoch loss).
LOSS_CHECK_FROM = 3.0


def evaluate_on(x: torch.Tensor, y: torch.Tensor, prefix: str):
    def callback(state: EpochState) -> None:
        loss, acc = evaluate(state.model, x, y)
        state.metrics[f"{prefix}_loss"], state.metrics[f"{prefix}_acc"] = loss, acc
    return callback


def epoch_100(history: list[dict], threshold: float = 1.0) -> int | None:
    """The first epoch whose un-augmented training accuracy (`clean_train_acc`, a fraction, measured on
    the whole training set in eval mode) reached `threshold`; None if none did."""
    return next((h["epoch"] for h in history if h.get("clean_train_acc", 0.0) >= threshold), None)


def stop_rule(phase: PhaseSpec, x_train: torch.Tensor, y_train: torch.Tensor):
    """Measure the un-augmented training accuracy (eval mode, whole training set) until it first
    reaches `phase.full_fit_accuracy`, which the epoch records as `clean_train_acc` (so `epoch_100` is
    known for every phase), and stop there if `stop_at_100`; stop once the un-augmented training
    cross-entropy is <= `stop_at_train_loss`; or stop after `patience` epochs without a new best
    running training accuracy, counted only after the last learning-rate decay.

    The full pass runs once the epoch's running accuracy reaches FULL_CHECK_FROM, and at the last
    epoch: `epoch_100` is exact whenever the running accuracy (over augmented batches, while the
    weights move) is at least that high in the epoch where the clean accuracy first reaches 100%."""
    last_decay = max(phase.lr_milestones, default=0)

    def callback(state: EpochState) -> None:
        m = state.metrics
        target = phase.stop_at_train_loss
        if target is not None and (m["train_loss"] <= LOSS_CHECK_FROM * target or state.epoch == phase.epochs):
            m["clean_train_loss"] = evaluate(state.model, x_train, y_train)[0]
            if m["clean_train_loss"] <= target:
                state.stop_reason = "reference train loss"
                return
        reached = epoch_100(state.history, phase.full_fit_accuracy) is not None
        if not reached and (m["train_acc"] >= FULL_CHECK_FROM or state.epoch == phase.epochs):
            m["clean_train_acc"] = evaluate(state.model, x_train, y_train)[1]
            if m["clean_train_acc"] >= phase.full_fit_accuracy and phase.stop_at_100:
                state.stop_reason = "100% train accuracy"
                return
        if phase.patience is not None and state.epoch > last_decay:
            accs = [h["train_acc"] for h in state.history if h["epoch"] > last_decay] + [m["train_acc"]]
            if len(accs) > phase.patience and max(accs[-phase.patience:]) <= max(accs[:-phase.patience]):
                state.stop_reason = "no improvement"
    return callback


def record(store: Store, phase_id: str, resume_path):
    """Commit the epoch's metrics, then write the resume checkpoint (model + optimizer + the epoch's
    stop decision, so that a resume never trains past a phase's end).

    In this order a crash between the two leaves the database one epoch ahead of the checkpoint;
    the resume truncates the database to the checkpoint's epoch and repeats that epoch exactly.
    """
    def callback(state: EpochState) -> None:
        store.record_epoch(phase_id, state.epoch, state.metrics)
        tensors, meta = optimizer_payload(state.optimizer)
        save_checkpoint(resume_path, {**model_tensors(state.model), **tensors}, {**meta, "epoch": state.epoch, "stop_reason": state.stop_reason})
    return callback


def progress(label: str, total: int, every_seconds: float = 2.0, stream=None):
    """A phase's epochs, with its ETA (badminima.progress): shown by this process's live sweep display when
    one runs here, else as plain lines on `stream` (default stderr), at most one per `every_seconds` and
    always the last."""
    from .. import progress as shown

    clock, last = shown.Clock(), [float("-inf")]

    def callback(state: EpochState) -> None:
        eta = clock.eta(state.epoch, total, state.metrics.get("seconds"))
        if shown.epoch(label, state.epoch, total, state.metrics, eta):
            return
        now = time.monotonic()
        if now - last[0] < every_seconds and not state.stop_reason and state.epoch != total:
            return
        last[0] = now
        print(shown.epoch_line(label, state.epoch, total, state.metrics, eta), file=stream or sys.stderr, flush=True)
    return callback
