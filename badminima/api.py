"""The public API: run an experiment, load what an output directory holds, load a trained model.

    import badminima

    records = badminima.run("bad-minima", out="out", seeds=[0, 1], data={"name": "digits"},
                            model={"name": "cnn2d"}, recipe={"epochs": 20})
    results = badminima.load("out")          # pandas DataFrames
    results.runs[["run_id", "status", "test_acc", "recipe.lr"]]
    model = badminima.load_model("out", results.runs.run_id[0])

`run` goes through the same code as `badminima run` (cli.run_records); `load` reads the results
database of an output directory (read-only); `load_model` rebuilds a run's final network from its
checkpoint. Units: every accuracy in these tables is in percent (the store keeps fractions, except in
experiment records, which keep the units of the experiment's own table).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput

SECTIONS = ("data", "model", "init", "recipe", "seed")


def run(experiment: str, out: str | Path = "badminima-out", seeds: list[int] | None = None, *,
        preset: str = "cpu", config: str | Path | None = None, data_dir: str | Path | None = None,
        device: str = "auto", workers: int = 1, threads: int = 1, executor: str = "inprocess",
        address: str | None = None, quiet: bool = False, **overrides: Any) -> list[dict]:
    """Run `experiment` into `out`, as `badminima run` does, and return its summary records.

    `overrides` set spec fields after the preset and the `config` TOML file, one keyword per section:
    `data={"name": "digits", "train_size": 500}`, `model={"name": "mypkg.nets:tinynet", "options": {...}}`,
    `init={"pretrain": {"epochs": 20}}`, `recipe={"momentum": 0.5}`, `seed=3` (the same as
    `--set recipe.momentum=0.5` on the command line). Raises badminima.errors.BadInput on bad input,
    before anything is written.
    """
    from .cli import build_parser
    from .launch import run_records

    unknown = sorted(set(overrides) - set(SECTIONS))
    if unknown:
        raise BadInput(f"unknown keyword {unknown[0]!r} (spec sections: {', '.join(SECTIONS)}; "
                       f"run options: preset, config, data_dir, device, workers, threads, executor, address, quiet)")
    argv = ["run", experiment, "--out", str(out), "--preset", preset, "--device", device, "--workers", str(workers),
            "--threads", str(threads), "--executor", executor]
    argv += ["--config", str(config)] if config is not None else []
    argv += ["--data-dir", str(data_dir)] if data_dir is not None else []
    argv += ["--address", address] if address is not None else []
    argv += ["--seeds", ",".join(str(s) for s in seeds)] if seeds is not None else []
    argv += ["--quiet"] if quiet else []
    args = build_parser().parse_args(argv)
    args.set = _flatten(overrides)
    entry, _ = run_records(args)
    return entry["records"]


def _flatten(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """{"recipe": {"lr": 0.1}} -> [(("recipe", "lr"), 0.1)], the form of `--set` pairs."""
    pairs = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            pairs += _flatten(value, prefix + (key,))
        else:
            pairs.append((prefix + (key,), value))
    return pairs


# ---- reading an output directory ---------------------------------------------------------------

@dataclass
class Results:
    """What an output directory holds, as pandas DataFrames (one row per item):

    - `runs`: one row per run: `run_id`, `status`, the final phase's `phase_id`, `epochs`,
      `stop_reason`, `train_acc` and `test_acc` (percent), `distance_travelled` (a ratio), `seconds`,
      `phases` (the chain of phase ids, comma-separated), `recipe_name`, and every spec field as a
      column named by its path (`data.name`, `recipe.lr`, `init.pretrain.epochs`, `data.options.n`);
    - `phases`: one row per training phase (random init, pretraining, training): `phase_id`, `kind`,
      `parent`, `status`, `epochs`, `stop_reason`, `train_acc`, `test_acc` (percent),
      `distance_travelled`, `seconds`;
    - `epochs`: one row per phase and epoch: `phase_id`, `kind`, `epoch`, and the recorded metrics
      (`lr`, `train_loss`, `train_acc`, `test_loss`, `test_acc`, ...; every `*_acc` in percent);
    - `measures`: one row per number of a stored measure: `run_id`, `phase_id`, `measure`, `version` (of the
      measure's convention: values of an older convention are kept, never mixed with the current), `key` (the
      path inside the measure's value, e.g. `train.mean` or `accuracy.2`; empty for a scalar), `value`
      (a float; accuracies in percent), `text` (for values that are not numbers), `seconds`;
    - `experiments`: one row per summary record of each experiment run here: `experiment`, `scale`,
      then the record's fields (in the units of the experiment's table).
    """

    runs: Any
    phases: Any
    epochs: Any
    measures: Any
    experiments: Any

    TABLES = ("runs", "phases", "epochs", "measures", "experiments")


def _connect(out: str | Path) -> sqlite3.Connection:
    from .store.db import FILENAME

    path = Path(out) / FILENAME
    if not path.is_file():
        raise BadInput(f"no badminima results in {out} (no {FILENAME})")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
    conn.row_factory = sqlite3.Row
    return conn


def _rows(conn: sqlite3.Connection, query: str) -> list[sqlite3.Row]:
    try:
        return conn.execute(query).fetchall()
    except sqlite3.OperationalError as exc:  # a table an older store lacks
        if "no such table" in str(exc):
            return []
        raise


def _percent(value):
    return None if value is None else 100.0 * value


def _flat_columns(tree: dict, prefix: str = "") -> dict:
    """{"recipe": {"lr": 0.1}} -> {"recipe.lr": 0.1}; lists stay lists."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat_columns(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _leaves(value, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every number or text inside a measure's value, with its path (list items by index)."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, path + (str(k),))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, path + (str(i),))]
    return [(path, value)]


