"""Checkpoints as safetensors files carrying a checksum of their tensors; written atomically.

Nothing is unpickled: tensors go through safetensors, everything else is JSON in its metadata.
A truncated or altered file raises CorruptCheckpoint, and callers recompute what it held. Each write
goes to a temporary file of its own (`<name>.<random hex>.tmp`, TEMPORARY), then replaces the file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import BadInput

TEMPORARY = "*.safetensors.*.tmp"  # what a writer killed mid-write leaves behind


class CorruptCheckpoint(Exception):
    pass


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")  # every writer its own (two hosts, one phase)
    try:
        try:
            save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta), "sha256": tensors_digest(tensors)})
        except SafetensorError as exc:  # safetensors reports a full disk this way: make it the OSError it is
            code = re.search(r"os error (\d+)", str(exc))
            code = int(code.group(1)) if code else errno.EIO
            raise OSError(code, os.strerror(code), str(tmp)) from None
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint; CorruptCheckpoint if it is unreadable or fails its checksum,
    BadInput if a directory stands where it should be (which no rerun may delete for the user)."""
    if Path(path).is_dir():
        raise BadInput(f"{path} is a directory where a checkpoint should be; remove it and re-run")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = json.loads(header["meta"])
        expected = header["sha256"]
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such checkpoint", str(path)) from None
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpoint(f"{path}: unreadable checkpoint ({exc})") from None
    if tensors_digest(tensors) != expected:
        raise CorruptCheckpoint(f"{path}: checksum mismatch")
    return tensors, meta


def checkpoint_meta(path: str | Path) -> dict:
    """The JSON meta of a checkpoint, read from its header alone (the tensors are neither read nor verified)."""
    if Path(path).is_dir():
        raise BadInput(f"{path} is a directory where a checkpoint should be; remove it and re-run")
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {})["meta"])
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such checkpoint", str(path)) from None
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpoint(f"{path}: unreadable checkpoint ({exc})") from None


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"model/{k}": v for k, v in model.state_dict().items()}


def load_model_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})


def optimizer_payload(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = opt.state_dict()
    tensors = {f"optim/{idx}/{name}": value for idx, entry in state["state"].items()
               for name, value in entry.items() if isinstance(value, torch.Tensor)}
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
