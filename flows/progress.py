"""Progress of a sweep's stages (datasets, jobs) for a person: a bar on a terminal, else a log line every ~10 s.

Both say the same: done/total, failures, and for jobs an ETA from the cost model (rnnbench.scheduling), scaled by
the pace measured so far in this run once some jobs have finished."""

from __future__ import annotations

import logging
import os
import queue
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

# seconds between two progress lines when stdout is not a terminal (RNNBENCH_PROGRESS_SECONDS overrides it)
LOG_INTERVAL_S = 10.0


def log_interval() -> float:
    try:
        return max(0.5, float(os.environ.get("RNNBENCH_PROGRESS_SECONDS", LOG_INTERVAL_S)))
    except ValueError:
        return LOG_INTERVAL_S


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StageProgress:
    """done/total of one stage, reported as a rich bar when stdout is a terminal, else as log lines: one when the
    stage starts, one every `interval` seconds while it runs, one when it ends.

    `estimates`: cost-model seconds per item (jobs); with them the line carries an ETA. Before anything has
    finished in this run the ETA is the remaining estimate spread over `slots` parallel workers; after, it is
    the remaining estimate at the pace measured so far (estimated seconds finished per wall-clock second)."""

    def __init__(self, what: str, total: int, logger: logging.Logger | logging.LoggerAdapter, *, done: int = 0,
                 estimates: dict[str, float] | None = None, slots: int = 1, terminal: bool | None = None,
                 interval: float | None = None) -> None:
        self.what, self.total, self.logger = what, total, logger
        self.done, self.failed = done, 0
        self.estimates = estimates or {}
        self.remaining_s = sum(self.estimates.values())
        self.finished_s = 0.0
        self.slots = max(1, slots)
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self.interval = log_interval() if interval is None else interval
        self.started = time.monotonic()
        self._last_line = 0.0
        self._last_done: int | None = None
        self._bar: Any = None
        self._bar_task: Any = None

    # ---- what has happened ----------------------------------------------------------------------------------

    def advance(self, keys: Iterable[str] = (), n: int | None = None, failed: int = 0) -> None:
        """Items `keys` (or `n` items without estimates) finished, `failed` of them failed."""
        keys = list(keys)
        for key in keys:
            estimate = self.estimates.get(key, 0.0)
            self.remaining_s -= estimate
            self.finished_s += estimate
        self.done += len(keys) if n is None else n
        self.failed += failed
        self._refresh()

    def eta_seconds(self) -> float | None:
        if not self.estimates:
            return None
        remaining = max(0.0, self.remaining_s)
        elapsed = time.monotonic() - self.started
        if self.finished_s > 0 and elapsed > 1.0:
            return remaining / (self.finished_s / elapsed)
        return remaining / self.slots

    def line(self) -> str:
        text = f"{self.what}: {self.done}/{self.total} done"
        if self.estimates or self.failed:
            text += f", {self.failed} failed"
        if self.done >= self.total:
            return f"{text}, in {duration(time.monotonic() - self.started)}"
        eta = self.eta_seconds()
        if eta is not None:
            text += f", ETA ~{duration(eta)} (cost model)"
        return text

    # ---- showing it -----------------------------------------------------------------------------------------

    def __enter__(self) -> StageProgress:
        if self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn(f"[bold]{self.what}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False)
            self._bar.__enter__()
            self._bar_task = self._bar.add_task(self.what, total=self.total, completed=self.done,
                                                status=self._status())
        else:
            self._log()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.__exit__(*exc_info)
            self._bar = None
        elif exc_info[0] is None and self._last_done != self.done:
            self._log()  # the final count, unless a tick has just said it

    def tick(self) -> None:
        """Called at least every `interval` seconds while the stage runs."""
        if self._bar is not None:
            self._refresh()
        elif time.monotonic() - self._last_line >= self.interval:
            self._log()

    def _status(self) -> str:
        parts = [f"{self.failed} failed"] if self.estimates or self.failed else []
        eta = self.eta_seconds() if self.done < self.total else None
        if eta is not None:
            parts.append(f"ETA ~{duration(eta)} (cost model)")
        return ", ".join(parts)

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._bar_task, completed=self.done, status=self._status())

    def _log(self) -> None:
        self.logger.info("%s", self.line())
        self._last_line = time.monotonic()
        self._last_done = self.done


def wait_each(futures: Iterable[Any], on_done: Callable[[Any], None], progress: StageProgress,
              alive: Callable[[], None] | None = None) -> None:
    """Call on_done(future) for each future as it completes (Prefect's public add_done_callback), and
    progress.tick() at least every progress.interval seconds meanwhile (also, when given, `alive()`, which
    raises when what runs the futures has died)."""
    pending = list(futures)
    finished: queue.Queue = queue.Queue()
    for future in pending:
        future.add_done_callback(finished.put)
    every = min(progress.interval, 5.0)
    remaining = len(pending)
    while remaining:
        try:
            future = finished.get(timeout=every)
        except queue.Empty:
            if alive is not None:
                alive()
            progress.tick()
            continue
        remaining -= 1
        on_done(future)
        progress.tick()
