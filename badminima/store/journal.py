"""Journals: how workers record results without writing to the database.

A worker's `Journal` answers the reads of `runs.py` like a `Store` (from a private in-memory copy
of the rows it touches, loaded from the read-only database) and appends every write as one JSON
line, flushed and fsynced, to `journal/<name>.jsonl`. The driver, the database's only writer,
replays a task's journal with `ingest` when the task returns (or dies), and at its start those of
tasks that no live driver holds, so a crash
of either loses no finished epoch. Replaying is idempotent (every write is an upsert or a delete),
so a crash during `ingest` is harmless: the journal is removed only after it has been applied.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from .db import FILENAME, Store

WRITES = ("start_phase", "reset_phase", "record_epoch", "truncate_epochs", "finish_phase", "record_run")
FOLDER = "journal"


class Journal:
    def __init__(self, out_dir: str | Path, name: str):
        self.dir = Path(out_dir)
        self.path = self.dir / FOLDER / f"{name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.local = Store(self.dir, memory=True)
        self.main = sqlite3.connect(f"file:{self.dir / FILENAME}?mode=ro", uri=True, timeout=60.0)
        self._loaded: set[str] = set()

    def close(self) -> None:
        self.main.close()
        self.local.close()

    def phase_dir(self, phase_id: str) -> Path:
        return self.dir / "phases" / phase_id

    def _load(self, phase_id: str) -> None:
        """Copy the database's rows of `phase_id` into the private view, once."""
        if phase_id in self._loaded:
            return
        self._loaded.add(phase_id)
        row = self.main.execute("SELECT * FROM phases WHERE id=?", (phase_id,)).fetchone()
        epochs = self.main.execute("SELECT * FROM epochs WHERE phase_id=?", (phase_id,)).fetchall()
        with self.local.transaction() as c:
            if row:
                c.execute(f"INSERT OR REPLACE INTO phases VALUES ({','.join('?' * len(row))})", row)
            c.executemany("INSERT OR REPLACE INTO epochs VALUES (?,?,?)", epochs)

    def phase(self, phase_id: str) -> dict | None:
        self._load(phase_id)
        return self.local.phase(phase_id)

    def epochs(self, phase_id: str) -> list[dict]:
        self._load(phase_id)
        return self.local.epochs(phase_id)

    def __getattr__(self, name: str):
        if name not in WRITES:
            raise AttributeError(name)

        def write(*args):
            if name != "record_run":
                self._load(args[0])
            with open(self.path, "a") as fh:
                fh.write(json.dumps([name, list(args)]) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            getattr(self.local, name)(*args)
        return write


def ingest(store: Store, only=None, skip=()) -> int:
    """Apply the journals in the store's directory to it, then remove them; returns lines applied.

    Only journals that no worker is writing may be ingested: `only` names the tasks (phase ids)
    to take, `skip` those to leave (phases that another live driver holds)."""
    folder = store.dir / FOLDER
    applied = 0
    paths = sorted(folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name)) if folder.is_dir() else []
    for path in paths:
        if (only is not None and path.stem not in only) or path.stem in skip:
            continue
        for line in path.read_text().splitlines():
            try:
                name, args = json.loads(line)
            except ValueError:  # a line cut short by a crash: nothing after it was written either
                break
            if name in WRITES:
                getattr(store, name)(*args)
                applied += 1
        path.unlink()
    return applied
