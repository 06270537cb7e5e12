"""A worker's share of a GPU (train/memory.py), on the CPU with a fake torch.cuda.mem_get_info."""
import pytest
import torch
from torch import nn

from badminima.errors import BadInput
from badminima.runs import Workspace
from badminima.spec import DataSpec, InitSpec, ModelSpec, RunSpec
from badminima.store import Store
from badminima.train.memory import (CONTEXT_BYTES, GIB, SHARE_ENV, activation_floats, check_budget, check_phase_memory,
                                    device_workers, phase_need)


def fake(free_gib, total_gib):
    return lambda: (int(free_gib * GIB), int(total_gib * GIB))


def test_budget_is_the_workers_share_and_both_limits_are_checked():
    assert check_budget(5 * GIB, 4, fake(80, 80)) == 20 * GIB
    with pytest.raises(BadInput, match=r"share \(1/4 of 80.0 GiB = 20.0 GiB\).*fewer --workers"):
        check_budget(25 * GIB, 4, fake(80, 80))
    with pytest.raises(BadInput, match="share"):  # what the worker already holds counts against its share
        check_budget(15 * GIB, 4, fake(80, 80), held=6 * GIB)
    with pytest.raises(BadInput, match="only 3.0 GiB of 80.0 GiB are free"):
        check_budget(5 * GIB, 4, fake(3, 80))
    assert check_budget(25 * GIB, 1, fake(80, 80)) == 80 * GIB


def test_activation_count_and_need_by_hand():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert activation_floats(net, torch.zeros(1, 4)) == 8 + 8 + 3
    params = 4 * 8 + 8 + 8 * 3 + 3
    need = phase_need(net, torch.zeros(1, 4), batch_size=128, extra_data_bytes=1000)
    assert need == CONTEXT_BYTES + 1000 + 16 * params + 2 * 4 * 128 * 19


def test_workers_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(SHARE_ENV, raising=False)
    assert device_workers() == 1
    monkeypatch.setenv(SHARE_ENV, "4")
    assert device_workers() == 4


def test_a_phase_is_checked_against_its_share(tmp_path, monkeypatch):
    spec = RunSpec(DataSpec("mnist1d"), ModelSpec("mlp"), InitSpec("adversarial", replication_factor=3))
    ws = Workspace(Store(tmp_path), quiet=True)
    monkeypatch.setenv(SHARE_ENV, "2")
    assert check_phase_memory(spec, ws, fake(16, 16)) == 8 * GIB
    data = ws.stored(spec)
    replicas = 3 * data.x_train.numel() * 4
    monkeypatch.setenv(SHARE_ENV, "16")  # 1 GiB each: the context alone takes half, the MLP's state fits
    assert check_phase_memory(spec, ws, fake(16, 16)) == GIB
    with pytest.raises(BadInput, match="fewer --workers"):
        check_phase_memory(spec, ws, fake(16, (CONTEXT_BYTES + replicas) * 16 / GIB))
