"""Malformed specs, flags, output directories and stores (over 120 in all): each gives exactly one stderr
line `badminima: error: ...`, exit status 2, and leaves the store byte-identical (table-driven)."""
import contextlib
import hashlib
import io
import os
import pickle
import shutil
import socket
import time

import pytest

from badminima.cli import main
from badminima.store import Store
from conftest import make_readonly, make_writable

pytestmark = pytest.mark.filterwarnings("error")  # a Python warning would be a second stderr line of the command

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
    # issue 13, item 3: non-finite values, sizes beyond any memory, models that do not take the data, addresses
    ["--lr", "inf"], ["--lr", "nan"], ["--lr=-inf"], ["-N", "nan"], ["-N", "inf"], ["--random-label-fraction", "nan"],
    ["--width", "1000000000000"], ["--width", "10000000"], ["-R", "1000000000000"], ["-R", "100000000"],
    ["--seeds", "0-99999999"], ["--seeds", "0-1000"], ["--seeds", "99999999999999999999"], ["--seeds", "5-3"],
    ["--depth", "1001"], ["--depth", "1000000000"], ["--workers", "100000"], ["--threads", "1000000"],
    ["--train-size", "1000000000000"], ["--epochs", "1e3"], ["--batch-size", "abc"],
    ["--model", "resnet18"], ["--model", "resnet50"], ["--model", "vgg16"], ["--model", "densenet40"],
    ["--model", "cnn2d"], ["--model", "wrn"], ["--dataset", "gaussians2d", "--model", "cnn1d"],
    ["--dataset", "gaussians2d", "--model", "cnn2d"], ["--dataset", "gaussians2d", "--model", "wrn"],
    ["--dataset", "digits", "--model", "vgg16"], ["--dataset", "digits", "--model", "cnn1d"],
    ["--executor", "ray", "--address", "nohost"], ["--executor", "ray", "--address", "host:"],
    ["--executor", "ray", "--address", ":6379"], ["--executor", "ray", "--address", "127.0.0.1:99999"],
    ["--executor", "ray", "--address", "127.0.0.1:0"], ["--executor", "ray", "--address", "127.0.0.1:port"],
    ["--executor", "ray", "--address", "a b:1"], ["--address", "127.0.0.1:6379"],
]
TOML = [
    "[model]\nwidht = 3\n", "[recipe]\nepochs = \"ten\"\n", "seed = 1.5\n", "seed = -1\n", "[recipe]\nlr_milestones = [1.5]\n",
    "model = 3\n", "[recipe\n", "[init]\nreplication_factor = 0\n", "[init]\nzeroed_percent = 200\n",
    "[init]\nzero_mode = 5\n", "[init.pretrain]\npatience = 0\n", "[recipe]\naugment = \"yes\"\n",
    "[data]\nname = \"nope\"\n", "[data]\ntrain_size = -2\n", "[recipe]\nbatch_size = 0\n", "unknown = 1\n",
    "[init]\nname = \"lottery\"\n", "\xff\xfe garbage",
    # issue 13, item 3: every value finite and in its range
    "[recipe]\nmomentum = -0.5\n", "[recipe]\nmomentum = 1.0\n", "[recipe]\nmomentum = nan\n", "[recipe]\nmomentum = inf\n",
    "[recipe]\nweight_decay = -1\n", "[recipe]\nweight_decay = nan\n", "[recipe]\nweight_decay = inf\n",
    "[recipe]\nlr = inf\n", "[recipe]\nlr = nan\n", "[recipe]\nlr = -inf\n", "[recipe]\nlr_gamma = nan\n",
    "[recipe]\nlr_gamma = 0\n", "[recipe]\nlr_gamma = -0.1\n", "[recipe]\nlr_gamma = inf\n",
    "[recipe]\nadversarial_eps = nan\n", "[recipe]\nadversarial_eps = inf\n", "[recipe]\nadversarial_step_size = nan\n",
    "[recipe]\nnorm_bias = inf\n", "[recipe]\nnorm_bias_mu = nan\n", "[recipe]\nrank_threshold = inf\n",
    "[recipe]\nstop_at_train_loss = inf\n", "[recipe]\nstop_at_train_loss = nan\n",
    "[recipe]\nlr_milestones = [250, 150]\n", "[recipe]\nlr_milestones = [-1]\n", "[recipe]\nlr_milestones = [5, 5]\n",
    "[init]\nname = \"normal\"\ninit_std = inf\n", "[init]\nname = \"normal\"\ninit_std = nan\n",
    "[init]\nname = \"normal\"\n", "[init]\nbias_shift = nan\n", "[init]\nbias_shift = -inf\n",
    "[init]\nbias_uniform = inf\n", "[init]\nlinear_l2 = nan\n", "[init]\nzeroed_percent = nan\n",
    "[init]\nrandom_label_fraction = nan\n", "[init.pretrain]\nmomentum = 1.5\n", "[init.pretrain]\nweight_decay = -inf\n",
    "[init.pretrain]\nlr = nan\n", "[init.pretrain]\nlr_gamma = nan\n", "[model]\ndepth = 5000\n",
    "[model]\nwidth = 1000000000000000\n", "[init]\nreplication_factor = 1000000000000\n",
    "[data]\ntrain_size = 1000000000000\n", "[model]\nname = \"resnet18\"\n", "seed = 9223372036854775807\n[model]\nname = 3\n",
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


def test_there_are_at_least_120_cases():
    assert len(FLAGS) + len(TOML) + len(STORES) + 2 >= 120


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


def test_ray_address_where_nothing_listens_fails_at_once(store_dir, capsys):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    _check(["run", "bad-minima", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(store_dir)],
           store_dir, capsys)
    assert time.monotonic() - started < 10  # not Ray's minutes of retries


# ---- output directories and stores (issue 13, item 4): each case damages a copy of a trained store ----

TINY = ["--dataset", "gaussians2d", "--epochs", "1", "--pretrain-epochs", "1", "-R", "1", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "bad-minima", *TINY, "--out", str(out)]) == 0
    return out


