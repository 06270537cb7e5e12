"""Environment faults (issue 13, item 4): each gives one `badminima: error:` line and status 2, and once the
fault is gone a run completes with nothing lost - the same records and per-epoch histories as a run that
never met the fault, and no finished phase trained again."""
import contextlib
import errno
import io
import json
import os
import shutil
import sqlite3
import subprocess

import pytest
from safetensors import SafetensorError

import badminima.store.checkpoints as checkpoints
from conftest import make_readonly, make_writable, run_cli
from badminima.cli import main
from badminima.store import Store

TINY = ["run", "bad-minima", "--dataset", "gaussians2d", "--epochs", "3", "--pretrain-epochs", "2", "-R", "1",
        "--seeds", "0", "--workers", "1", "--quiet", "--json"]


def cli(*argv):
    """(status, stdout, stderr lines) of the command, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue().strip().splitlines()


def run(out):
    return cli(*TINY, "--out", out)


def histories(out):
    con = sqlite3.connect(out / "results.sqlite")
    rows = con.execute("SELECT phase_id, epoch, metrics FROM epochs ORDER BY phase_id, epoch").fetchall()
    con.close()
    return {(p, e): {k: v for k, v in json.loads(m).items() if k != "seconds"} for p, e, m in rows}


def checkpoints_on_disk(out):
    """Every final checkpoint: its bytes and modification time (a phase trained again rewrites both)."""
    return {p.parent.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "phases").glob("*/final.safetensors")}


def one_error(status, err):
    assert status == 2
    assert len(err) == 1 and err[0].startswith("badminima: error: "), err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A run that met no fault: its output directory, records and histories."""
    out = tmp_path_factory.mktemp("reference") / "out"
    status, stdout, err = run(out)
    assert status == 0, err
    return out, json.loads(stdout)["records"], histories(out)


def completes_like(out, reference):
    status, stdout, err = run(out)
    assert status == 0, err
    assert json.loads(stdout)["records"] == reference[1]  # (the provenance names another --out and time)
    assert histories(out) == reference[2]


# ---- output directories ----

