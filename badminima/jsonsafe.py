"""JSON without NaN: a non-finite float becomes null, so every JSON file and `--json` output we write
is standard JSON (Python's json module would write the non-standard NaN / Infinity tokens)."""
from __future__ import annotations

import json
import math


def finite(obj):
    """`obj` with every non-finite float (NaN, +-inf), at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """json.dumps of finite(obj), refusing NaN (so a value that slipped past `finite` fails loudly)."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
