"""`badminima measure` end to end: a tiny stored run, measures recorded in the store and printed."""
import contextlib
import io
import json
import math

import pytest

from badminima.cli import main
from badminima.runs import final_path
from badminima.store import Store, load_checkpoint


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("measure") / "out"
    argv = ["run", "bad-minima", "--train-size", "200", "--width", "32", "--epochs", "3", "--pretrain-epochs", "2",
            "-R", "1", "--seeds", "0", "--workers", "1", "--out", str(out), "--quiet", "--json"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    records = json.loads(buffer.getvalue())["records"]
    adversarial = [r for r in records if r["init"] == "adversarial" and r["recipe"] == "vanilla"][0]
    return out, adversarial["run_id"]


def _frobenius_from_checkpoint(out, run_id):
    store = Store(out)
    try:
        tensors, _ = load_checkpoint(final_path(store, run_id))
    finally:
        store.close()
    return math.sqrt(sum(float((t.double() ** 2).sum()) for name, t in tensors.items()
                         if not name.endswith(("mean", "std", "running_var", "running_mean", "num_batches_tracked"))))


def test_measure_records_and_prints(stored_run, capsys):
    out, run_id = stored_run
    assert main(["measure", run_id, "--out", str(out), "--measure", "frobenius", "l2_path_norm", "--measure",
                 "margins", "hessian", "--quiet"]) == 0
    printed = capsys.readouterr().out
    store = Store(out)
    values = store.measures(run_id)
    store.close()
    values = {name.split(".v")[0]: value for name, value in values.items()}  # stored as name.vN once a convention changed
    assert set(values) == {"frobenius", "l2_path_norm", "margins", "hessian"}
    assert values["frobenius"] == pytest.approx(_frobenius_from_checkpoint(out, run_id), rel=1e-9)
    assert values["l2_path_norm"] > 0 and 0 <= values["margins"]["test"]["fraction_negative"] <= 1
    assert values["hessian"]["max_lanczos"] == pytest.approx(values["hessian"]["max_power"], rel=1e-2)
    assert run_id in printed and repr(values['frobenius']) in printed  # in full
    for name in values:
        assert name in printed

    # a second call reads the stored values back; a prefix of the id names the run
    assert main(["measure", run_id[:6], "--out", str(out), "--measure", "frobenius", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run_id"] == run_id and report["measures"] == {"frobenius": values["frobenius"]}


@pytest.mark.parametrize("argv,message", [
    (["--measure", "sharpness-of-vibes"], "unknown measure"),
    (["--measure", "decision_boundary"], "does not apply"),
])
def test_bad_measure_names(stored_run, argv, message, capsys):
    out, run_id = stored_run
    store = Store(out)
    before = store.measures(run_id)
    assert main(["measure", run_id, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("badminima: error:") and message in err[0]
    assert store.measures(run_id) == before
    store.close()


def test_missing_run_or_directory(stored_run, tmp_path, capsys):
    out, _ = stored_run
    assert main(["measure", "ffffffffffff", "--out", str(out)]) == 2
    assert "no run" in capsys.readouterr().err
    assert main(["measure", "abc", "--out", str(tmp_path / "nothing")]) == 2
    assert "no results database" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
