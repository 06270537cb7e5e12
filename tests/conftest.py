import os
import subprocess
import sys

import pytest
import torch

torch.set_num_threads(1)


def run_cli(*args, cwd=None, timeout=600):
    """Run `python -m badminima ARGS` in a subprocess with one torch thread; return the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "badminima", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
