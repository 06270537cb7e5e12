"""Your own model and dataset: `package.module:function` references and entry-point plug-ins, from the
command line, in a 2-worker pool, and their contract checks.

The plug-in is tests/plugin_pkg/badminima_toyplugin, installed for each test as a distribution in a
temporary folder (the package and a dist-info with entry_points.txt) put on the Python path."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from badminima.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).parent / "plugin_pkg" / "badminima_toyplugin"
ENTRY_POINTS = """[badminima.datasets]
rings = badminima_toyplugin:rings

[badminima.models]
tinynet = badminima_toyplugin:tinynet
"""
TINY = ["--set", "recipe.epochs=2", "--set", "init.pretrain.epochs=1", "--set", "recipe.batch_size=32",
        "--set", "init.pretrain.batch_size=32", "--seeds", "0", "--quiet"]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder holding the installed plug-in, on this process's path (and its children's, by PYTHONPATH)."""
    folder = tmp_path / "site"
    shutil.copytree(PLUGIN, folder / PLUGIN.name)
    info = folder / "badminima_toyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badminima-toyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("badminima_toyplugin")]:
        del sys.modules[name]


def _cli(*args, site=None, log=None):
    path = [str(ROOT)] + ([str(site)] if site else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(path)}
    if log:
        env["TOYPLUGIN_LOG"] = str(log)
    proc = subprocess.Popen([sys.executable, "-m", "badminima", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate(timeout=600)
    return proc, out, err


def test_references_in_a_two_worker_pool(site, tmp_path):
    """`--dataset pkg.module:loader --model pkg.module:factory` with options from --set, trained by two
    spawned pool workers: every phase ran in a worker that imported the plug-in itself."""
    out, log = tmp_path / "out", tmp_path / "calls.log"
    proc, stdout, err = _cli("run", "bad-minima", "--dataset", "badminima_toyplugin:rings",
                             "--model", "badminima_toyplugin:tinynet", "--set", "data.options.n_per_class=20",
                             "--set", "model.options.activation=tanh", "--width", 8, "--workers", 2, *TINY,
                             "--out", out, "--json", site=site, log=log)
    assert proc.returncode == 0, err
    calls = [line.split() for line in log.read_text().splitlines()]
    worker_pids = {int(pid) for what, pid in calls if int(pid) != proc.pid}
    assert len(worker_pids) >= 1 and {what for what, pid in calls if int(pid) in worker_pids} == {"rings", "tinynet"}

    import badminima
    runs = badminima.load(out).runs
    assert len(runs) == 4 and set(runs.status) == {"done"}
    assert set(runs["data.name"]) == {"badminima_toyplugin:rings"} and set(runs["data.options.n_per_class"]) == {20}
    assert set(runs["model.options.activation"]) == {"tanh"}
    model = badminima.load_model(out, runs.run_id[0])
    net = model.net
    assert type(net).__name__ == "TinyNet" and isinstance(net.act, torch.nn.Tanh) and net.hidden.out_features == 8
    # the loader's keyword reached it: 3 rings x 20 points, so every accuracy is a multiple of 100/60 %
    for acc in runs.test_acc:
        assert abs(acc * 60 / 100 - round(acc * 60 / 100)) < 1e-9


def test_entry_points_by_name_and_in_list(site, tmp_path, capsys):
    assert main(["list", "datasets"]) == 0 and main(["list", "models"]) == 0
    listed = capsys.readouterr().out
    assert "plug-in from badminima-toyplugin: badminima_toyplugin:rings" in listed
    assert "plug-in from badminima-toyplugin: badminima_toyplugin:tinynet" in listed
    assert "badminima_toyplugin" not in sys.modules  # listed from metadata: the plug-in was not imported

    import badminima
    out = tmp_path / "out"
    assert main(["run", "bad-minima", "--dataset", "rings", "--model", "tinynet", "--width", "5", *TINY,
                 "--out", str(out)]) == 0
    runs = badminima.load(out).runs
    assert set(runs["data.name"]) == {"rings"} and set(runs.status) == {"done"}
    assert type(badminima.load_model(out, runs.run_id[0]).net).__name__ == "TinyNet"


BAD = [
    (["--model", "nosuchpackage.nets:net"], "cannot import 'nosuchpackage.nets'"),
    (["--dataset", "badminima_toyplugin:missing"], "has no attribute 'missing'"),
    (["--dataset", "badminima_toyplugin:rings", "--set", "data.options.colour=1"], "does not take"),
    (["--dataset", "badminima_toyplugin:bad_labels"], "labels outside [0, 3)"),
    (["--dataset", "badminima_toyplugin:rings", "--model", "badminima_toyplugin:not_a_module"], "not a torch.nn.Module"),
    (["--dataset", "badminima_toyplugin:rings", "--model", "badminima_toyplugin:tinynet", "--set",
      "model.options.width=3"], "set model.width, not model.options.width"),
    (["--set", "data.options=3"], "data.options must be a table"),
]


@pytest.mark.parametrize("argv,message", BAD)
def test_plugin_mistakes_are_one_line_errors(argv, message, site, tmp_path, capsys):
    assert main(["run", "bad-minima", *argv, *TINY, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("badminima: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_options_are_part_of_the_spec(site):
    """Loader keywords change the data (closed form: classes x n_per_class points) and the run id; a spec
    without options keeps the id it had before options existed (ids hash only non-default fields)."""
    from badminima.runs import Workspace, check
    from badminima.spec import DataSpec, Options, RunSpec, run_id

    base = RunSpec(DataSpec("badminima_toyplugin:rings"))
    more = RunSpec(DataSpec("badminima_toyplugin:rings", options=Options(n_per_class=7, classes=4)))
    ws = Workspace(store=None)
    assert len(ws.dataset(check(base)).y_train) == 3 * 40
    data = ws.dataset(check(more))
    assert len(data.y_train) == 4 * 7 and data.num_classes == 4 and torch.bincount(data.y_test).tolist() == [7] * 4
    assert run_id(base) != run_id(more) == run_id(RunSpec(DataSpec("badminima_toyplugin:rings",
                                                                   options=Options(classes=4, n_per_class=7))))
    assert run_id(RunSpec()) == "44136fa355b3"  # the default spec's id as of before this change
