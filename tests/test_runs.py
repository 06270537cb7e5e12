"""Runs as chains of phases: sharing, skipping, recomputing a corrupt checkpoint, the paper preset."""
import json
from dataclasses import replace

import numpy as np

from badminima.cli import main
from badminima.experiments import get_experiment
from badminima.presets import base_spec
from badminima.executors import InProcess
from badminima.executors.scheduler import execute
from badminima.runs import Workspace, final_path, plan
from badminima.spec import InitSpec, apply_recipe
from badminima.store import Store

TINY = ["--train-size", "200", "--width", "32", "--epochs", "4", "--pretrain-epochs", "3", "-R", "1", "--seeds", "0",
        "--workers", "1", "--quiet"]


def test_runs_share_their_common_phases():
    base = base_spec("cpu")
    specs = get_experiment("bad-minima").cells(base, [0, 1])
    assert len(specs) == 8
    phases = [plan(s) for s in specs]
    adv_vanilla, adv_sota = [p for s, p in zip(specs, phases) if s.seed == 0 and s.init.name == "adversarial"]
    assert adv_vanilla[1] == adv_sota[1] and adv_vanilla[1].kind == "pretrain"  # one pretraining, two recipes
    rand_vanilla = next(p for s, p in zip(specs, phases) if s.seed == 0 and s.init.name == "default")
    assert rand_vanilla[0] == adv_vanilla[0]  # the adversarial init starts from the same random init
    assert len({p[-1].id for p in phases}) == 8
    assert plan(replace(specs[0], seed=1))[0] != plan(specs[0])[0]


def test_corrupt_final_checkpoint_is_recomputed(tmp_path, capsys):
    spec = replace(base_spec("cpu"), init=InitSpec(), recipe=apply_recipe(base_spec("cpu").recipe, "vanilla"))
    spec = replace(spec, data=replace(spec.data, train_size=200), model=replace(spec.model, width=32),
                   recipe=replace(spec.recipe, epochs=3))
    ws = Workspace(Store(tmp_path))
    first, = execute([spec], ws, InProcess())
    path = final_path(ws.store, first["run_id"])
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    second, = execute([spec], Workspace(Store(tmp_path)), InProcess())
    assert "checksum mismatch" in capsys.readouterr().err
    assert second == first
    assert path.read_bytes() != bytes(data)


def test_second_invocation_skips_finished_work(tmp_path, capsys):
    args = ["run", "bad-minima", *TINY, "--out", str(tmp_path), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["records"]
    store = Store(tmp_path)
    stamps = {r["id"]: r["updated"] for r in store.conn.execute("SELECT id, updated FROM phases")}
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["records"] == first
    assert {r["id"]: r["updated"] for r in store.conn.execute("SELECT id, updated FROM phases")} == stamps


def test_paper_preset_is_the_papers_protocol():
    cifar = base_spec("paper", "cifar10")
    assert (cifar.recipe.epochs, cifar.recipe.lr_milestones, cifar.recipe.batch_size) == (350, (150, 250), 128)
    assert (cifar.recipe.lr, cifar.recipe.momentum, cifar.recipe.weight_decay, cifar.recipe.augment) == (0.1, 0.9, 5e-4, True)
    cinic = base_spec("paper", "cinic10")
    assert (cinic.recipe.epochs, cinic.recipe.lr_milestones, cinic.recipe.weight_decay) == (300, (150, 225), 1e-4)
    assert base_spec("paper", "restricted-imagenet").recipe.lr_milestones == (150, 225)
    vanilla = apply_recipe(cifar.recipe, "vanilla")
    assert (vanilla.momentum, vanilla.weight_decay, vanilla.augment) == (0.0, 0.0, False)


def test_paper_preset_runs_resnet18_on_cifar_binary_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, size=(8, 1), dtype=np.uint8)
        np.concatenate([labels, rng.integers(0, 256, size=(8, 3072), dtype=np.uint8)], axis=1).tofile(folder / name)
    argv = ["run", "bad-minima", "--preset", "paper", "--dataset", "cifar10", "--model", "resnet18", "--width", "4",
            "--data-dir", str(tmp_path / "data"), "--epochs", "2", "--pretrain-epochs", "1", "-R", "1", "--seeds", "0",
            "--out", str(tmp_path / "out"), "--json", "--quiet"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert len(records) == 4 and all(r["status"] == "done" for r in records)
    store = Store(tmp_path / "out")
    spec = json.loads(store.conn.execute("SELECT spec FROM phases WHERE kind='train' LIMIT 1").fetchone()[0])
    assert spec["recipe"]["lr_milestones"] == [150, 250] and spec["recipe"]["batch_size"] == 128
    assert spec["model"]["name"] == "resnet18"
