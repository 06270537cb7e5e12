"""The unit of work: one phase of one run, executed by a worker that writes only its journal."""
from __future__ import annotations

from ..runs import Workspace, execute_phase, plan
from ..spec import RunSpec, merge
from ..store.journal import Journal


def run_phase(out_dir: str, spec: dict, index: int, data_dir: str | None, device: str, quiet: bool,
              owner: str | None = None, writer: str | None = None) -> dict | None:
    """Execute phase `index` of the run `spec` (a spec dict) against the store in `out_dir`,
    recording through a journal (`writer` names it; with `owner`, every write first checks that
    this driver still holds the phase's claim); returns the phase's row as this worker last saw it."""
    run = merge(RunSpec(), spec)
    phase_id = plan(run)[index].id
    journal = Journal(out_dir, phase_id, owner, writer)
    try:
        execute_phase(run, index, Workspace(journal, data_dir, device, quiet))
        return journal.phase(phase_id)
    finally:
        journal.close()