def _phases(out):
    """(random-init phase, final phase) of the random-init vanilla run, from the runs table."""
    store = Store(out)
    try:
        phases = [store.run(r[0])["phases"] for r in store.conn.execute("SELECT id FROM runs ORDER BY id")]
    finally:
        store.close()
    two = [p for p in phases if len(p) == 2][0]
    return two[0], two[-1]


def _run(out):
    return ["run", "bad-minima", *TINY, "--out", str(out)]


def _measure(out, *names):
    run = _phases(out)[1]
    return ["measure", run, "--out", str(out), "--quiet", *(["--measure", *names] if names else [])]


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _truncate(path, size):
    data = path.read_bytes()
    path.write_bytes(data[:size if size >= 0 else len(data) // 2])


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def _final(out, which=1):
    return out / "phases" / _phases(out)[which] / "final.safetensors"


def _db(out):
    return out / "results.sqlite"


def _dir_instead(path):
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


def _readonly(folder):
    """Make `folder` unwritable; skip where that cannot be done."""
    if not make_readonly(folder):
        pytest.skip("cannot make a directory read-only here")


def _page_garbage(out):
    data = bytearray(_db(out).read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:2 * page] = os.urandom(page)  # the second page (the first table's root), the header intact
    _db(out).write_bytes(bytes(data))


# name -> damage(out) -> argv; the tree of `out`'s parent must be byte-identical after the command
STORES = {
    "out is a file": lambda o: (_write(o.parent / "file", b"x"), _run(o.parent / "file"))[1],
    "out under a file": lambda o: (_write(o.parent / "file", b"x"), _run(o.parent / "file" / "sub"))[1],
    "out two levels under a file": lambda o: (_write(o.parent / "file", b"x"), _run(o.parent / "file" / "a" / "b"))[1],
    "out is a broken link": lambda o: (os.symlink(o.parent / "nowhere", o.parent / "link"), _run(o.parent / "link"))[1],
    "phases is a file": lambda o: (shutil.rmtree(o / "phases"), _write(o / "phases", b"x"), _run(o))[2],
    "journal is a file": lambda o: (shutil.rmtree(o / "journal"), _write(o / "journal", b"x"), _run(o))[2],
    "database is garbage": lambda o: (_write(_db(o), os.urandom(8192)), _run(o))[1],
    "database is text": lambda o: (_write(_db(o), b"hello, world\n" * 100), _run(o))[1],
    "database cut in half": lambda o: (_truncate(_db(o), -1), _run(o))[1],
    "database cut to 100 bytes": lambda o: (_truncate(_db(o), 100), _run(o))[1],
    "database cut to 50 bytes": lambda o: (_truncate(_db(o), 50), _run(o))[1],
    "database cut by one byte": lambda o: (_truncate(_db(o), len(_db(o).read_bytes()) - 1), _run(o))[1],
    "database empty beside phases": lambda o: (_truncate(_db(o), 0), _run(o))[1],
    "database is a directory": lambda o: (_dir_instead(_db(o)), _run(o))[1],
    "database page overwritten": lambda o: (_page_garbage(o), _run(o))[1],
    "final checkpoint is a directory (run)": lambda o: (_dir_instead(_final(o)), _run(o))[1],
    "out is read-only": lambda o: (_readonly(o), _run(o))[1],
    "out under a read-only directory": lambda o: (_readonly(o), _run(o / "sub"))[1],
    "measure: final checkpoint missing": lambda o: (argv := _measure(o), _final(o).unlink(), argv)[2],
    "measure: final checkpoint cut short": lambda o: (argv := _measure(o), _truncate(_final(o), -1), argv)[2],
    "measure: final checkpoint bit flip": lambda o: (argv := _measure(o), _flip(_final(o), -9), argv)[2],
    "measure: final checkpoint garbage": lambda o: (argv := _measure(o), _write(_final(o), os.urandom(999)), argv)[2],
    "measure: final checkpoint empty": lambda o: (argv := _measure(o), _write(_final(o), b""), argv)[2],
    "measure: final checkpoint is a directory": lambda o: (argv := _measure(o), _dir_instead(_final(o)), argv)[2],
    "measure: final checkpoint of another phase": lambda o: (argv := _measure(o), shutil.copy(_final(o, 0), _final(o)), argv)[2],
    "measure: random-init checkpoint missing": lambda o: (argv := _measure(o, "distance_from_init"), _final(o, 0).unlink(), argv)[2],
    "measure: database garbage": lambda o: (argv := _measure(o), _write(_db(o), os.urandom(4096)), argv)[2],
    "measure: database cut in half": lambda o: (argv := _measure(o), _truncate(_db(o), -1), argv)[2],
    "measure: database empty beside phases": lambda o: (argv := _measure(o), _truncate(_db(o), 0), argv)[2],
    "measure: unknown run": lambda o: ["measure", "ffffffffffff", "--out", str(o)],
    "measure: out is read-only": lambda o: (argv := _measure(o), _readonly(o), argv)[2],
    "report: database garbage": lambda o: (_write(_db(o), os.urandom(4096)), ["report", str(o)])[1],
    "report: database cut in half": lambda o: (_truncate(_db(o), -1), ["report", str(o)])[1],
    "report: out is a file": lambda o: (_write(o.parent / "file", b"x"), ["report", str(o.parent / "file")])[1],
}


@pytest.mark.parametrize("case", list(STORES))
def test_damaged_stores_and_directories(case, trained, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    try:
        argv = STORES[case](out)
        before = _snapshot(tmp_path)
        assert main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("badminima: error: "), err
        assert _snapshot(tmp_path) == before
    finally:
        if out.is_dir():
            make_writable(out)
