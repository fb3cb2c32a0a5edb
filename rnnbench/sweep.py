"""One sweep per output location: an exclusive lock, stale temporary files, and what changed since the last config."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rnnbench import storage


class SweepBusy(RuntimeError):
    """Another sweep holds the output location."""


@contextmanager
def exclusive(out: str) -> Iterator[None]:
    """Refuse, with a message, a second sweep on the same local `out` while one runs (a lock file that the
    OS releases when the holder dies, even by kill -9). URIs (object stores) have no such lock."""
    if "://" in out:
        yield
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    lock = FileLock(os.path.join(out, ".rnnbench.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SweepBusy(f"another sweep is running on --out {out!r}; wait for it to finish or choose another --out") \
            from None
    try:
        yield
    finally:
        lock.release()


def remove_stale_temporaries(out: str) -> int:
    """Delete half-written files a killed sweep left behind (safe: we hold the lock, nobody else writes)."""
    if "://" in out or not Path(out).is_dir():
        return 0
    stale = [p for p in Path(out).rglob(".tmp-*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def config_changes(out: str, config: dict) -> list[str]:
    """Fields that differ from the config of the last sweep on `out` (empty for a first or identical run).
    Results are keyed by a hash of each job's full spec, so a changed config extends `out` cleanly:
    matching jobs are reused, the others run, and metrics/report describe the new config."""
    path = storage.join(out, "config.json")
    previous = json.loads(storage.read_bytes(path)) if storage.exists(path) else None
    storage.write_bytes(path, json.dumps(config, indent=2, sort_keys=True).encode())
    if previous is None:
        return []
    return sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
