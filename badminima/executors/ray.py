"""Ray executor: each phase a Ray task (one CPU) on a cluster reached at `address`; the output
directory must be shared by the driver and the workers (checkpoints and journals live there)."""
from __future__ import annotations

import concurrent.futures as cf
import time

from ..errors import BadInput

CONNECT_ATTEMPTS = 10


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, threads: int = 1):
        try:
            import ray
        except ImportError:
            raise BadInput("--executor ray needs the ray package (pip install ray)") from None
        if not address:
            raise BadInput("--executor ray needs --address HOST:PORT of a running Ray cluster")
        self.ray = ray
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                ray.init(address=address, log_to_driver=False, include_dashboard=False,
                         configure_logging=False, ignore_reinit_error=True)
                break
            except (ConnectionError, RuntimeError) as exc:
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise BadInput(f"cannot reach the Ray cluster at {address}: {exc}") from None
                time.sleep(1.0)
        self.slots = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_with_threads)
        self.threads = threads

    def submit(self, fn, *args) -> cf.Future:
        return self._remote.remote(self.threads, fn, *args).future()

    def restart(self) -> None:
        pass

    def close(self) -> None:
        self.ray.shutdown()


def _run_with_threads(threads: int, fn, *args):
    import torch

    torch.set_num_threads(threads)
    return fn(*args)
