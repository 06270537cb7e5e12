"""One GPU shared by K worker processes (`--workers K --device cuda`): each worker's memory budget.

Every worker gets 1/K of the device's memory. Before a phase starts, its worker checks that the phase's
estimated need fits both its share and what the device has free now (torch.cuda.mem_get_info), and caps
its own allocator at the share (torch.cuda.set_per_process_memory_fraction), so that a worker that needs
more than estimated fails alone instead of starving its neighbours. A phase that cannot fit is a clear
one-line error before anything is trained, not an out-of-memory crash in the middle of an epoch.

The need is an estimate, conservative rather than exact: the CUDA context (CONTEXT_BYTES), the data the
phase adds on the device (Algorithm 1's uint8 replicas), four float32 copies of the parameters (weights,
gradients, momentum, the model the phase starts from) and the activations of one training batch - the
outputs of every leaf module for one example, counted by forward hooks, times the batch size, twice
(what the backward pass keeps, and their gradients).
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from ..data import as_inputs
from ..errors import BadInput

SHARE_ENV = "BADMINIMA_DEVICE_WORKERS"  # how many processes share the device (the CLI sets it for its pool)
CONTEXT_BYTES = 512 * 2**20  # a CUDA context with cuDNN/cuBLAS handles and workspaces, roughly
GIB = 2**30


def device_workers() -> int:
    """How many worker processes share this process's device (1 unless the CLI said otherwise)."""
    try:
        return max(1, int(os.environ.get(SHARE_ENV, "1")))
    except ValueError:
        return 1


@torch.no_grad()
def activation_floats(model: torch.nn.Module, example: torch.Tensor) -> int:
    """The number of values that the leaf modules of `model` output for the one input `example` (1, ...)."""
    count = [0]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                count[0] += t.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return count[0]


def phase_need(model: torch.nn.Module, example: torch.Tensor, batch_size: int, extra_data_bytes: int = 0) -> int:
    """Estimated device bytes of training `model` at `batch_size` (see the module docstring)."""
    params = sum(p.numel() for p in model.parameters())
    return CONTEXT_BYTES + extra_data_bytes + 4 * 4 * params + 2 * 4 * batch_size * activation_floats(model, example)


def check_budget(need: int, workers: int, mem_get_info: Callable[[], tuple[int, int]], held: int = 0) -> int:
    """This worker's budget, total/workers bytes, after checking that `need` more bytes (beyond the `held`
    bytes it already has) fit in it and are free on the device; BadInput otherwise."""
    free, total = mem_get_info()
    budget = total // workers
    if held + need > budget:
        raise BadInput(f"a phase needs about {(held + need) / GIB:.1f} GiB of device memory, more than this "
                       f"worker's share (1/{workers} of {total / GIB:.1f} GiB = {budget / GIB:.1f} GiB): use fewer --workers")
    if need > free:
        raise BadInput(f"a phase needs about {need / GIB:.1f} GiB more device memory, but only {free / GIB:.1f} GiB "
                       f"of {total / GIB:.1f} GiB are free (other processes hold the rest)")
    return budget


def check_phase_memory(spec, ws, mem_get_info: Callable[[], tuple[int, int]] | None = None) -> int:
    """Check the phases of `spec` in worker `ws` against the worker's share of its CUDA device (see the
    module docstring) and cap the worker's allocator there; returns the budget in bytes."""
    from ..runs import plan

    device = torch.device(ws.device)
    workers = device_workers()
    data = ws.stored(spec)  # on the device already: part of what the worker holds
    model = ws.skeleton(spec)
    example = as_inputs(data.x_train[:1])
    pretraining = any(p.kind == "pretrain" for p in plan(spec))
    replicas = spec.init.replication_factor * data.x_train.numel() * data.x_train.element_size() if pretraining else 0
    batch = max(spec.recipe.batch_size, spec.init.pretrain.batch_size if pretraining else 0)
    need = phase_need(model, example, batch, replicas)
    del model
    if mem_get_info is None:
        mem_get_info = lambda: torch.cuda.mem_get_info(device)  # noqa: E731
        held = torch.cuda.memory_reserved(device)
    else:
        held = 0
    budget = check_budget(need, workers, mem_get_info, held)
    if workers > 1 and device.type == "cuda":
        _, total = mem_get_info()
        torch.cuda.set_per_process_memory_fraction(budget / total, device)
    return budget
