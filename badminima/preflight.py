"""Checks made before anything is written: the memory a run needs, that the model takes the data,
that the output directory can be written, that a Ray cluster listens where --address says.

Each raises BadInput (one line, exit status 2). The memory estimate is deliberately rough - an upper
bound of the order of magnitude, to turn a size typed with three zeros too many into a clear line
instead of minutes of swapping and a MemoryError - not a prediction of the peak.
"""
from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import torch

from .errors import BadInput
from .spec import RunSpec

BYTES_PER_VALUE = 4  # float32 parameters and activations
# model copies alive while a phase trains: weights, gradients, momentum buffer, the phase's starting weights
# (for the distance travelled), the parent's final model, and the CPU copies a checkpoint is written from
MODEL_COPIES = 8
ACTIVATION_COPIES = 3  # per layer output during training: the forward value, what autograd saves, its gradient
PROCESS_BYTES = 300 * 2 ** 20  # a Python process with torch imported (each pool worker is one)
CONNECT_SECONDS = 3.0
OUTPUT_FOLDERS = ("phases", "journal", "report")  # what badminima creates in an output directory


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def memory_bound() -> int:
    """Bytes of memory this machine (or its cgroup, where that is smaller) has: the bound sizes are checked
    against. Total memory, not what is free now, so the same command gets the same answer."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parameter_count(ws, spec: RunSpec) -> int:
    """Parameters and buffers of the model of `spec`, built on the meta device (no memory, no RNG draws)."""
    data = ws.dataset(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op": the dry pass says more
            model = ws.skeleton(spec, meta=True)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001  (a builder meeting an input shape it was not written for; sizes overflowing)
        raise BadInput(f"model {spec.model.name!r} cannot be built for {spec.data.name}'s inputs of shape "
                       f"{tuple(data.input_shape)}: {_first_line(exc)}") from None
    return sum(t.numel() for t in model.state_dict().values())


def dry_forward(ws, spec: RunSpec) -> int:
    """Build the model of `spec` (ws.skeleton) and run two training inputs through it (eval mode, no gradients);
    BadInput when it does not accept them or does not give one logit per class. Returns the number of values
    of every layer's output per example (for the memory estimate)."""
    data = ws.dataset(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op": the pass below says more
        model = ws.skeleton(spec)
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, out: sizes.append(out.numel() if torch.is_tensor(out) else 0))
             for m in model.modules() if not list(m.children())]
    x = data.x_train[:2]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:  # noqa: BLE001  (torch raises RuntimeError, ValueError, IndexError ... on a shape mismatch)
        raise BadInput(f"model {spec.model.name!r} does not accept {spec.data.name}'s inputs of shape "
                       f"{tuple(data.input_shape)}: {_first_line(exc)}") from None
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    if tuple(out.shape) != (len(x), data.num_classes):
        raise BadInput(f"model {spec.model.name!r} gives outputs of shape {tuple(out.shape[1:])} on {spec.data.name}, "
                       f"not one logit per class ({data.num_classes})")
    return sum(sizes) // len(x)


def check_memory(spec: RunSpec, data, parameters: int, activations: int | None, workers: int = 1,
                 bound: int | None = None) -> int:
    """BadInput when a phase of `spec` would need more memory than `bound` (default: memory_bound()).

    Estimate per process: MODEL_COPIES copies of the parameters; the dataset, and R replicas of the
    training inputs when the init pretrains on Algorithm 1's data; ACTIVATION_COPIES of every layer's output
    for a batch; PROCESS_BYTES. Times the pool's workers. Returns the estimate in bytes."""
    from .inits import get_init

    bound = memory_bound() if bound is None else bound
    model = parameters * BYTES_PER_VALUE * MODEL_COPIES
    dataset = sum(t.numel() * t.element_size() for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    per_example = data.x_train[:1].numel() * data.x_train.element_size() + data.y_train.element_size()
    replicas = spec.init.replication_factor if get_init(spec.init.name).pretraining_data is not None else 0
    pretraining = replicas * len(data.y_train) * per_example
    batch = min(max(spec.recipe.batch_size, spec.init.pretrain.batch_size), max(len(data.y_train) * max(replicas, 1), 1))
    acts = (activations or 0) * batch * BYTES_PER_VALUE * ACTIVATION_COPIES
    need = (model + dataset + pretraining + acts + PROCESS_BYTES) * workers
    if need > bound:
        parts = [f"{parameters:,} parameters x {MODEL_COPIES} copies: {gib(model)}"]
        if pretraining:
            parts.append(f"R = {replicas} replicas of the training set: {gib(pretraining)}")
        if acts:
            parts.append(f"activations of a batch of {batch}: {gib(acts)}")
        if workers > 1:
            parts.append(f"x {workers} workers")
        raise BadInput(f"run needs about {gib(need)} of memory ({'; '.join(parts)}), more than the {gib(bound)} "
                       f"this machine has: lower --width, --depth, -R, --batch-size or --workers")
    return need


def check_output_dir(out: str | Path) -> None:
    """BadInput when `out` is a file, lies under a file, or cannot be created or written; writes nothing."""
    out = Path(out)
    probe = out
    while not probe.exists():  # the nearest existing ancestor: a directory we may write, or a file in the way
        if probe.is_symlink():
            raise BadInput(f"output directory {out}: {probe} is a broken link")
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == out else f"lies under {probe}, which is a file"
        raise BadInput(f"output directory {out} {where}; give --out a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"output directory {out}: {probe} is not writable")
    for name in OUTPUT_FOLDERS:
        if (out / name).exists() and not (out / name).is_dir():
            raise BadInput(f"{out / name} should be a folder of badminima's but is a file; move it away")


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT` (or `ray://HOST:PORT`); BadInput if malformed."""
    body = text[len("ray://"):] if text.startswith("ray://") else text
    host, sep, port = body.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in body):
        raise BadInput(f"--address must be HOST:PORT (port 1-65535), e.g. 127.0.0.1:6379, got {text!r}")
    return host.strip("[]"), int(port)


def check_listening(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """BadInput unless something accepts a TCP connection at `address` within `timeout` seconds
    (so a wrong --address fails at once instead of after Ray's minutes of retries)."""
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BadInput(f"--address {address}: nothing listens there ({reason}); start the cluster with "
                       f"`ray start --head --port {port}` or fix the address") from None
