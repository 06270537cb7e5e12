"""The main job on built-in data shows paper 000's direction (section 3, Table 1, Table 2)."""
import json
import subprocess
import sys


def test_main_job_shows_the_papers_direction(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "badminima", "run", "bad-minima", "--out", str(out), "--json",
                             "--quiet"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    records = {(r["init"], r["recipe"]): r for r in json.loads(result.stdout)["records"]}
    assert set(records) == {(i, r) for i in ("random", "adversarial") for r in ("vanilla", "sota")}
    for r in records.values():
        assert set(r) >= {"init", "recipe", "seed", "train_acc", "test_acc", "epochs", "distance_travelled"}
    for key in (("random", "vanilla"), ("adversarial", "vanilla")):  # global minima: 100% un-augmented train accuracy
        assert records[key]["train_acc"] == 100.0, records[key]
    for key in (("random", "sota"), ("adversarial", "sota")):  # SOTA may end at the cap a few examples short
        assert records[key]["train_acc"] >= 99.9, records[key]
    rv, av, asota = records["random", "vanilla"], records["adversarial", "vanilla"], records["adversarial", "sota"]
    assert av["test_acc"] <= rv["test_acc"] - 3.0  # a bad global minimum: same train fit, worse test
    assert asota["test_acc"] >= av["test_acc"] + 2.0  # SOTA SGD escapes it
    assert av["distance_travelled"] < 0.5 * rv["distance_travelled"]  # vanilla stays near the bad init
    report, = (out / "report" / "bad-minima").iterdir()  # the one experiment set's folder
    assert "adversarial" in (report / "bad-minima.md").read_text()
    assert (report / "bad-minima-test-acc.png").stat().st_size > 1000
