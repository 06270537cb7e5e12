"""Nothing stale is reused (issue 13, item 5): a phase is recomputed - with a warning saying why - when the
registered model's code or the dataset changed since it was trained, or when its checkpoint belongs to
another phase; `measure` refuses such a phase with one line. The reference each time is a fresh run of the
current code in an empty directory."""
import contextlib
import io
import json
import shutil

import pytest
import torch
from torch import nn

import badminima.fingerprints as fingerprints
import badminima.runs as runs
from badminima.cli import main
from badminima.data import DATASETS, DatasetEntry
from badminima.data.builtin import gaussians2d
from badminima.models import MODELS, ModelEntry
from badminima.store import Store, load_checkpoint

ARGS = ["run", "bad-minima", "--dataset", "gaussians2d", "--epochs", "3", "--pretrain-epochs", "2", "-R", "1",
        "--seeds", "0", "--workers", "1", "--quiet", "--json"]  # in this process: the tests change its registries


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue().strip().splitlines()


def records(*argv):
    status, stdout, err = cli(*argv)
    assert status == 0, err
    return json.loads(stdout)["records"], err


def fresh_process_caches(monkeypatch):
    """What a new process starts with: no loaded dataset, no fingerprint (the code changed between two runs)."""
    monkeypatch.setattr(runs, "_DATASETS", {})
    monkeypatch.setattr(fingerprints, "_FINGERPRINTS", {})


def probe_model(activation, width):
    def build(input_shape, num_classes, **_):  # the width is written in the code, as a user would edit it
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), activation(), nn.Linear(width, num_classes))
    return ModelEntry("probe", build, "a model whose code the test edits")


@pytest.mark.parametrize("change", [(nn.ReLU, 32, nn.Tanh, 32), (nn.ReLU, 32, nn.ReLU, 8)], ids=["relu-to-tanh", "width-32-to-8"])
def test_changed_model_code_is_recomputed_not_reused(change, tmp_path, monkeypatch):
    old_act, old_width, new_act, new_width = change
    argv = [*ARGS, "--model", "probe"]
    monkeypatch.setitem(MODELS, "probe", probe_model(old_act, old_width))
    old, _ = records(*argv, "--out", tmp_path / "out")

    fresh_process_caches(monkeypatch)
    monkeypatch.setitem(MODELS, "probe", probe_model(new_act, new_width))
    new, warnings = records(*argv, "--out", tmp_path / "out")
    fresh_process_caches(monkeypatch)
    reference, _ = records(*argv, "--out", tmp_path / "fresh")

    assert new == reference and new != old
    assert warnings and all("the model's code builds a different architecture" in w and "recomputing it" in w
                            for w in warnings)
    assert len(warnings) == len(list((tmp_path / "out" / "phases").iterdir()))  # each phase of the grid, once
    fresh_process_caches(monkeypatch)
    again, warnings = records(*argv, "--out", tmp_path / "out")
    assert again == reference and warnings == []  # recomputed once, then reused


def test_changed_data_is_recomputed_not_reused(tmp_path, monkeypatch):
    def shifted(_dir=None):
        data = gaussians2d()
        data.x_train = data.x_train + 0.5
        return data

    monkeypatch.setitem(DATASETS, "gaussians2d", DatasetEntry("gaussians2d", gaussians2d, False, "as registered"))
    old, _ = records(*ARGS, "--out", tmp_path / "out")
    fresh_process_caches(monkeypatch)
    monkeypatch.setitem(DATASETS, "gaussians2d", DatasetEntry("gaussians2d", shifted, False, "edited"))
    new, warnings = records(*ARGS, "--out", tmp_path / "out")
    fresh_process_caches(monkeypatch)
    reference, _ = records(*ARGS, "--out", tmp_path / "fresh")
    assert new == reference and new != old
    assert warnings and all("its data changed since it was trained" in w for w in warnings)


def _phase_ids(out):
    store = Store(out)
    try:
        runs_ = [store.run(r[0]) for r in store.conn.execute("SELECT id FROM runs")]
    finally:
        store.close()
    return sorted(runs_, key=lambda r: len(r["phases"]))


def test_checkpoint_copied_from_another_phase_is_recomputed(tmp_path):
    out = tmp_path / "out"
    reference, _ = records(*ARGS, "--out", out)
    short = _phase_ids(out)[0]["phases"]  # random init -> train
    victim = out / "phases" / short[-1] / "final.safetensors"
    good = {k: v.clone() for k, v in load_checkpoint(victim)[0].items()}  # a copy: safetensors maps the file
    shutil.copy(out / "phases" / short[0] / "final.safetensors", victim)  # same architecture, other weights

    status, _, err = cli("measure", short[-1], "--out", out, "--measure", "frobenius", "--quiet", "--force")
    assert status == 2 and len(err) == 1 and f"holds phase {short[0]}, not {short[-1]}" in err[0], err

    again, warnings = records(*ARGS, "--out", out)
    assert warnings == [f"badminima: warning: phase {short[-1]} (train): its final checkpoint holds phase {short[0]}, "
                        f"not this one (copied from another phase?); recomputing it"]
    assert again == reference
    after = load_checkpoint(victim)[0]  # the same weights as before the copy: training is deterministic
    assert after.keys() == good.keys() and all(torch.equal(after[k], good[k]) for k in good)


def test_measure_refuses_a_phase_of_changed_model_code(tmp_path, monkeypatch):
    argv = [*ARGS, "--model", "probe"]
    monkeypatch.setitem(MODELS, "probe", probe_model(nn.ReLU, 32))
    records(*argv, "--out", tmp_path / "out")
    run_id = _phase_ids(tmp_path / "out")[0]["id"]
    fresh_process_caches(monkeypatch)
    monkeypatch.setitem(MODELS, "probe", probe_model(nn.Tanh, 32))
    status, _, err = cli("measure", run_id, "--out", tmp_path / "out", "--measure", "frobenius", "--quiet")
    assert status == 2 and len(err) == 1 and err[0].startswith("badminima: error: ") and "is stale" in err[0], err


def test_fingerprint_sees_types_shapes_and_data_only_where_they_differ():
    """Independent of the store: the fingerprint changes exactly when module types, shapes or data bytes do."""
    from badminima.fingerprints import fingerprint
    from badminima.runs import Workspace
    from badminima.spec import DataSpec, ModelSpec, RunSpec

    ws = Workspace(store=None)
    base = fingerprint(RunSpec(DataSpec("gaussians2d"), ModelSpec("mlp", width=16)), ws)
    assert fingerprint(RunSpec(DataSpec("gaussians2d"), ModelSpec("mlp", width=16), seed=3), ws) == base
    wider = fingerprint(RunSpec(DataSpec("gaussians2d"), ModelSpec("mlp", width=17)), ws)
    assert wider["architecture"] != base["architecture"] and wider["data"] == base["data"]
    subset = fingerprint(RunSpec(DataSpec("gaussians2d", train_size=50), ModelSpec("mlp", width=16)), ws)
    assert subset["data"] != base["data"] and subset["data_sizes"] == [50, base["data_sizes"][1]]
    for width, fp in ((16, base), (17, wider)):  # parameters counted on an independently built net
        mlp = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
        assert fp["parameters"] == sum(p.numel() for p in mlp.parameters())
    assert torch.equal(ws.dataset(RunSpec(DataSpec("gaussians2d"))).x_train, gaussians2d().x_train)