def _is_accuracy(path: tuple) -> bool:
    """Measures store accuracies as fractions under keys named `accuracy`, `*_accuracy` or `*_acc`."""
    return any(k == "accuracy" or k.endswith("_accuracy") or k.endswith("_acc") for k in path if not k.isdigit())


def load(out: str | Path) -> Results:
    """The runs, phases, per-epoch metrics, measures and experiment records stored in `out` (see Results)."""
    import pandas as pd

    from .spec import RunSpec, merge, recipe_name, to_dict
    from .store.db import measure_name_and_version

    conn = _connect(out)
    try:
        phase_rows = {r["id"]: dict(r) for r in _rows(conn, "SELECT * FROM phases")}
        run_rows = _rows(conn, "SELECT id, spec, phases FROM runs ORDER BY rowid")
        epoch_rows = _rows(conn, "SELECT phase_id, epoch, metrics FROM epochs ORDER BY phase_id, epoch")
        measure_rows = _rows(conn, "SELECT phase_id, name, value, seconds FROM measures ORDER BY phase_id, name")
        experiment_rows = _rows(conn, "SELECT name, scale, records FROM experiments ORDER BY name")
    finally:
        conn.close()

    phases = pd.DataFrame([
        {"phase_id": r["id"], "kind": r["kind"], "parent": r["parent"], "status": r["status"], "epochs": r["epochs"],
         "stop_reason": r["stop_reason"], "train_acc": _percent(r["train_acc"]), "test_acc": _percent(r["test_acc"]),
         "distance_travelled": r["distance_travelled"], "seconds": r["seconds"]} for r in phase_rows.values()],
        columns=["phase_id", "kind", "parent", "status", "epochs", "stop_reason", "train_acc", "test_acc",
                 "distance_travelled", "seconds"])

    runs, run_of_phase = [], {}
    for r in run_rows:
        chain = json.loads(r["phases"])
        spec = merge(RunSpec(), json.loads(r["spec"]))
        final = phase_rows.get(chain[-1], {})
        status = final.get("status") or "missing"
        if any(phase_rows.get(p, {}).get("status") == "diverged" for p in chain):
            status = "diverged"
        run_of_phase[chain[-1]] = r["id"]
        runs.append({"run_id": r["id"], "status": status, "phase_id": chain[-1], "epochs": final.get("epochs"),
                     "stop_reason": final.get("stop_reason"), "train_acc": _percent(final.get("train_acc")),
                     "test_acc": _percent(final.get("test_acc")), "distance_travelled": final.get("distance_travelled"),
                     "seconds": final.get("seconds"), "phases": ",".join(chain), "recipe_name": recipe_name(spec.recipe),
                     **_flat_columns(to_dict(spec))})
    runs = pd.DataFrame(runs)

    kinds = {pid: r["kind"] for pid, r in phase_rows.items()}
    epochs = []
    for r in epoch_rows:
        metrics = json.loads(r["metrics"])
        metrics = {k: _percent(v) if k.endswith("_acc") else v for k, v in metrics.items() if k != "epoch"}
        epochs.append({"phase_id": r["phase_id"], "kind": kinds.get(r["phase_id"]), "epoch": r["epoch"], **metrics})
    epochs = pd.DataFrame(epochs, columns=None if epochs else ["phase_id", "kind", "epoch"])

    measures = []
    for r in measure_rows:
        for path, leaf in _leaves(json.loads(r["value"])):
            number = isinstance(leaf, (int, float)) and leaf is not None
            value = float(leaf) if number else None
            if number and _is_accuracy((r["name"],) + path):
                value = 100.0 * value
            name, version = measure_name_and_version(r["name"])
            measures.append({"run_id": run_of_phase.get(r["phase_id"]), "phase_id": r["phase_id"], "measure": name,
                             "version": version, "key": ".".join(path), "value": value,
                             "text": None if number or leaf is None else str(leaf), "seconds": r["seconds"]})
    measures = pd.DataFrame(measures, columns=["run_id", "phase_id", "measure", "version", "key", "value", "text",
                                               "seconds"])

    experiments = pd.DataFrame([{"experiment": r["name"], "scale": r["scale"], **record}
                                for r in experiment_rows for record in json.loads(r["records"])])
    return Results(runs, phases, epochs, measures, experiments)


