"""A run as a chain of phases, and their execution with skip-if-done and resume.

Every run is random-init -> [pretrain] -> train. Each phase has its own id (a hash of the spec
fields it depends on), so runs that share a prefix share its phases: vanilla and SOTA training
from the same adversarial init reuse one pretraining phase. A phase's distance travelled is
measured from its parent's final weights.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import Dataset, as_inputs, load_dataset
from .data.augment import augment
from .errors import BadInput
from .fingerprints import fingerprint, recorded_fingerprint, stale_reason
from .inits import get_init
from .measures import relative_distance
from .models import Classifier, build_model, check_model_name
from .spec import RunSpec, canonical, digest, non_default, recipe_name, run_id, to_dict, validate
from .store import CorruptCheckpoint, Store, load_checkpoint, save_checkpoint
from .store.checkpoints import checkpoint_meta, load_model_tensors, load_optimizer, model_tensors
from .train import callbacks as cb
from .train import derive_seed, evaluate, train_phase
from .train.adversarial import pgd_perturbation
from .train.callbacks import epoch_100
from .train.loop import weights_finite
from .train.rank_control import rank_callback
from .train.regularizers import penalty_of


@dataclass(frozen=True)
class Phase:
    id: str
    kind: str  # "random-init" | "pretrain" | "train"
    parent: str | None


def check(spec: RunSpec) -> RunSpec:
    """Validate a spec against ranges and registries; BadInput on a mistake. Returns its canonical form."""
    from .data import check_dataset_name

    spec = canonical(validate(spec))
    check_dataset_name(spec.data.name)
    check_model_name(spec.model.name)
    get_init(spec.init.name)
    return spec


def plan(spec: RunSpec) -> list[Phase]:
    spec = check(spec)
    nd = non_default(spec)
    base = {k: nd[k] for k in ("data", "model", "seed") if k in nd}
    entry = get_init(spec.init.name)
    transformed = {f: v for f, v in nd.get("init", {}).items() if f in entry.transform_fields}
    phases = [Phase(digest({"phase": "random-init", **base, **({"init": transformed} if transformed else {})}),
                    "random-init", None)]
    if entry.pretraining_data is not None:
        computed = {"compute": nd["compute"]} if "compute" in nd else {}  # how it is computed (none by default)
        phases.append(Phase(digest({"phase": "pretrain", **base, "init": nd.get("init", {}), **computed}), "pretrain",
                            phases[-1].id))
    phases.append(Phase(run_id(spec), "train", phases[-1].id))
    return phases


_DATASETS: dict = {}  # loaded datasets, shared by every Workspace of this process


@dataclass
class Workspace:
    """What executing runs needs: the store (a Store, or a worker's Journal), where data lives,
    the device; datasets are loaded once per process."""

    store: Store
    data_dir: str | Path | None = None
    device: str = "cpu"
    quiet: bool = False
    tracker: object = None  # badminima.tracking: where the driver logs finished phases (None: nowhere)

    def stored(self, spec: RunSpec) -> Dataset:
        """The dataset as the training path keeps it on the device: image files' pixels as uint8
        (data.as_inputs turns a batch into inputs), other data as float inputs."""
        key = (spec.data.name, str(self.data_dir), self.device, spec.data.train_size,
               spec.seed if spec.data.train_size else None, spec.data.options)
        if key not in _DATASETS:
            data = load_dataset(spec.data.name, self.data_dir, spec.data.train_size, spec.seed, spec.data.options,
                                compact=True)
            for name in ("x_train", "y_train", "x_test", "y_test"):
                setattr(data, name, getattr(data, name).to(self.device))
            _DATASETS[key] = data
        return _DATASETS[key]

    def dataset(self, spec: RunSpec) -> Dataset:
        """The dataset on the device with float inputs (for measures and experiments; made from `stored`
        the first time it is asked for)."""
        data = self.stored(spec)
        if not data.compact:
            return data
        key = ("floats", spec.data.name, str(self.data_dir), self.device, spec.data.train_size,
               spec.seed if spec.data.train_size else None, spec.data.options)
        if key not in _DATASETS:
            _DATASETS[key] = data.floats()
        return _DATASETS[key]

    def skeleton(self, spec: RunSpec, meta: bool = False) -> Classifier:
        """The model of `spec` for its data, initialized from the global RNG; with `meta`, its parameters on the
        meta device (shapes without memory or RNG draws: for sizes and fingerprints)."""
        data = self.stored(spec)
        mean, std = (t.cpu() for t in data.standardization())
        if not spec.data.standardize:  # the model sees the inputs as they are (spec.DataSpec.standardize)
            mean, std = torch.zeros_like(mean), torch.ones_like(std)
        with torch.device("meta") if meta else contextlib.nullcontext():
            model = build_model(spec.model.name, data.input_shape, data.num_classes, mean, std,
                                spec.model.width, spec.model.depth, spec.model.options)
        return model if meta else model.to(self.device)

    def warn(self, message: str) -> None:
        print(f"badminima: warning: {message}", file=sys.stderr, flush=True)


class Diverged(Exception):
    pass


# errors of the output directory that a retry cannot mend: a full disk, a read-only file system, permissions,
# something other than a file or folder in the way
WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}


def execute_phase(spec: RunSpec, index: int, ws: Workspace) -> None:
    """Make phase `index` of `spec` done (training what it starts from too, if that is missing).
    BadInput when the output directory cannot be written: finished epochs stay, a re-run resumes.
    On a GPU, first check that the phase fits this worker's share of the device memory."""
    if torch.device(ws.device).type == "cuda":
        from .train.memory import check_phase_memory
        check_phase_memory(spec, ws)
    try:
        _ensure(plan(spec), index, check(spec), ws)
    except Diverged:
        pass
    except OSError as exc:
        if exc.errno not in WRITE_FAULTS:
            raise
        raise BadInput(f"{exc.strerror}: {exc.filename or ws.store.dir}; finished epochs are kept, "
                       f"re-run once this is fixed") from None


def revalidate(specs: list[RunSpec], ws: Workspace) -> list[str]:
    """Reset every finished phase of `specs` whose result is stale - trained with another architecture or other
    data than the code gives now, or whose final checkpoint names another phase - so that it is recomputed;
    one warning each, saying why. Returns the phases reset."""
    store, seen, reset = ws.store, set(), []
    for spec in specs:
        spec = check(spec)
        for phase in plan(spec):
            if phase.id in seen:
                continue
            seen.add(phase.id)
            row = store.phase(phase.id)
            if not row or row["status"] not in ("done", "diverged"):
                continue
            reason = stale_reason(recorded_fingerprint(row), fingerprint(spec, ws))
            if reason is None and row["status"] == "done":
                try:
                    owner = checkpoint_meta(final_path(store, phase.id)).get("phase")
                except (CorruptCheckpoint, FileNotFoundError):
                    owner = phase.id  # unreadable or missing: the scheduler verifies and recomputes those
                if owner != phase.id:
                    reason = f"its final checkpoint holds phase {owner}, not this one (copied from another phase?)"
            if reason:
                ws.warn(f"phase {phase.id} ({phase.kind}): {reason}; recomputing it")
                store.reset_phase(phase.id)
                reset.append(phase.id)
    return reset


def summary(spec: RunSpec, store: Store) -> dict:
    spec = check(spec)
    phases = plan(spec)
    final = store.phase(phases[-1].id) or {}
    status = final.get("status") or "missing"
    if any((store.phase(p.id) or {}).get("status") == "diverged" for p in phases):
        status = "diverged"
    record = {"run_id": phases[-1].id, "init": "random" if spec.init.name == "default" else spec.init.name,
              "recipe": recipe_name(spec.recipe), "seed": spec.seed, "train_acc": final.get("train_acc"),
              "test_acc": final.get("test_acc"), "epochs": final.get("epochs"),
              "epoch_100": epoch_100(store.epochs(phases[-1].id), spec.recipe.full_fit_accuracy),
              "stop_reason": final.get("stop_reason"),
              "distance_travelled": final.get("distance_travelled"), "status": status}
    pretrain = next((p for p in phases if p.kind == "pretrain"), None)
    if pretrain is not None:  # Algorithm 1's phase: how far the random-label fit got, and why it stopped
        row = store.phase(pretrain.id) or {}
        record.update(pretrain_epochs=row.get("epochs"), pretrain_train_acc=row.get("train_acc"),
                      pretrain_epoch_100=epoch_100(store.epochs(pretrain.id), spec.init.pretrain.full_fit_accuracy),
                      pretrain_stop_reason=row.get("stop_reason"))
    return record


def final_path(store: Store, phase_id: str) -> Path:
    return store.phase_dir(phase_id) / "final.safetensors"


def load_final(store: Store, phase_id: str, model: torch.nn.Module) -> torch.nn.Module:
    """`model` with the final weights of `phase_id`; CorruptCheckpoint if the file is damaged, holds another
    phase, or does not fit the model."""
    path = final_path(store, phase_id)
    tensors, meta = load_checkpoint(path)
    if meta.get("phase") != phase_id:
        raise CorruptCheckpoint(f"{path}: holds phase {meta.get('phase')}, not {phase_id}")
    try:
        load_model_tensors(model, tensors)
    except RuntimeError as exc:
        raise CorruptCheckpoint(f"{path}: does not fit the model ({str(exc).strip().splitlines()[0]})") from None
    return model


def _ensure(phases: list[Phase], i: int, spec: RunSpec, ws: Workspace) -> Classifier:
    """The final model of phases[i], training it (and what it starts from) if needed."""
    phase, store = phases[i], ws.store
    row = store.phase(phase.id)
    reason = row and row["status"] in ("done", "diverged") and stale_reason(recorded_fingerprint(row), fingerprint(spec, ws))
    if reason:
        ws.warn(f"phase {phase.id} ({phase.kind}): {reason}; recomputing it")
        store.reset_phase(phase.id)
        row = store.phase(phase.id)
    if row and row["status"] == "diverged":
        raise Diverged(phase.id)
    if row and row["status"] == "done":
        try:
            return load_final(store, phase.id, ws.skeleton(spec))
        except (CorruptCheckpoint, FileNotFoundError) as exc:
            ws.warn(f"{exc if isinstance(exc, CorruptCheckpoint) else 'missing checkpoint'}; recomputing phase {phase.id}")
            store.reset_phase(phase.id)
    start = _ensure(phases, i - 1, spec, ws) if i > 0 else None
    return _train(phase, start, spec, ws)


def _train(phase: Phase, start: Classifier | None, spec: RunSpec, ws: Workspace) -> Classifier:
    store, data = ws.store, ws.stored(spec)
    folder = store.phase_dir(phase.id)
    folder.mkdir(parents=True, exist_ok=True)
    before, current = store.phase(phase.id), fingerprint(spec, ws)
    record = {"phase": phase.kind, **to_dict(spec), "fingerprint": current}
    (folder / "spec.json").write_text(json.dumps(record, indent=2) + "\n")
    store.start_phase(phase.id, phase.kind, phase.parent, record)
    if phase.kind == "random-init":
        torch.manual_seed(derive_seed(spec.seed, "random-init"))
        model = ws.skeleton(spec)
        entry = get_init(spec.init.name)
        if entry.transform is not None:  # e.g. `normal`: weights redrawn from N(0, std^2), generator on the CPU
            given = {"data": _cpu(data).floats()} if entry.transform_needs_data else {}  # e.g. `lemma1` fits a classifier
            entry.transform(model, spec.init, torch.Generator().manual_seed(derive_seed(spec.seed, "init-transform")),
                            **given)
        _finish(phase, model, model, data.x_train, data.y_train, 0, "initialized", 0.0, ws, data, current)
        return model

    model = copy.deepcopy(start)
    if phase.kind == "pretrain":
        x, y = pretraining_data(spec, ws, compact=True)
        recipe = spec.init.pretrain
    else:
        x, y, recipe = data.x_train, data.y_train, spec.recipe

    resume_path = folder / "last.safetensors"
    start_epoch, history, restore, stopped = 0, [], None, None
    if resume_path.exists():
        try:
            if reason := stale_reason(recorded_fingerprint(before), current):
                raise CorruptCheckpoint(f"{resume_path}: {reason}")
            tensors, meta = load_checkpoint(resume_path)
            history = store.epochs(phase.id)[:meta["epoch"]]
            if len(history) != meta["epoch"]:
                raise CorruptCheckpoint(f"{resume_path}: the store lacks epochs of this checkpoint")
            load_model_tensors(model, tensors)
            start_epoch, stopped = meta["epoch"], meta.get("stop_reason")
            restore = lambda opt: load_optimizer(opt, tensors, meta)  # noqa: E731
            if not ws.quiet:
                print(f"  {phase.kind} {phase.id}: resuming after epoch {start_epoch}", file=sys.stderr)
        except (CorruptCheckpoint, RuntimeError) as exc:  # RuntimeError: tensors that do not fit the model
            ws.warn(f"{str(exc).strip().splitlines()[0]}; restarting phase {phase.id} from its start")
            model, history, start_epoch = copy.deepcopy(start), [], 0
    store.truncate_epochs(phase.id, start_epoch)

    rank = rank_callback(recipe, as_inputs(x[:1]), start)  # RankMin/RankMax first: later callbacks see the projected model
    callbacks = [*([rank] if rank else []), cb.evaluate_on(data.x_test, data.y_test, "test"), cb.stop_rule(recipe, x, y),
                 cb.record(store, phase.id, resume_path)]
    if not ws.quiet:
        callbacks.append(cb.progress(f"{phase.kind} {phase.id}", recipe.epochs))
    if stopped:
        from .train.loop import PhaseOutcome
        outcome = PhaseOutcome(start_epoch, stopped, history)
    else:
        outcome = train_phase(model, x, y, recipe, derive_seed(spec.seed, phase.kind),
                              lambda xb, yb, g: augment(xb, yb, data, g), callbacks, start_epoch, history, restore,
                              penalty_of(recipe), pgd_perturbation(recipe, data), spec.compute)
    if outcome.diverged:
        _diverged(phase, outcome.epochs, _seconds(outcome), ws, "non-finite loss or weights")
    _finish(phase, model, start, x, y, outcome.epochs, outcome.stop_reason, _seconds(outcome), ws, data, current,
            spec.compute)
    resume_path.unlink(missing_ok=True)
    return model


def pretraining_data(spec: RunSpec, ws: Workspace, compact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The (inputs, labels) that the pretraining phase of `spec` trains on, on the workspace's device
    (the same tensors every time: their generator is seeded by the run's seed). `compact`: images as
    uint8 pixels, as the training path keeps them (Algorithm 1's R replicas at a quarter of float's size)."""
    generator = torch.Generator().manual_seed(derive_seed(spec.seed, "pretraining-data"))
    x, y = get_init(spec.init.name).pretraining_data(_cpu(ws.stored(spec)), spec.init, generator)
    return (x if compact else as_inputs(x)).to(ws.device), y.to(ws.device)


def _seconds(outcome) -> float:
    return float(sum(h.get("seconds", 0.0) for h in outcome.history))


def _cpu(data: Dataset) -> Dataset:
    return Dataset(**{**data.__dict__, "x_train": data.x_train.cpu(), "y_train": data.y_train.cpu()})


def _diverged(phase: Phase, epochs: int, seconds: float, ws: Workspace, why: str):
    ws.store.finish_phase(phase.id, "diverged", epochs, "diverged", None, None, None, seconds)
    ws.warn(f"phase {phase.id} diverged ({why}) at epoch {epochs}")
    raise Diverged(phase.id)


def _finish(phase: Phase, model, start, x, y, epochs: int, reason: str, seconds: float, ws: Workspace, data: Dataset,
            fingerprint_: dict, compute=None) -> None:
    """Write the final checkpoint, then mark the phase done, from a final evaluation (computed as the phase
    was; a random init in fp32). A phase whose final weights or losses are not finite is diverged, whatever
    the loop saw (no NaN ever reaches a record). The checkpoint's meta carries the phase's id, fingerprint
    and whole outcome (with its epoch history), so that a lost database can be rebuilt from the phase
    folders (store.db.Store.rebuild_from_folders)."""
    train_loss, train_acc = evaluate(model, x, y, compute=compute)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test, compute=compute)
    if not (weights_finite(model) and math.isfinite(train_loss) and math.isfinite(test_loss)):
        _diverged(phase, epochs, seconds, ws, "non-finite final weights or loss")
    distance = relative_distance(model, start) if start is not None and start is not model else 0.0
    outcome = {"kind": phase.kind, "parent": phase.parent, "epochs": epochs, "stop_reason": reason,
               "distance_travelled": distance, "train_acc": train_acc, "test_acc": test_acc, "seconds": seconds,
               "history": ws.store.epochs(phase.id) if epochs else []}
    save_checkpoint(final_path(ws.store, phase.id), model_tensors(model),
                    {"phase": phase.id, "epochs": epochs, "fingerprint": fingerprint_, "outcome": outcome})
    ws.store.finish_phase(phase.id, "done", epochs, reason, distance, train_acc, test_acc, seconds)
