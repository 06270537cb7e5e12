"""Experiment tracking in MLflow: `badminima run ... --track mlflow [--tracking-uri URI]` (the `[mlflow]` extra).

The driver (the store's only writer) logs each phase of a sweep once it is finished (done or diverged) and its
journal ingested, so that the phases of every executor reach MLflow the same way: one MLflow run per phase,
named "KIND PHASE_ID", in the MLflow experiment "badminima/EXPERIMENT", with
- params: `phase` (its kind) and the spec fields the phase depends on (those its id hashes, runs.plan): every
  field for a `train` phase; data, model, seed and init for a `pretrain` phase; data, model, seed and the
  init's transform fields for a `random-init` phase. Dotted names (`recipe.lr`, `init.pretrain.epochs`);
  strings as they are, other values as JSON (`0.1`, `true`, `null`, `[150, 250]`);
- metrics: every numeric per-epoch metric with step = epoch (timestamps: the phase's start plus the epochs'
  training seconds), and the final results at step 0: `final_train_acc` and `final_test_acc` (the final model
  evaluated on the whole sets), `final_epochs`, `final_distance_travelled`, `final_seconds`, and `epoch_100`
  when the phase reached full training accuracy;
- tags: `badminima.phase_id`, `badminima.phase_kind`, `badminima.parent`, `badminima.run_ids` (the runs of the
  store that use the phase, comma-separated), `badminima.status`, `badminima.stop_reason`, `badminima.store`.

A phase already logged (a FINISHED MLflow run of the experiment with its phase id) is not logged again, so a
sweep re-run with --track logs what an earlier run without it computed. The store stays the record: a tracking
store that fails mid-sweep costs a warning (the next --track run fills the gap). mlflow is imported only here,
only with --track.
"""
from __future__ import annotations

import json
import math
import sys
import time

from .errors import BadInput

PARAMS_PER_CALL, METRICS_PER_CALL = 100, 1000  # MLflow's limits of one log_batch call
TAG_LIMIT = 5000  # characters kept of a long tag value


def flatten(spec: dict, prefix: str = "") -> dict[str, str]:
    """{'recipe.lr': '0.1', ...}: nested dicts joined by dots; strings as they are, other values as JSON."""
    out: dict[str, str] = {}
    for key, value in spec.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def phase_fields(spec: dict, kind: str) -> dict:
    """The fields of a run spec (a dict, as the store keeps it) that phase `kind` of the run depends on."""
    from .inits import get_init

    spec = {k: v for k, v in spec.items() if k != "phase"}
    if kind == "train":
        return spec
    fields = {k: spec[k] for k in ("data", "model", "seed")}
    if kind == "pretrain":
        fields["init"] = spec["init"]
    elif keep := get_init(spec["init"]["name"]).transform_fields:
        fields["init"] = {f: spec["init"][f] for f in keep}
    return fields


def open_tracker(kind: str | None, uri: str | None, experiment: str):
    """The tracker that `--track KIND --tracking-uri URI` asks for (None without --track); BadInput when
    mlflow is missing or the tracking store cannot be opened."""
    if kind is None:
        if uri is not None:
            raise BadInput("--tracking-uri needs --track mlflow")
        return None
    if kind != "mlflow":
        raise BadInput(f"unknown tracker {kind!r} (known: mlflow)")
    return MlflowTracker(uri, f"badminima/{experiment}")


