"""Experiment sets: records kept per (experiment, base spec + preset + seeds), each labelled and with its
provenance; accuracies in percent in everything a user reads (checked against a forward pass here)."""
import csv
import json
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

import badminima
from badminima.cli import build_parser, main
from badminima.launch import resolve_base
from badminima.experiments import get_experiment
from badminima.report.html import build_report
from badminima.runs import Workspace, load_final, plan
from badminima.store import Store

TINY = ["--train-size", "300", "--epochs", "4", "--pretrain-epochs", "3", "-R", "1", "--seeds", "0", "--workers", "1", "--quiet"]
PROVENANCE = {"badminima_version", "git_commit", "torch_version", "device", "command", "date"}


def test_store_keeps_one_record_per_set_and_replaces_only_a_rerun(tmp_path):
    store = Store(tmp_path)
    store.record_experiment("bad-minima", "a" * 12, {"width": 32}, "s", [{"test_acc": 50.0}], {"date": "x"})
    store.record_experiment("bad-minima", "b" * 12, {"width": 16}, "s", [{"test_acc": 40.0}])
    store.record_experiment("bad-minima", "a" * 12, {"width": 32}, "s", [{"test_acc": 51.0}])  # the same set again
    sets = {e["set_id"]: e for e in store.experiments()}
    assert set(sets) == {"a" * 12, "b" * 12}
    assert sets["a" * 12]["records"] == [{"test_acc": 51.0}] and sets["b" * 12]["label"] == {"width": 16}
    assert sets["a" * 12]["provenance"] is None and sets["b" * 12]["provenance"] is None
    store.close()


def test_a_store_written_before_sets_keeps_its_records(tmp_path):
    conn = sqlite3.connect(tmp_path / "results.sqlite")
    conn.execute("CREATE TABLE experiments (name TEXT PRIMARY KEY, scale TEXT NOT NULL, records TEXT NOT NULL, updated REAL)")
    conn.execute("INSERT INTO experiments VALUES ('distances', 'mnist1d / mlp', '[{\"seed\": 0}]', 1.0)")
    conn.commit()
    conn.close()
    store = Store(tmp_path)
    entry, = store.experiments()
    assert (entry["name"], entry["set_id"], entry["records"]) == ("distances", "earlier", [{"seed": 0}])
    store.close()
    page = build_report(tmp_path).read_text()
    assert "recorded before experiment sets were kept" in page and "Provenance: not recorded" in page
    store = Store(tmp_path)
    store.record_experiment("distances", "c" * 12, {"width": 8}, "s", [])
    assert len(store.experiments()) == 2
    store.close()


