"""Journals: how workers record results without writing to the database.

A worker's `Journal` answers the reads of `runs.py` like a `Store` (from a private in-memory copy
of the rows it touches, loaded from the read-only database) and appends every write as one JSON
line, flushed and fsynced, to `journal/<phase id>.<writer>.jsonl` (one file per driver and phase, so
that two drivers never append to one file). The driver, the database's only writer, replays a
task's journal with `ingest` when the task returns (or dies), and at its start those of tasks that
no live driver holds, so a crash of either loses no finished epoch. Replaying is idempotent (every
write is an upsert or a delete), so a crash during `ingest` is harmless: the journal is removed only
after it has been applied.

A journal given its driver's `owner` checks, before each write, that this driver still holds the
claim on the task's phase (store/db.py); if another driver took it over (this one's heartbeat was
late), the write raises ClaimLost and the worker stops, so the phase is finished by one driver only.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from .db import FILENAME, Store

WRITES = ("start_phase", "reset_phase", "record_epoch", "truncate_epochs", "finish_phase", "record_run")
FOLDER = "journal"


class ClaimLost(Exception):
    """The driver's claim on a task's phase passed to another driver; the task must stop writing."""


def journal_path(out_dir: str | Path, name: str, writer: str | None = None) -> Path:
    return Path(out_dir) / FOLDER / (f"{name}.{writer}.jsonl" if writer else f"{name}.jsonl")


def _task(path: Path) -> str:
    """The phase id a journal file belongs to."""
    return path.name.split(".", 1)[0]


def _age(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except FileNotFoundError:
        return 0.0, path.name


class Journal:
    def __init__(self, out_dir: str | Path, name: str, owner: str | None = None, writer: str | None = None):
        self.dir, self.name, self.owner = Path(out_dir), name, owner
        self.path = journal_path(out_dir, name, writer)
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

    def check_claim(self) -> None:
        if self.owner is None:
            return
        row = self.main.execute("SELECT owner FROM claims WHERE phase_id=?", (self.name,)).fetchone()
        if row is None or row[0] != self.owner:
            raise ClaimLost(f"phase {self.name} is now claimed by {row[0] if row else 'no driver'}, not {self.owner}")

    def __getattr__(self, name: str):
        if name not in WRITES:
            raise AttributeError(name)

        def write(*args):
            self.check_claim()
            if name != "record_run":
                self._load(args[0])
            with open(self.path, "a") as fh:
                fh.write(json.dumps([name, list(args)]) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            getattr(self.local, name)(*args)
        return write


def ingest(store: Store, only=None, skip=(), writer: str | None = None) -> int:
    """Apply the journals in the store's directory to it, then remove them; returns lines applied.

    Only journals that no worker is writing may be ingested: `only` names the tasks (phase ids)
    to take, `skip` those to leave (phases that another live driver holds), `writer` keeps only the
    journals of one driver."""
    folder = store.dir / FOLDER
    applied = 0
    paths = [p for p in (folder.glob("*.jsonl") if folder.is_dir() else ())
             if (only is None or _task(p) in only) and _task(p) not in skip
             and (writer is None or p == journal_path(store.dir, _task(p), writer))]
    for path in sorted(paths, key=_age):
        try:
            text = path.read_text()
        except FileNotFoundError:  # applied by another driver meanwhile
            continue
        for line in text.splitlines():
            try:
                name, args = json.loads(line)
            except ValueError:  # a line cut short by a crash: nothing after it was written either
                break
            if name in WRITES:
                getattr(store, name)(*args)
                applied += 1
        path.unlink(missing_ok=True)
    return applied


def discard(out_dir: str | Path, name: str, writer: str) -> None:
    """Remove a task's journal unapplied (its driver lost the claim: the new holder's work counts)."""
    journal_path(out_dir, name, writer).unlink(missing_ok=True)
