"""Where a result came from: the badminima version, the git commit of the checkout it ran from (if
any), the torch version, the device, the command line and the date. Recorded with every experiment
set in the store, printed by `--json`, and shown on the report page."""
from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import __version__

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the checkout holding the badminima package, if any


def git_commit(root: Path = SOURCE_ROOT) -> str | None:
    """The commit checked out at `root` ("+dirty" when tracked files differ from it); None outside a git checkout."""
    if not (root / ".git").exists():
        return None
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def describe_device(device: str) -> str:
    """'cpu', or 'cuda (<GPU name>)'."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def provenance(device: str | None, argv: list[str] | None = None) -> dict:
    """The provenance of a command run now with arguments `argv` (default: this process's)."""
    import torch

    argv = sys.argv[1:] if argv is None else argv
    return {"badminima_version": __version__, "git_commit": git_commit(), "torch_version": torch.__version__,
            "device": None if device is None else describe_device(device), "command": shlex.join(["badminima", *argv]),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