@pytest.mark.parametrize("where", ["is a file", "under a file"])
def test_output_path_blocked_by_a_file_then_freed(where, reference, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    out = blocker if where == "is a file" else blocker / "sub"
    one_error(*run(out)[::2])
    assert blocker.read_text() == "not a directory"
    blocker.unlink()
    completes_like(out, reference)


def test_read_only_store_then_writable_again(reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    before = checkpoints_on_disk(out)
    if not make_readonly(out):
        make_writable(out)
        pytest.skip("cannot make a directory read-only here")
    try:
        one_error(*run(out)[::2])
    finally:
        make_writable(out)
    completes_like(out, reference)
    assert checkpoints_on_disk(out) == before  # nothing was trained again


# ---- a full disk, at a checkpoint write or a database write ----

def test_disk_full_while_writing_a_checkpoint_then_resume(reference, tmp_path, monkeypatch):
    real, calls = checkpoints.save_file, []

    def save_file(*args, **kwargs):  # the 6th checkpoint write meets a full disk, as safetensors reports it
        calls.append(1)
        if len(calls) == 6:
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(*args, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(checkpoints, "save_file", save_file)
    status, _, err = run(out)
    one_error(status, err)
    assert "No space left on device" in err[0]
    assert not list(out.glob("phases/*/*.tmp")), "a partial checkpoint was left behind"
    kept = histories(out)
    assert kept and all(reference[2][k] == v for k, v in kept.items())  # the epochs before the fault were kept
    monkeypatch.setattr(checkpoints, "save_file", real)
    completes_like(out, reference)


def test_disk_full_while_writing_the_database_then_resume(reference, tmp_path, monkeypatch):
    real, calls = Store.finish_phase, []

    def finish_phase(self, *args):  # the driver's database (not a worker's in-memory view) is full
        if self.conn.execute("PRAGMA database_list").fetchone()[2]:
            calls.append(1)
        if len(calls) == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args)

    out = tmp_path / "out"
    monkeypatch.setattr(Store, "finish_phase", finish_phase)
    one_error(*run(out)[::2])
    monkeypatch.setattr(Store, "finish_phase", real)
    completes_like(out, reference)


def test_disk_full_on_fsync_then_resume(reference, tmp_path, monkeypatch):
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(1)
        if len(calls) == 9:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    out = tmp_path / "out"
    monkeypatch.setattr(os, "fsync", fsync)
    one_error(*run(out)[::2])
    monkeypatch.setattr(os, "fsync", real)
    completes_like(out, reference)


def test_a_real_full_disk_then_room_again(reference, tmp_path):
    """A small tmpfs fills up part-way; remounted larger, the run completes (where this process may mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mount / "out"
        failed = run_cli(*TINY, "--out", out)  # new processes, as a user would run them
        one_error(failed.returncode, failed.stderr.strip().splitlines())
        subprocess.run(["mount", "-o", "remount,size=8m", str(mount)], check=True)
        again = run_cli(*TINY, "--out", out)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["records"] == reference[1] and histories(out) == reference[2]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# ---- a damaged database ----

def _garbage(path):
    path.write_bytes(os.urandom(path.stat().st_size))


def _half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_garbage, _half, _empty], ids=["garbage", "truncated", "zero-length"])
@pytest.mark.parametrize("remedy", ["restore the copy", "move it away"])
def test_damaged_database_then_recovered(damage, remedy, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    db = out / "results.sqlite"
    before = checkpoints_on_disk(out)
    good = db.read_bytes()
    damage(db)
    broken = db.read_bytes()
    one_error(*run(out)[::2])
    assert db.read_bytes() == broken  # left as it was, for the user to look at
    if remedy == "restore the copy":
        db.write_bytes(good)
    else:
        db.rename(out / "results.sqlite.broken")
    completes_like(out, reference)
    assert checkpoints_on_disk(out) == before  # rebuilt from the phase folders, nothing trained again


def test_empty_store_beside_phases_is_rebuilt_not_retrained(reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    (out / "results.sqlite").unlink()
    before = checkpoints_on_disk(out)
    damaged = sorted(before)[0]
    (out / "phases" / damaged / "final.safetensors").write_bytes(b"garbage")  # this one proves nothing
    status, stdout, err = run(out)
    assert status == 0, err
    assert err == [f"badminima: warning: {out / 'results.sqlite'} held no phases: rebuilt {len(before) - 1} finished "
                   f"phases from {out / 'phases'}; 1 could not be and will be recomputed when needed"]
    assert json.loads(stdout)["records"] == reference[1] and histories(out) == reference[2]
    after = checkpoints_on_disk(out)
    assert {k for k in before if after[k] != before[k]} == {damaged}  # only the unproven phase was trained again


# ---- checkpoints under `measure` ----

def _final_phase(out):
    store = Store(out)
    try:
        run_id = [r[0] for r in store.conn.execute("SELECT id FROM runs") if len(store.run(r[0])["phases"]) == 2][0]
        return run_id, store.run(run_id)["phases"]
    finally:
        store.close()


def _frobenius(out, run_id):
    status, stdout, err = cli("measure", run_id, "--out", out, "--measure", "frobenius", "distance_from_init",
                              "--json", "--quiet")
    assert status == 0, err
    return json.loads(stdout)["measures"]


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "directory", "random init missing"])
def test_measure_with_a_bad_checkpoint_then_rerun(damage, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    run_id, phases = _final_phase(out)
    expected = _frobenius(reference[0], run_id)
    path = out / "phases" / phases[0 if damage == "random init missing" else -1] / "final.safetensors"
    if damage in ("missing", "random init missing"):
        path.unlink()
    elif damage == "truncated":
        _half(path)
    elif damage == "garbage":
        _garbage(path)
    else:
        path.unlink()
        path.mkdir()
    status, _, err = cli("measure", run_id, "--out", out, "--measure", "frobenius", "distance_from_init", "--quiet",
                         "--force")
    one_error(status, err)
    if damage == "directory":
        one_error(*run(out)[::2])  # `run` will not delete a folder it did not make either
        path.rmdir()
    completes_like(out, reference)  # recomputes the checkpoint, the same numbers
    assert _frobenius(out, run_id) == expected
