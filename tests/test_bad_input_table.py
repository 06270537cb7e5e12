"""Fifty-odd malformed specs and flags: each gives one error line, exit status 2, and leaves the
store untouched (table-driven)."""
import hashlib
import pickle

import pytest

from badminima.cli import main
from badminima.store import Store

FLAGS = [
    ["--dataset", "mnist2d"], ["--dataset", ""], ["--model", "resnet9000"], ["--model", "MLP"],
    ["-R", "0"], ["-R", "-1"], ["-R", "1.5"], ["-R", "many"], ["-N", "-0.1"], ["-N", "101"], ["-N", "1e9"],
    ["-N", "ten"], ["--zero-mode", "rows"], ["--random-label-fraction", "1.5"], ["--random-label-fraction", "-0.5"],
    ["--epochs", "-1"], ["--epochs", "1.5"], ["--pretrain-epochs", "-3"], ["--lr", "0"], ["--lr", "-0.1"],
    ["--lr", "fast"], ["--batch-size", "0"], ["--batch-size", "-8"], ["--width", "0"], ["--width", "-5"],
    ["--depth", "0"], ["--train-size", "0"], ["--train-size", "999999"], ["--seeds", ""], ["--seeds", "a"],
    ["--seeds", "1,1"], ["--seeds", "-1"], ["--seeds", "3-x"], ["--preset", "gpu"], ["--device", "tpu"],
    ["--workers", "0"], ["--threads", "0"], ["--executor", "slurm"], ["--executor", "ray"],
    ["--dataset", "cifar10"], ["--dataset", "cifar100", "--data-dir", "/does/not/exist"],
    ["--dataset", "cinic10", "--data-dir", "/does/not/exist"], ["--unknown-flag"], ["--config", "/does/not/exist.toml"],
    ["--model", "densenet40", "--depth", "41"],
]
TOML = [
    "[model]\nwidht = 3\n", "[recipe]\nepochs = \"ten\"\n", "seed = 1.5\n", "seed = -1\n", "[recipe]\nlr_milestones = [1.5]\n",
    "model = 3\n", "[recipe\n", "[init]\nreplication_factor = 0\n", "[init]\nzeroed_percent = 200\n",
    "[init]\nzero_mode = 5\n", "[init.pretrain]\npatience = 0\n", "[recipe]\naugment = \"yes\"\n",
    "[data]\nname = \"nope\"\n", "[data]\ntrain_size = -2\n", "[recipe]\nbatch_size = 0\n", "unknown = 1\n",
    "[init]\nname = \"lottery\"\n", "\xff\xfe garbage",
]


def _snapshot(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    store = Store(out)
    store.record_run("r0", {"seed": 0}, ["p0"])
    store.close()
    return out


def _check(argv, store_dir, capsys):
    before = _snapshot(store_dir)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("badminima: error: "), err
    assert _snapshot(store_dir) == before


def test_there_are_at_least_fifty_cases():
    assert len(FLAGS) + len(TOML) >= 50


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: " ".join(f) or "empty")
def test_malformed_flags(flags, store_dir, capsys):
    _check(["run", "bad-minima", *flags, "--out", str(store_dir)], store_dir, capsys)


@pytest.mark.parametrize("text", TOML)
def test_malformed_spec_files(text, store_dir, tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_bytes(text.encode("latin-1"))
    _check(["run", "bad-minima", "--config", str(path), "--out", str(store_dir)], store_dir, capsys)


def test_pickle_payload_in_a_data_directory_is_never_executed(tmp_path, store_dir, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "data" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(pickle.dumps(Payload()))
    (folder / "data_batch_1").write_bytes(pickle.dumps(Payload()))  # the python-version file name, too
    _check(["run", "bad-minima", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--out", str(store_dir)],
           store_dir, capsys)
    assert not marker.exists()
