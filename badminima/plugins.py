"""Resolving names of models and datasets that live outside badminima.

A registry entry names its code as a reference `package.module:attribute`, imported on first use,
so that listing names imports no model or dataset code (and no torch). Three kinds of names resolve
to such a reference:

- a built-in name (`mlp`, `digits`): the registry's own table;
- an installed plug-in: an entry point in the group `badminima.models` or `badminima.datasets`
  (`[project.entry-points."badminima.models"] tinynet = "mypkg.nets:tinynet"`), found through the
  installed distributions' metadata;
- a reference written out, `mypkg.nets:tinynet`, importable on the Python path.

Every process resolves a name on demand when it builds a model or loads data, so local pool and Ray
workers need nothing but the plug-in's package on their Python path.
"""
from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from typing import Any, Callable

from .errors import BadInput

GROUPS = {"model": "badminima.models", "dataset": "badminima.datasets"}


def is_reference(name: str) -> bool:
    """`package.module:attribute` (a colon, and a module path before it)."""
    module, _, attr = name.partition(":")
    return bool(module and attr) and all(part.isidentifier() for part in module.split(".") + attr.split("."))


def resolve(reference: str, what: str) -> Callable:
    """The callable that `package.module:attribute` names; BadInput if it cannot be imported."""
    if not is_reference(reference):
        raise BadInput(f"{what}: {reference!r} is not a reference of the form package.module:function")
    module_name, _, attr = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(f"{what}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise BadInput(f"{what}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise BadInput(f"{what}: {reference!r} is not callable")
    return target


def entry_points(kind: str) -> dict[str, tuple[str, str]]:
    """Installed plug-ins of a kind ("model" | "dataset"): name -> (reference, distribution), read from
    the distributions' metadata without importing them."""
    found = {}
    for ep in metadata.entry_points(group=GROUPS[kind]):
        dist = getattr(ep, "dist", None)
        found.setdefault(ep.name, (ep.value, dist.name if dist is not None else "?"))
    return found


def reference_of(kind: str, name: str, builtins: dict[str, str]) -> str | None:
    """The reference a name stands for: built-in table first, then installed plug-ins, then the name
    itself if it is a reference; None if it is none of these."""
    if name in builtins:
        return builtins[name]
    plugin = entry_points(kind).get(name)
    if plugin is not None:
        return plugin[0]
    return name if is_reference(name) else None


def check_arguments(fn: Callable, what: str, *args, **kwargs) -> None:
    """BadInput if `fn` cannot be called with these arguments (checked before the call, so that a
    TypeError raised inside `fn` is not mistaken for a wrong option)."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise BadInput(f"{what} does not take these arguments: {exc} (given: {', '.join(kwargs) or 'none'})") from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass
