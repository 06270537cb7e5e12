"""Progress on stderr: of a sweep (phases done / total, ETA), of each phase in flight (epoch / cap, ETA) and of
long measures (Hessian-vector products used).

On a terminal, a rich live display: one bar for the sweep and one per phase in flight (one per worker of a
pool, whose latest epoch the driver reads from the phase's journal). Elsewhere (a log file, a pipe), plain
lines: "[DONE/TOTAL] LABEL: KIND ID (...) on EXECUTOR; sweep ETA ..." when a phase starts (DONE: phases done
so far), "  LABEL: KIND ID done (DONE/TOTAL phases done); sweep ETA ..." when it ends, and the phase's epoch
lines (at most one per few seconds, and always its last), printed by whichever process trains it.

ETAs are estimates, upper ones where a stop rule may end a phase before its epoch cap:
- a phase: its seconds per epoch since it was first seen here, times the epochs left to its cap (before a
  second epoch is seen: the first epoch's own training seconds);
- the sweep: its work is counted in epochs, each phase weighing its epoch cap + 1 (a random init weighs 1); a
  finished phase counts whole (also when it stopped early), a phase in flight by its latest epoch; ETA =
  elapsed time * work left / work done since the sweep started (epochs of resumed phases before their first
  epoch seen here are not counted as done here).
A phase dispatched again (a retry, after its worker died) is the same phase: the sweep's total never grows.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

EPOCH_LINE_SECONDS = 2.0  # plain epoch lines: at most one per phase per this many seconds (and always the last)
MEASURE_LINE_SECONDS = 10.0  # plain lines of a long measure: at most one per this many seconds
JOURNAL_TAIL = 1 << 16  # bytes read from the end of a worker's journal for its latest epoch

_LIVE: list["Sweep"] = []  # the sweep shown live by this process, if any


def console():
    """The rich console on stderr: live displays where it is a terminal, plain lines elsewhere (tests
    replace this function to force a terminal)."""
    from rich.console import Console
    return Console(stderr=True)


def format_eta(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=round(max(seconds, 0.0))))


class Clock:
    """A phase's ETA from the epochs seen: (now - t0) / (epoch - e0) seconds per epoch after the first epoch
    e0 seen at t0; before a second epoch, `seconds` (the first epoch's own training time)."""

    def __init__(self):
        self.first: tuple[int, float, float | None] | None = None

    def eta(self, epoch: int, cap: int, seconds: float | None = None, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.first = (epoch, now, seconds)
        e0, t0, s0 = self.first
        per_epoch = (now - t0) / (epoch - e0) if epoch > e0 else s0
        return None if per_epoch is None else per_epoch * max(cap - epoch, 0)


def metrics_text(m: dict) -> str:
    parts = []
    if "lr" in m:
        parts.append(f"lr {m['lr']:.3g}")
    if "train_loss" in m:
        parts.append(f"loss {m['train_loss']:.4f}")
    if "train_acc" in m:
        parts.append(f"train {100 * m['train_acc']:5.1f}%")
    if "test_acc" in m:
        parts.append(f"test {100 * m['test_acc']:5.1f}%")
    return "  ".join(parts)


def epoch_line(label: str, epoch: int, cap: int, metrics: dict, eta: float | None) -> str:
    return f"  {label} epoch {epoch:>4}/{cap}  {metrics_text(metrics)}  ETA {format_eta(eta)}"


def epoch(label: str, number: int, cap: int, metrics: dict, eta: float | None) -> bool:
    """Tell this process's live sweep display (if any) that phase `label` finished epoch `number`;
    True if that display shows it (then no plain line is needed)."""
    return bool(_LIVE) and _LIVE[-1].epoch(label, number, cap, metrics, eta)


def latest_epoch(journal: Path) -> dict | None:
    """The metrics of the last epoch recorded in a worker's journal (store/journal.py), or None."""
    try:
        with open(journal, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - JOURNAL_TAIL))
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            name, args = json.loads(line)
        except ValueError:  # the first line of the tail, cut, or a line being written
            continue
        if name == "record_epoch":
            return {**args[2], "epoch": args[1]}
    return None


class Sweep:
    """The progress of one `executors.scheduler.execute`: `phases` maps the id of every phase it has to run
    to (run spec, phase index); `out_dir` holds the store and the workers' journals (read for the latest
    epoch of a phase running in another process). Quiet: shows nothing. `out`: the rich console (default:
    stderr's, when it is a terminal; else plain lines on stderr)."""

    def __init__(self, label: str, phases: dict, executor, out_dir: Path, quiet: bool = False, out=None,
                 writer: str | None = None):
        from .runs import plan
        from .store.journal import FOLDER

        self.label, self.where, self.slots, self.quiet = label, executor.name, executor.slots, quiet
        self.in_process = executor.name == "in-process"
        self.journals = Path(out_dir) / FOLDER
        self.writer = writer  # the driver's journals are named PHASE.WRITER.jsonl (store.journal.journal_path)
        self.kind, self.cap, self.about = {}, {}, {}
        for pid, (spec, index) in phases.items():
            kind = plan(spec)[index].kind
            self.kind[pid] = kind
            self.cap[pid] = {"train": spec.recipe.epochs, "pretrain": spec.init.pretrain.epochs}.get(kind, 0)
            self.about[pid] = f"data {spec.data.name}, init {spec.init.name}, seed {spec.seed}"
        self.pid_of = {f"{self.kind[p]} {p}": p for p in phases}
        self.done: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.latest: dict[str, int] = {}  # latest epoch seen of a phase
        self.base: dict[str, int] = {}  # epochs it had before its first epoch seen here
        self.clocks: dict[str, Clock] = {}
        self.started = time.monotonic()
        self.live = self.tasks = None
        self.slot: dict[str, int] = {}  # the worker number shown for a phase's bar
        self.out = out if out is not None or quiet else console()
        if not quiet and self.kind and self.out.is_terminal:
            self._start_live(self.out)
        # workers of other processes would write over the live display: it shows their epochs instead
        self.worker_quiet = quiet or (self.live is not None and not self.in_process)

    # ---- what the scheduler calls ----
    def start(self, pid: str) -> None:
        """Phase `pid` is dispatched (again, if it is a retry)."""
        self.attempts[pid] = self.attempts.get(pid, 0) + 1
        if self.live is not None:
            self._bar(f"{self.kind[pid]} {pid}", self.cap[pid])
        elif not self.quiet:
            again = f", attempt {self.attempts[pid]}" if self.attempts[pid] > 1 else ""
            self._line(f"{self._count()} {self.label}: {self.kind[pid]} {pid} ({self.about[pid]}) on {self.where}"
                       f"{again}; sweep ETA {format_eta(self.eta())}")

    def update(self, status: dict, in_flight) -> None:
        """After each round of the scheduler: `status` maps finished phases to 'done' | 'diverged'."""
        if not self.in_process and self.live is not None:
            for pid in in_flight:
                if (m := latest_epoch(self.journals / (f"{pid}.{self.writer}.jsonl" if self.writer else f"{pid}.jsonl"))) is not None and m["epoch"] != self.latest.get(pid):
                    label, clock = f"{self.kind[pid]} {pid}", self.clocks.setdefault(pid, Clock())
                    self.epoch(label, m["epoch"], self.cap[pid], m, clock.eta(m["epoch"], self.cap[pid], m.get("seconds")))
        for pid in [p for p in self.kind if p in status and p not in self.done]:
            self.done.add(pid)
            if self.live is not None:
                self._drop(f"{self.kind[pid]} {pid}")
            elif not self.quiet:
                self._line(f"  {self.label}: {self.kind[pid]} {pid} {status[pid]} ({len(self.done)}/{len(self.kind)} "
                           f"phases done); sweep ETA {format_eta(self.eta())}")
        self._refresh()

    def epoch(self, label: str, number: int, cap: int, metrics: dict, eta: float | None) -> bool:
        pid = self.pid_of.get(label)
        if pid is not None:
            self.base.setdefault(pid, number - 1)
            self.latest[pid] = number
        if self.live is None:
            return False
        task = self._bar(label, cap)
        self.live.update(task, completed=number, eta=format_eta(eta), info=metrics_text(metrics))
        self._refresh()
        self.live.refresh()  # every epoch drawn (also between the display's own refreshes)
        return True

    def close(self) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
        if self.live is not None:
            for label in list(self.tasks):
                if label is not None:
                    self._drop(label)
            self._refresh()
            self.live.stop()
            self.live = None

    # ---- the sweep's ETA ----
    def eta(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        weight = {p: self.cap[p] + 1 for p in self.kind}
        reached = {p: weight[p] if p in self.done else min(self.latest.get(p, 0), self.cap[p]) for p in self.kind}
        left = sum(weight.values()) - sum(reached.values())
        here = sum(reached.values()) - sum(self.base.get(p, 0) for p in self.kind)
        if left <= 0:
            return 0.0
        return (now - self.started) * left / here if here > 0 else None

    # ---- display ----
    def _count(self) -> str:
        return f"[{len(self.done)}/{len(self.kind)}]"

    def _line(self, text: str) -> None:
        stream = self.out.file if self.out is not None else sys.stderr
        print(text, file=stream, flush=True)

    def _start_live(self, out) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.live = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                             TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
                             TextColumn("{task.fields[info]}"), console=out, refresh_per_second=2)
        self.tasks = {None: self.live.add_task(self.label, total=len(self.kind), unit="phases", eta="?", info="")}
        self.live.start()
        _LIVE.append(self)

    def _bar(self, label: str, cap: int):
        """The bar of phase `label`, made if missing (with the lowest free worker number when several run)."""
        if label not in self.tasks:
            used = {self.slot[lab] for lab in self.tasks if lab is not None}
            self.slot[label] = next(n for n in range(1, len(used) + 2) if n not in used)
            worker = f"worker {self.slot[label]}: " if self.slots > 1 else ""
            self.tasks[label] = self.live.add_task(f"  {worker}{label}", total=cap or None, unit="epochs",
                                                   eta="?", info="")
        return self.tasks[label]

    def _drop(self, label: str) -> None:
        if label in self.tasks:
            self.live.remove_task(self.tasks.pop(label))

    def _refresh(self) -> None:
        if self.live is not None:
            running = len(self.tasks) - 1
            self.live.update(self.tasks[None], completed=len(self.done), eta=format_eta(self.eta()),
                             info=f"{running} running" if running else "")


class Measures:
    """Progress of `badminima measure`: a line as each measure starts and, for the Hessian measures, the
    Hessian-vector products used so far (a live line on a terminal, else a plain line every
    MEASURE_LINE_SECONDS)."""

    def __init__(self, out=None):
        self.out = out if out is not None else console()
        self.live = self.task = None
        self.name, self.started, self.last = "", time.monotonic(), 0.0

    def start(self, name: str) -> None:
        self._stop()
        self.name, self.started, self.last = name, time.monotonic(), time.monotonic()
        self._line(f"measuring {name} ...")

    def products(self, count: int) -> None:
        """`count` Hessian-vector products used so far by the current measure."""
        now = time.monotonic()
        elapsed = now - self.started
        text = f"{count} Hessian-vector products, {elapsed:.1f} s ({1000 * elapsed / max(count, 1):.0f} ms each)"
        if self.out.is_terminal:
            if self.live is None:
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
                self.live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                     TextColumn("{task.fields[info]}"), console=self.out, transient=True)
                self.task = self.live.add_task(f"  {self.name}", info="")
                self.live.start()
            self.live.update(self.task, info=text)
        elif now - self.last >= MEASURE_LINE_SECONDS:
            self.last = now
            self._line(f"  {self.name}: {text}")

    def close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _line(self, text: str) -> None:
        print(text, file=self.out.file, flush=True)
