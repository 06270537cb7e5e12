import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

torch.set_num_threads(1)


def run_cli(*args, cwd=None, timeout=600):
    """Run `python -m badminima ARGS` in a subprocess with one torch thread; return the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "badminima", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def loss_of_flat_parameters(model, x, y, loss_fn=F.cross_entropy):
    """(loss(theta), theta0): the loss of `model` on all of (x, y) in one batch as a function of its parameters
    flattened into one vector, and that vector now; explicit gradients and Hessians come from torch.autograd or
    torch.func applied to it, independently of the chunked products under test."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss(theta):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = theta[i:i + s.numel()].reshape(s)
            i += s.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    return loss, flat


def make_readonly(folder) -> bool:
    """Make `folder` unwritable (chmod; chattr +i where we run as root); whether that worked here."""
    os.chmod(folder, 0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    try:
        (folder / ".probe").touch()
    except OSError:
        return True
    (folder / ".probe").unlink()
    return False


def make_writable(folder) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    os.chmod(folder, 0o755)


def epoch_rows(out: Path) -> dict:
    """{(phase id, epoch): metrics without the timing} of every epoch recorded in OUT's store."""
    from badminima.store import Store

    store = Store(out)
    rows = {(r[0], r[1]): {k: v for k, v in json.loads(r[2]).items() if k != "seconds"}
            for r in store.conn.execute("SELECT phase_id, epoch, metrics FROM epochs")}
    store.close()
    return rows


def journal_epoch_counts(out: Path) -> list[int]:
    """Epochs recorded in each of OUT's journals now; a journal ingested while it is read is skipped (a
    trigger for fault tests, not a measurement)."""
    counts = []
    for path in Path(out).glob("journal/*.jsonl"):
        try:
            counts.append(path.read_text().count('"record_epoch"'))
        except FileNotFoundError:  # ingested into the database meanwhile
            pass
    return counts