def run_lines(runs) -> str:
    """The `badminima runs` table: id, status, accuracies, and the spec fields that differ from the defaults."""
    from .report.tables import text_table
    from .spec import RunSpec, to_dict

    if runs.empty:
        return "no runs\n"
    defaults = _flat_columns(to_dict(RunSpec()))
    shown = ("data.name", "model.name", "init.name", "seed")
    spec_columns = [c for c in runs.columns if c.split(".")[0] in SECTIONS and c not in shown]
    rows = []
    for _, row in runs.iterrows():
        changed = [f"{c}={_short(row[c])}" for c in spec_columns if c not in defaults or _differs(row[c], defaults[c])]
        rows.append([row["run_id"], row["status"], row["data.name"], row["model.name"], row["init.name"],
                     row["recipe_name"], row["seed"], row["epochs"], row["train_acc"], row["test_acc"], " ".join(changed)])
    header = ["run id", "status", "data", "model", "init", "recipe", "seed", "epochs", "train acc %", "test acc %",
              "other spec fields (non-default)"]
    return text_table(header, rows)


def _differs(value, default) -> bool:
    import math
    if isinstance(value, float) and math.isnan(value):
        return default is not None
    if isinstance(value, (list, tuple)) or isinstance(default, (list, tuple)):
        return list(value) != list(default)
    return value != default


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def export(out: str | Path, fmt: str = "csv", to: str | Path | None = None) -> list[Path]:
    """Write the tables of load(out) as TABLE.csv or TABLE.parquet files into `to` (default out/export)."""
    if fmt not in ("csv", "parquet"):
        raise BadInput(f"unknown export format {fmt!r} (csv or parquet)")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BadInput("--format parquet needs pyarrow: pip install 'badminima[parquet]'") from None
    results = load(out)
    folder = Path(to) if to is not None else Path(out) / "export"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in Results.TABLES:
        frame = getattr(results, name)
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            _parquet_safe(frame).to_parquet(path, index=False)
        paths.append(path)
    return paths


def _parquet_safe(frame):
    """Parquet wants one type per column: columns mixing types (experiment records of different experiments,
    or lists beside numbers) are written as JSON text."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and v == v}
            if len(kinds) > 1 or kinds & {dict}:
                frame[column] = [None if v is None or v != v else json.dumps(v) for v in frame[column]]
    return frame


def load_model(out: str | Path, run_id: str, data_dir: str | Path | None = None, device: str = "cpu"):
    """The trained network (an nn.Module in eval mode) of the finished run `run_id` (or a unique prefix
    of one) in `out`: rebuilt from its spec (the dataset is loaded for its shape and classes, with
    `data_dir` as for `run`) and loaded from its final checkpoint."""
    from .measuring import open_target

    target = open_target(out, run_id, data_dir, device)
    try:
        return target.model
    finally:
        target.store.close()