def _run_json(capsys, *argv):
    assert main(["run", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _check_provenance(prov, command_tail, device):
    assert set(prov) == PROVENANCE
    assert prov["badminima_version"] == badminima.__version__ and prov["torch_version"] == torch.__version__
    assert prov["device"] == device and prov["command"].startswith("badminima ") and prov["command"].endswith(command_tail)
    root = Path(badminima.__file__).resolve().parent.parent
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert prov["git_commit"].split("+")[0] == head
    else:
        assert prov["git_commit"] is None
    assert abs(datetime.now(timezone.utc) - datetime.fromisoformat(prov["date"])) < timedelta(minutes=10)


def test_sets_with_other_widths_are_kept_labelled_and_shown(tmp_path, capsys):
    out = str(tmp_path / "out")
    first = _run_json(capsys, "distances", *TINY, "--width", "32", "--out", out, "--json")
    second = _run_json(capsys, "distances", *TINY, "--width", "16", "--seeds", "0,1", "--out", out, "--json")
    again = _run_json(capsys, "distances", *TINY, "--width", "32", "--out", out, "--json")
    assert first["set_id"] != second["set_id"] and again["set_id"] == first["set_id"]
    assert again["records"] == first["records"]
    assert (first["label"]["width"], second["label"]["width"], second["label"]["seeds"]) == (32, 16, [0, 1])
    assert first["label"]["dataset"] == "mnist1d" and first["label"]["model"] == "mlp" and first["label"]["preset"] == "cpu"
    _check_provenance(first["provenance"], "--width 32 --out " + out + " --json", "cpu")
    store = Store(out)
    assert sorted(e["set_id"] for e in store.experiments()) == sorted([first["set_id"], second["set_id"]])
    store.close()

    assert main(["report", out]) == 0
    page = Path(capsys.readouterr().out.strip()).read_text()
    for entry, seeds in ((again, "1 seed (0)"), (second, "2 seeds (0, 1)")):  # again replaced first
        section = page.split(f'id="distances-{entry["set_id"]}"')[1].split("</section>")[0]
        width = entry["label"]["width"]
        assert f"mnist1d (300 training examples) / mlp, width {width}, depth default; preset cpu; {seeds}" in section
        assert entry["provenance"]["date"] in section and entry["provenance"]["torch_version"] in section
        folder = tmp_path / "out" / "report" / "distances" / entry["set_id"]
        assert (folder / "distances.md").is_file() and (folder / "distances.csv").is_file()
    assert "This page was built by" in page and f"badminima report {out}" in page


def test_accuracies_are_percent_in_json_csv_terminal_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["bad-minima", *TINY, "--width", "32", "--out", str(out)]
    entry = _run_json(capsys, *argv, "--json")
    record = next(r for r in entry["records"] if (r["init"], r["recipe"]) == ("adversarial", "vanilla"))

    # independent: the final model's test accuracy by a forward pass and an argmax count, in percent
    base = resolve_base(build_parser().parse_args(["run", *argv]))
    spec = next(s for s in get_experiment("bad-minima").cells(base, [0]) if s.init.name == "adversarial"
                and s.recipe.momentum == 0)
    store = Store(out)
    ws = Workspace(store, quiet=True)
    data = ws.dataset(spec)
    model = load_final(store, plan(spec)[-1].id, ws.skeleton(spec)).eval()
    with torch.no_grad():
        correct = int((model(data.x_test).argmax(1) == data.y_test).sum())
    percent = 100 * correct / len(data.y_test)
    assert record["test_acc"] == pytest.approx(percent, abs=1e-3) and 5 < percent <= 100
    fraction, = store.conn.execute("SELECT test_acc FROM phases WHERE id=?", (plan(spec)[-1].id,)).fetchone()
    assert fraction == pytest.approx(percent / 100)  # the store keeps the fraction
    store.close()

    folder = out / "report" / "bad-minima" / entry["set_id"]
    with (folder / "bad-minima.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["run_id"] == record["run_id"])
    assert float(row["test_acc"]) == pytest.approx(percent, abs=1e-3)
    assert f"{record['test_acc']:.3f}" in (folder / "bad-minima.md").read_text()

    assert main(["run", *argv]) == 0  # the terminal table
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("adversarial  vanilla"))
    assert f"{record['test_acc']:.3f}" in line.split()

    assert main(["measure", record["run_id"], "--out", str(out), "--measure", "fgsm", "--json", "--quiet"]) == 0
    fgsm = json.loads(capsys.readouterr().out)
    values = fgsm["measures"]["fgsm"]
    assert values["clean_accuracy_percent"] == pytest.approx(percent, abs=1e-3)  # all 1000 test examples
    store = Store(out)
    from badminima.measures.registry import MEASURES
    stored = store.measures(plan(spec)[-1].id)[MEASURES["fgsm"].key]  # fractions inside the store (versioned name)
    store.close()
    assert values["accuracy_percent"] == pytest.approx([100 * a for a in stored["accuracy"]])
    assert all(0 <= a <= 1 for a in stored["accuracy"]) and stored["clean_accuracy"] == pytest.approx(percent / 100)
    assert "accuracy" not in values and set(fgsm["provenance"]) == PROVENANCE


def test_provenance_outside_a_checkout_has_no_commit(tmp_path):
    from badminima.provenance import git_commit, provenance

    assert git_commit(tmp_path) is None
    prov = provenance("cpu", ["report", "x y"])
    assert set(prov) == PROVENANCE and prov["command"] == "badminima report 'x y'"
