"""A small sweep on a local Ray cluster (a head and one worker node on loopback), started and torn
down inside the test by the PIDs it recorded (never `ray stop`, which would end every Ray process
of the user). Same numbers as the local pool (one torch thread per task in both)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import run_cli

pytest.importorskip("ray")

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_enable_metrics_collection": "false", "RAY_AUTH_MODE": "disabled"}
NODE = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--num-cpus=1", "--memory=2000000000",
        "--object-store-memory=150000000", "--block"]
SWEEP = ["run", "bad-minima", "--train-size", "500", "--width", "64", "--epochs", "8", "--pretrain-epochs", "5",
         "-R", "1", "--seeds", "0", "--json", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:  # outside Ray's default worker port range 10002-19999
        for port in range(26379, 26479):
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port")


def _session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each node's process group, SIGKILL to whatever is left after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for p in procs:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while any(_session_pids(p.pid) for p in procs) and time.time() < deadline:
            time.sleep(0.1)
        if not any(_session_pids(p.pid) for p in procs):
            break
    for p in procs:
        p.wait(timeout=10)


CPUS = """
import ray, sys, time
ray.init(address=sys.argv[1], log_to_driver=False, include_dashboard=False)
while ray.cluster_resources().get("CPU", 0) < 2:
    time.sleep(0.1)
"""


def test_sweep_on_a_local_ray_cluster(tmp_path):
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, **RAY_ENV, "OMP_NUM_THREADS": "1"}
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="bmray", dir="/tmp")
    procs: list[subprocess.Popen] = []
    started = time.perf_counter()
    try:
        procs.append(subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={temp_dir}", *NODE], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        procs.append(subprocess.Popen([ray_bin, "start", f"--address={address}", *NODE], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        subprocess.run([sys.executable, "-c", CPUS, address], env=env, timeout=120, check=True,
                       capture_output=True)  # both nodes registered
        start_seconds = time.perf_counter() - started
        result = subprocess.run([sys.executable, "-m", "badminima", *SWEEP, "--executor", "ray", "--address", address,
                                 "--out", str(tmp_path / "ray")], capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        stopping = time.perf_counter()
        _stop(procs)
        teardown_seconds = time.perf_counter() - stopping
        shutil.rmtree(temp_dir, ignore_errors=True)
    print(f"ray cluster: start {start_seconds:.1f} s, teardown {teardown_seconds:.1f} s")
    assert all(not _session_pids(p.pid) for p in procs), "Ray processes left behind"
    pool = run_cli(*SWEEP, "--executor", "pool", "--out", tmp_path / "pool")
    assert pool.returncode == 0, pool.stderr
    ray_records = json.loads(result.stdout)["records"]
    assert [r["status"] for r in ray_records] == ["done"] * 4
    assert ray_records == json.loads(pool.stdout)["records"]