class MlflowTracker:
    def __init__(self, uri: str | None, experiment: str):
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise BadInput("--track mlflow needs the mlflow package: pip install 'badminima[mlflow]'") from None
        import logging

        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "creating tables" lines on stderr
        try:
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            self.logged = self._logged()
        except Exception as exc:  # noqa: BLE001  (any fault of the tracking store is the user's environment)
            where = uri or "MLflow's default tracking URI"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BadInput(f"--tracking-uri {where}: cannot use it as an MLflow tracking store "
                           f"({type(exc).__name__}: {first})") from None
        self.tried: set[str] = set()

    def _logged(self) -> dict[str, tuple[str, str]]:
        """phase id -> (MLflow run id, its run_ids tag) of the experiment's FINISHED runs."""
        out, token = {}, None
        while True:
            page = self.client.search_runs([self.experiment_id], "attributes.status = 'FINISHED'",
                                           max_results=1000, page_token=token)
            for run in page:
                tags = run.data.tags
                if "badminima.phase_id" in tags:
                    out[tags["badminima.phase_id"]] = (run.info.run_id, tags.get("badminima.run_ids", ""))
            token = page.token
            if not token:
                return out

    def log_finished(self, store, status: dict) -> None:
        """Log every phase of `status` (phase id -> 'done' | 'diverged') not logged yet; a failure of the
        tracking store is a warning."""
        for pid in status:
            if pid in self.tried:
                continue
            self.tried.add(pid)
            try:
                self.log_phase(store, pid)
            except Exception as exc:  # noqa: BLE001
                print(f"badminima: warning: MLflow: phase {pid} not logged ({type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); a later run with --track "
                      f"logs it", file=sys.stderr, flush=True)

    def log_phase(self, store, pid: str) -> str | None:
        """Log phase `pid` of `store` if it is finished and not logged yet; returns its MLflow run id."""
        from mlflow.entities import Metric, Param

        row = store.phase(pid)
        if row is None or row["status"] not in ("done", "diverged"):
            return None  # e.g. a phase counted as diverged because its parent diverged: nothing ran
        run_ids = ",".join(sorted(r for r, phases in self._runs(store) if pid in phases))[:TAG_LIMIT]
        if pid in self.logged:
            mlflow_id, tagged = self.logged[pid]
            if tagged != run_ids:  # a later sweep added runs that use this phase
                self.client.set_tag(mlflow_id, "badminima.run_ids", run_ids)
                self.logged[pid] = (mlflow_id, run_ids)
            return mlflow_id
        spec, kind = json.loads(row["spec"]), row["kind"]
        end = row["updated"] or time.time()
        start_ms = int(1000 * (end - (row["seconds"] or 0.0)))
        tags = {"badminima.phase_id": pid, "badminima.phase_kind": kind, "badminima.parent": row["parent"] or "",
                "badminima.run_ids": run_ids, "badminima.status": row["status"],
                "badminima.stop_reason": row["stop_reason"] or "", "badminima.store": str(store.dir)}
        params = [Param(k, v[:6000]) for k, v in {"phase": kind, **flatten(phase_fields(spec, kind))}.items()]
        metrics, when = [], start_ms
        epochs = store.epochs(pid)
        for m in epochs:
            when += int(1000 * (m.get("seconds") or 0.0))
            metrics += [Metric(k, float(v), when, int(m["epoch"])) for k, v in m.items() if k != "epoch" and _number(v)]
        final = {f"final_{k}": row[k] for k in ("train_acc", "test_acc", "epochs", "distance_travelled", "seconds")}
        if kind != "random-init":
            from .train.callbacks import epoch_100
            recipe = spec["recipe"] if kind == "train" else spec["init"]["pretrain"]
            final["epoch_100"] = epoch_100(epochs, recipe["full_fit_accuracy"])
        metrics += [Metric(k, float(v), int(1000 * end), 0) for k, v in final.items() if _number(v)]

        run = self.client.create_run(self.experiment_id, start_time=start_ms, tags=tags, run_name=f"{kind} {pid}")
        mlflow_id = run.info.run_id
        try:
            for i in range(0, len(params), PARAMS_PER_CALL):
                self.client.log_batch(mlflow_id, params=params[i:i + PARAMS_PER_CALL])
            for i in range(0, len(metrics), METRICS_PER_CALL):
                self.client.log_batch(mlflow_id, metrics=metrics[i:i + METRICS_PER_CALL])
            self.client.set_terminated(mlflow_id, "FINISHED", end_time=int(1000 * end))
        except BaseException:
            self.client.set_terminated(mlflow_id, "FAILED")
            raise
        self.logged[pid] = (mlflow_id, run_ids)
        return mlflow_id

    @staticmethod
    def _runs(store) -> list[tuple[str, list[str]]]:
        return [(r[0], json.loads(r[1])) for r in store.conn.execute("SELECT id, phases FROM runs")]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
