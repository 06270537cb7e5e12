"""The results database: one SQLite file per output directory.

Tables: `phases` (one row per training phase, keyed by phase id: its spec, status, outcome),
`epochs` (per-epoch metrics of each phase), `runs` (a run id and its chain of phases) and
`measures` (values computed on a phase's final checkpoint), `experiments` (the summary records
of each experiment set run in this directory, which `badminima report` redraws) and `claims` (which
driver is running which phase).

Units: accuracies are stored as fractions in [0, 1] - the `train_acc`/`test_acc` columns of `phases`,
the `*_acc` entries of the per-epoch metrics and the accuracies inside measure values. Everything a user
reads (terminal, --json, CSV, the report) shows percent; the experiments' records are already in percent.

An experiment set is one experiment run on one (base spec, preset, seeds): records are kept per
(experiment, set id), so running an experiment again with another dataset, model or width adds a set
beside the first instead of replacing it. WAL journal, a busy timeout and `BEGIN IMMEDIATE` transactions,
so that a crash leaves the last committed state and two processes never interleave a write.

Only a driver writes here; workers read it and append their writes to journals (store/journal.py).
"""
from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .. import jsonsafe
from ..errors import BadInput

SCHEMA = """
CREATE TABLE IF NOT EXISTS phases (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, parent TEXT, spec TEXT NOT NULL,
    status TEXT NOT NULL, epochs INTEGER, stop_reason TEXT, distance_travelled REAL,
    train_acc REAL, test_acc REAL, seconds REAL, updated REAL);  -- train_acc, test_acc: fractions in [0, 1]
CREATE TABLE IF NOT EXISTS epochs (
    phase_id TEXT NOT NULL, epoch INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (phase_id, epoch));
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, spec TEXT NOT NULL, phases TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT NOT NULL, set_id TEXT NOT NULL, label TEXT NOT NULL, scale TEXT NOT NULL, records TEXT NOT NULL,
    provenance TEXT, updated REAL, PRIMARY KEY (name, set_id));
CREATE TABLE IF NOT EXISTS claims (phase_id TEXT PRIMARY KEY, owner TEXT NOT NULL, heartbeat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS measures (
    phase_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, seconds REAL,
    PRIMARY KEY (phase_id, name));
"""

FILENAME = "results.sqlite"
SQLITE_MAGIC = b"SQLite format 3\x00"
RECOVERY = "move it away (or restore a copy) and re-run: the finished phases in phases/ are rebuilt from their checkpoints"


