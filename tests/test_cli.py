"""Bad input: one error line, exit status 2, and nothing written to the store."""
import hashlib

import pytest

from badminima.cli import main
from badminima.store import Store


def _snapshot(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def store_dir(tmp_path):
    out = tmp_path / "out"
    store = Store(out)
    store.record_run("r0", {"seed": 0}, ["p0"])
    store.close()
    return out


BAD = [
    (["run", "bad-minima", "--dataset", "imagenet21k"], "unknown dataset"),
    (["run", "bad-minima", "--model", "resnet1000"], "unknown model"),
    (["run", "bad-minima", "--replication-factor", "0"], "replication factor"),
    (["run", "bad-minima", "-R", "-3"], "replication factor"),
    (["run", "bad-minima", "--zeroed-percent", "100.5"], "zeroed percentage"),
    (["run", "bad-minima", "-N", "-1"], "zeroed percentage"),
    (["run", "bad-minima", "--dataset", "cifar10"], "--data-dir"),
    (["run", "bad-minima", "--dataset", "cifar10", "--data-dir", "/nonexistent/dir"], "not found"),
    (["run", "bad-minima", "--config", "/nonexistent/spec.toml"], "spec file not found"),
    (["run", "no-such-experiment"], "unknown experiment"),
    (["run", "bad-minima", "--seeds", "a,b"], "--seeds"),
    (["run", "bad-minima", "--preset", "huge"], "unknown preset"),
    (["run", "bad-minima", "--epochs", "ten"], "invalid int"),
    (["run", "bad-minima", "--width", "0"], "width"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv,message", BAD)
def test_bad_input(argv, message, store_dir, capsys):
    before = _snapshot(store_dir)
    assert main([*argv, "--out", str(store_dir)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("badminima: error:") and message in err[0]
    assert _snapshot(store_dir) == before


def test_malformed_data_dir_and_spec_file(tmp_path, store_dir, capsys):
    (tmp_path / "cifar-10-batches-bin").mkdir()
    bad_spec = tmp_path / "bad.toml"
    bad_spec.write_bytes(b"[recipe\nepochs = 3\n\xff")
    before = _snapshot(store_dir)
    for argv in (["--dataset", "cifar10", "--data-dir", str(tmp_path)], ["--config", str(bad_spec)]):
        assert main(["run", "bad-minima", "--out", str(store_dir), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("badminima: error:")
    assert _snapshot(store_dir) == before


def test_exit_status_through_the_command(cli, tmp_path):
    result = cli("run", "bad-minima", "-R", "0", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["badminima: error: replication factor R must be at least 1, got 0"]
    assert not (tmp_path / "o").exists()


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("gaussians2d", "mnist1d", "digits", "cifar10", "cifar100", "cinic10", "restricted-imagenet",
                 "mlp", "cnn1d", "cnn2d", "vgg16", "resnet18", "resnet50", "densenet40", "default", "adversarial",
                 "vanilla", "sota", "DA+l2+momentum" if False else "l2+momentum", "bad-minima", "paper"):
        assert name in out
