"""Fingerprints: what a phase's numbers depend on besides its spec - the architecture the model's code builds
now and the data it reads - recorded with every phase and compared when it is reused (runs.revalidate,
measuring.check_final_model), so that a changed model or dataset never returns an old phase's numbers."""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap

import torch

_FINGERPRINTS: dict = {}


def _forward_code(cls: type) -> str:
    """The forward method of a module class written outside torch, as a syntax tree (comments and layout
    do not count); torch's own classes are named by their type alone."""
    if cls.__module__.split(".")[0] == "torch":
        return ""
    try:
        return ast.dump(ast.parse(textwrap.dedent(inspect.getsource(cls.forward))))
    except (OSError, TypeError, SyntaxError):
        return ""


def fingerprint(spec, ws) -> dict:
    """The architecture that the registered model's code builds now (module names and types, the forward code
    of non-torch modules, parameter and buffer names, shapes and dtypes; built on the meta device) and the
    data (sizes and a SHA-256 of the train and test tensors). Recorded with every phase and compared on reuse,
    so that a changed model or dataset never returns an old phase's numbers."""
    key = (spec.data, spec.model, str(ws.data_dir), spec.seed if spec.data.train_size else None)
    if key not in _FINGERPRINTS:
        data, model = ws.stored(spec), ws.skeleton(spec, meta=True)
        arch = [[name, f"{type(m).__module__}.{type(m).__qualname__}", _forward_code(type(m))]
                for name, m in model.named_modules()]
        arch += [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()]
        content = hashlib.sha256()
        for t in (data.x_train, data.y_train, data.x_test, data.y_test):
            t = t.detach().cpu().contiguous()
            content.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
            content.update(t.reshape(-1).view(torch.uint8).numpy())
        _FINGERPRINTS[key] = {
            "architecture": hashlib.sha256(json.dumps(arch).encode()).hexdigest()[:16],
            "parameters": sum(p.numel() for p in model.parameters()),
            "data": content.hexdigest()[:16], "data_sizes": [len(data.y_train), len(data.y_test)]}
    return _FINGERPRINTS[key]


def stale_reason(recorded: dict | None, current: dict) -> str | None:
    """Why a phase recorded with fingerprint `recorded` cannot be reused now; None if it can (or if it was
    recorded before fingerprints were: then there is nothing to compare)."""
    if not recorded:
        return None
    if recorded.get("architecture") != current["architecture"]:
        then, now = recorded.get("parameters"), current["parameters"]
        return ("the model's code builds a different architecture than the one it was trained with ("
                + (f"{then} parameters then, {now} now)" if then != now else
                   f"the same {now} parameters, other layer types, names or forward code)"))
    if recorded.get("data") != current["data"]:
        return (f"its data changed since it was trained (sizes {recorded.get('data_sizes')} then, "
                f"{current['data_sizes']} now, or other contents)")
    return None


def recorded_fingerprint(row: dict | None) -> dict | None:
    """The fingerprint a phase's row was recorded with (None: none, an older store)."""
    return json.loads(row["spec"]).get("fingerprint") if row and row.get("spec") else None