def check_database_file(path: Path) -> None:
    """BadInput if `path` exists but cannot be a whole SQLite database: a directory, garbage, cut short (from
    its header's page size and page count), or empty beside finished phases. Reads 100 bytes, writes nothing."""
    if path.is_dir():
        raise BadInput(f"{path} is a directory, not a results database; {RECOVERY}")
    if not path.exists():
        return
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if size == 0:
        if finished_phase_folders(path.parent):
            raise BadInput(f"{path} is empty (0 bytes) though phases/ holds finished phases; {RECOVERY}")
        return  # a database that was never written: SQLite starts it afresh
    if not header.startswith(SQLITE_MAGIC[:len(header)]):
        raise BadInput(f"{path} is not a SQLite database; {RECOVERY}")
    if len(header) < 100:
        raise BadInput(f"{path} is cut short ({size} bytes, less than a header); {RECOVERY}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counted = header[24:28] == header[92:96]  # the page count is valid only when written by the last change
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:  # pages still in the write-ahead log (a checkpoint cut short): SQLite decides
        return
    if page_size < 512 or size % page_size or (counted and size < pages * page_size):
        raise BadInput(f"{path} is cut short ({size} bytes; its header promises {pages} pages of {page_size}); {RECOVERY}")


def finished_phase_folders(out_dir: Path) -> list[Path]:
    """The phase folders of `out_dir` that hold a final checkpoint."""
    return sorted(p.parent for p in (Path(out_dir) / "phases").glob("*/final.safetensors"))


def _set_aside_old_experiments(conn) -> bool:
    """A store written before sets existed keys `experiments` by name alone: rename that table so that the
    current one can be created (`_restore_old_experiments` then copies its rows over). True if it did."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(experiments)")}  # empty if there is no such table
    if columns and "set_id" not in columns:
        conn.execute("ALTER TABLE experiments RENAME TO experiments_by_name")
        return True
    return False


def _restore_old_experiments(conn) -> None:
    """Each old record becomes the set 'earlier' of its experiment, labelled as recorded before sets existed."""
    conn.execute("INSERT INTO experiments SELECT name, 'earlier', ?, scale, records, NULL, updated "
                 "FROM experiments_by_name",
                 (json.dumps({"note": "recorded before experiment sets were kept"}),))
    conn.execute("DROP TABLE experiments_by_name")


def measure_key(name: str, version: int) -> str:
    """The name a measure's values are stored under: its name for version 1, `name.vK` for version K (raised
    when the measure's convention changes, so that values stored under the old one are not read as new)."""
    return name if version == 1 else f"{name}.v{version}"


def measure_name_and_version(key: str) -> tuple[str, int]:
    """The inverse of measure_key: `fgsm.v2` -> ('fgsm', 2), `frobenius` -> ('frobenius', 1)."""
    match = re.fullmatch(r"(.+)\.v(\d+)", key)
    return (match.group(1), int(match.group(2))) if match else (key, 1)


class Store:
    def __init__(self, out_dir: str | Path, memory: bool = False):
        """The store of `out_dir`; with `memory`, an empty in-memory database with the same tables
        (a worker's private view, see store/journal.py), files still under `out_dir`.

        BadInput (one line) when the directory cannot be created or written, or the database is damaged;
        a database without phases beside finished phase folders is rebuilt from them (rebuild_from_folders)."""
        self.dir = Path(out_dir)
        path = self.dir / FILENAME
        if not memory:
            check_database_file(path)
        self.conn = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(":memory:" if memory else path, timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            if not memory:
                self.conn.execute("PRAGMA journal_mode=WAL")
                check = self.conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
            self.conn.execute("PRAGMA busy_timeout=60000")
            with self.transaction() as c:
                old = _set_aside_old_experiments(c)
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                if old:
                    _restore_old_experiments(c)
        except (OSError, sqlite3.Error) as exc:
            if self.conn is not None:
                self.conn.close()
            if isinstance(exc, OSError):
                raise BadInput(f"cannot write the output directory {self.dir}: {exc.strerror or exc}") from None
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, unable to open: the place, not the file
                raise BadInput(f"cannot open {path} for writing: {exc}") from None
            raise BadInput(f"{path} is damaged ({exc}); {RECOVERY}") from None
        if not memory and self.conn.execute("SELECT count(*) FROM phases").fetchone()[0] == 0:
            self.rebuild_from_folders()

    def rebuild_from_folders(self) -> tuple[int, int]:
        """Re-enter the finished phases that the folders under phases/ prove: a final checkpoint that passes
        its checksum, names its own phase and carries its outcome (meta "outcome": kind, parent, epochs,
        stop_reason, distance_travelled, train_acc, test_acc, seconds, history), beside its spec.json.
        Returns (rebuilt, not rebuilt); the latter are recomputed when a run needs them."""
        from .checkpoints import CorruptCheckpoint, load_checkpoint

        folders = finished_phase_folders(self.dir)
        rebuilt = 0
        for folder in folders:
            try:
                _, meta = load_checkpoint(folder / "final.safetensors")
                spec = json.loads((folder / "spec.json").read_text())
                outcome = meta["outcome"]
                if meta.get("phase") != folder.name:
                    continue
                with self.transaction() as c:
                    c.execute("INSERT OR REPLACE INTO phases VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                              (folder.name, outcome["kind"], outcome["parent"], json.dumps(spec, sort_keys=True), "done",
                               outcome["epochs"], outcome["stop_reason"], outcome["distance_travelled"],
                               outcome["train_acc"], outcome["test_acc"], outcome["seconds"], time.time()))
                    c.executemany("INSERT OR REPLACE INTO epochs VALUES (?,?,?)",
                                  [(folder.name, i + 1, json.dumps(m)) for i, m in enumerate(outcome["history"])])
                rebuilt += 1
            except (CorruptCheckpoint, OSError, ValueError, KeyError, TypeError):
                continue
        if folders:
            print(f"badminima: warning: {self.dir / FILENAME} held no phases: rebuilt {rebuilt} finished phases from "
                  f"{self.dir / 'phases'}" + (f"; {len(folders) - rebuilt} could not be and will be recomputed when needed"
                                              if rebuilt < len(folders) else ""), file=sys.stderr, flush=True)
        return rebuilt, len(folders) - rebuilt

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def phase_dir(self, phase_id: str) -> Path:
        return self.dir / "phases" / phase_id

    # ---- phases ----
    def phase(self, phase_id: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM phases WHERE id=?", (phase_id,)).fetchone()
        return dict(row) if row else None

    def start_phase(self, phase_id: str, kind: str, parent: str | None, spec: dict) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO phases (id, kind, parent, spec, status, updated) VALUES (?,?,?,?,?,?) "
                      "ON CONFLICT(id) DO UPDATE SET status='running', spec=excluded.spec, updated=excluded.updated",
                      (phase_id, kind, parent, json.dumps(spec, sort_keys=True), "running", time.time()))

    def reset_phase(self, phase_id: str) -> None:
        """Forget a phase's epochs and outcome (its checkpoint was lost or corrupt)."""
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE phase_id=?", (phase_id,))
            c.execute("DELETE FROM measures WHERE phase_id=?", (phase_id,))
            c.execute("UPDATE phases SET status='running', epochs=NULL, stop_reason=NULL WHERE id=?", (phase_id,))

    def record_epoch(self, phase_id: str, epoch: int, metrics: dict) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?)", (phase_id, epoch, jsonsafe.dumps(metrics)))

    def truncate_epochs(self, phase_id: str, last_kept: int) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE phase_id=? AND epoch>?", (phase_id, last_kept))

    def epochs(self, phase_id: str) -> list[dict]:
        rows = self.conn.execute("SELECT metrics FROM epochs WHERE phase_id=? ORDER BY epoch", (phase_id,))
        return [json.loads(r[0]) for r in rows]

    def finish_phase(self, phase_id: str, status: str, epochs: int, stop_reason: str,
                     distance_travelled: float, train_acc: float, test_acc: float, seconds: float) -> None:
        with self.transaction() as c:
            c.execute("UPDATE phases SET status=?, epochs=?, stop_reason=?, distance_travelled=?, train_acc=?, "
                      "test_acc=?, seconds=?, updated=? WHERE id=?",
                      (status, epochs, stop_reason, distance_travelled, train_acc, test_acc, seconds,
                       time.time(), phase_id))

    # ---- runs ----
    def record_run(self, run_id: str, spec: dict, phases: list[str]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?)",
                      (run_id, json.dumps(spec, sort_keys=True), json.dumps(phases)))

    def run(self, run_id: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            return None
        return {"id": row["id"], "spec": json.loads(row["spec"]), "phases": json.loads(row["phases"])}

    # ---- measures ----
    def record_measure(self, phase_id: str, name: str, value, seconds: float) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO measures VALUES (?,?,?,?)",
                      (phase_id, name, jsonsafe.dumps(value), seconds))

    def measures(self, phase_id: str) -> dict:
        rows = self.conn.execute("SELECT name, value FROM measures WHERE phase_id=?", (phase_id,))
        return {r[0]: json.loads(r[1]) for r in rows}

    # ---- experiments ----
    def record_experiment(self, name: str, set_id: str, label: dict, scale: str, records: list[dict],
                          provenance: dict | None = None) -> None:
        """Keep (replacing only an earlier run of the same set) the records of experiment `name` on the set
        `set_id`, described by `label` (dataset, model, width, depth, preset, seeds)."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO experiments VALUES (?,?,?,?,?,?,?)",
                      (name, set_id, json.dumps(label, sort_keys=True), scale, jsonsafe.dumps(records),
                       json.dumps(provenance, sort_keys=True), time.time()))

    def experiments(self) -> list[dict]:
        """Every experiment set, by experiment name, then in the order they were run."""
        rows = self.conn.execute("SELECT name, set_id, label, scale, records, provenance, updated FROM experiments "
                                 "ORDER BY name, updated")
        return [{"name": r[0], "set_id": r[1], "label": json.loads(r[2]), "scale": r[3], "records": json.loads(r[4]),
                 "provenance": json.loads(r[5]) if r[5] else None, "updated": r[6]} for r in rows]

    # ---- claims: two drivers on one directory never run the same phase ----
    def claim(self, phase_id: str, owner: str, is_alive) -> bool:
        """Claim `phase_id` for `owner` unless a live other owner holds it (`is_alive(owner, heartbeat)`).
        Reading the holder and replacing a dead one's claim is one transaction, so two drivers that
        both find a holder dead cannot both take its phase."""
        with self.transaction() as c:
            row = c.execute("SELECT owner, heartbeat FROM claims WHERE phase_id=?", (phase_id,)).fetchone()
            if row and row[0] != owner and is_alive(row[0], row[1]):
                return False
            c.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?)", (phase_id, owner, time.time()))
            return True

    def held_by_others(self, owner: str, is_alive) -> set[str]:
        """Phases claimed by live owners other than `owner`."""
        rows = self.conn.execute("SELECT phase_id, owner, heartbeat FROM claims WHERE owner != ?", (owner,))
        return {r[0] for r in rows if is_alive(r[1], r[2])}

    def holds(self, phase_id: str, owner: str) -> bool:
        row = self.conn.execute("SELECT owner FROM claims WHERE phase_id=?", (phase_id,)).fetchone()
        return row is not None and row[0] == owner

    def release(self, phase_id: str, owner: str) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM claims WHERE phase_id=? AND owner=?", (phase_id, owner))

    def heartbeat(self, owner: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE claims SET heartbeat=? WHERE owner=?", (time.time(), owner))
