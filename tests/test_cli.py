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


# ---- CLI conventions (issue 14, item 6) ---------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

from badminima.cli import build_parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_pyproject_version(cli):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"badminima {version}"


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if action.choices and isinstance(action.choices, dict):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_flag_has_help():
    missing = [f"{p.prog}: {a.dest}" for p in _parsers(build_parser()) for a in p._actions
               if not a.help and a.dest != "command"]
    assert not missing


def test_help_lists_experiments_and_measures(cli):
    from badminima.experiments import list_experiments
    from badminima.measures.registry import MEASURES

    run_help = cli("run", "--help")
    measure_help = cli("measure", "--help")
    assert run_help.returncode == 0 and measure_help.returncode == 0
    assert len(list_experiments()) >= 17 and all(f"  {name} " in run_help.stdout for name in list_experiments())
    assert all(f" {name} " in measure_help.stdout for name in MEASURES)


def test_set_reaches_the_spec_and_gives_the_toml_route_ids(tmp_path, capsys):
    out = tmp_path / "out"
    fields = {"recipe.momentum": "0.5", "recipe.epochs": "2", "recipe.lr_milestones": "[1]", "model.width": "16",
              "init.pretrain.epochs": "1", "data.name": "gaussians2d"}  # a bare word is a string
    sets = [a for k, v in fields.items() for a in ("--set", f"{k}={v}")]
    assert main(["run", "bad-minima", *sets, "--seeds", "0", "--workers", "1", "--quiet", "--json", "--out", str(out)]) == 0
    by_set = json.loads(capsys.readouterr().out)["records"]
    phases = sorted((out / "phases").iterdir())
    toml = tmp_path / "spec.toml"
    toml.write_text("[data]\nname = 'gaussians2d'\n[model]\nwidth = 16\n[recipe]\nmomentum = 0.5\nepochs = 2\n"
                    "lr_milestones = [1]\n[init.pretrain]\nepochs = 1\n")
    assert main(["run", "bad-minima", "--config", str(toml), "--seeds", "0", "--workers", "1", "--quiet", "--json",
                 "--out", str(out)]) == 0
    by_toml = json.loads(capsys.readouterr().out)["records"]
    assert [r["run_id"] for r in by_set] == [r["run_id"] for r in by_toml] and len(by_set) == 4
    assert sorted((out / "phases").iterdir()) == phases  # the TOML route found every run already done
    specs = [json.loads((p / "spec.json").read_text()) for p in phases]
    trained = [s for s in specs if s["phase"] == "train"]
    assert {s["recipe"]["momentum"] for s in trained} == {0.0, 0.5}  # vanilla switches momentum off, SOTA keeps ours
    assert all(s["model"]["width"] == 16 and s["recipe"]["lr_milestones"] == [1] and s["data"]["name"] == "gaussians2d"
               for s in specs)


def test_set_values_are_toml_and_none_clears_only_optional_fields():
    from badminima.launch import parse_set, set_overrides

    pairs = [parse_set(text) for text in ("init.pretrain.patience=none", "recipe.rank_mode=none", "seed=3",
                                          "recipe.lr=1e-3", "recipe.augment=true", 'data.options.tag="a b"')]
    assert set_overrides(pairs) == {"init": {"pretrain": {"patience": None}},
                                    "recipe": {"rank_mode": "none", "lr": 0.001, "augment": True}, "seed": 3,
                                    "data": {"options": {"tag": "a b"}}}


BAD_SET = [
    (["--set", "recipe.momentm=0.5"], "unknown field spec.recipe.momentm"),
    (["--set", "recipe.epochs=ten"], "spec.recipe.epochs must be an integer"),
    (["--set", "momentum"], "--set: cannot read 'momentum'"),
    (["--set", "recipe..lr=1"], "--set: cannot read"),
    (["--set", "recipe.lr.x=1"], "spec.recipe.lr"),
]


@pytest.mark.parametrize("argv,message", BAD_SET)
def test_bad_set(argv, message, store_dir, capsys):
    before = _snapshot(store_dir)
    assert main(["run", "bad-minima", *argv, "--out", str(store_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("badminima: error:") and message in err[0], err
    assert _snapshot(store_dir) == before


def test_list_of_models_and_datasets_imports_no_torch():
    code = ("import sys; from badminima.cli import main; main(['list', 'models']); main(['list', 'datasets']); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_measure_prints_full_values_and_the_report_shows_them(tmp_path, capsys):
    out = tmp_path / "out"
    tiny = ["--set", "recipe.epochs=2", "--set", "init.pretrain.epochs=1", "--dataset", "gaussians2d"]
    assert main(["run", "bad-minima", *tiny, "--seeds", "0", "--workers", "1", "--quiet", "--json", "--out", str(out)]) == 0
    run_id = json.loads(capsys.readouterr().out)["records"][0]["run_id"]
    assert main(["measure", run_id, "--out", str(out), "--measure", "margins", "spectral", "--quiet", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)["measures"]
    assert main(["measure", run_id, "--out", str(out), "--measure", "margins", "spectral", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for split in ("train", "test"):  # every number of the nested value, at full precision
        for key, value in values["margins"][split].items():
            assert f"{key}: {value!r}" in printed
    for layer, norms in values["spectral"]["layers"].items():
        for method, value in norms.items():  # every method's norm of the layer, in full
            assert f"{layer}:" in printed and f"{method}: {value!r}" in printed
    from badminima.report.html import build_report
    page = build_report(out).read_text()
    assert "Measures of stored runs" in page and run_id in page and repr(values["margins"]["test"]["mean"]) in page
