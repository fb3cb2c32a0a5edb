"""One sweep per output location: an exclusive lock, stale temporary files, what changed since the last config,
and how an interrupted sweep is reported."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rnnbench import storage

# A URI's lock is a Prefect global concurrency limit (one slot), held under a lease the holder renews every 3/4 of
# this: a sweep killed without releasing it (kill -9) holds its output for at most this long
URI_LEASE_S = 60.0
# how long a second sweep on a URI waits for the slot before it is refused
URI_BUSY_WAIT_S = 5.0
LOCK_FILE = ".rnnbench.lock"


class SweepBusy(RuntimeError):
    """Another sweep holds the output location."""


class SweepInterrupted(RuntimeError):
    """Ray or the Prefect API died mid-sweep. The message is the one line a user needs: what died, how many jobs
    are stored, and that the same command resumes."""

    def __init__(self, what: str, stored: int, total: int, out: str) -> None:
        self.what, self.stored, self.total, self.out = what, stored, total, out
        super().__init__(f"{what} died mid-sweep: {stored} of {total} jobs are stored in {out}; run the same "
                         "command again to resume (finished jobs are not run again)")

    def __reduce__(self):
        return (SweepInterrupted, (self.what, self.stored, self.total, self.out))


def is_uri(out: str) -> bool:
    return "://" in out


# locks this process holds, by output: the CLI takes an output's lock before it starts Ray and the API (a second
# sweep is refused at once), and the flow it then runs takes the same lock again (every other way of starting the
# flow, e.g. a deployment, has only the flow's); the second time in one process is a re-entry, not a conflict
_held: dict[str, int] = {}
_held_guard = threading.Lock()


@contextmanager
def exclusive(out: str) -> Iterator[None]:
    """Hold `out` for one sweep; raise SweepBusy, naming it, when another sweep holds it.

    A local path: a lock file (OUT/.rnnbench.lock) that the OS releases when the holder dies, even by kill -9.
    A URI (object store, file://, ...): a Prefect global concurrency limit of one slot named after the output
    (`limit_name`), created when missing, on the Prefect API the sweep reports to; a second sweep waits
    URI_BUSY_WAIT_S for the slot, then is refused. Re-entrant within one process."""
    key = limit_name(out)
    with _held_guard:
        reentry = key in _held
        if reentry:
            _held[key] += 1
    if reentry:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    with ExitStack() as stack:
        stack.enter_context(_prefect_slot(out) if is_uri(out) else _lock_file(out))
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]


def _busy(out: str, detail: str = "") -> SweepBusy:
    return SweepBusy(f"another sweep is running on --out {out!r}{detail}; wait for it to finish or choose "
                     "another --out")


@contextmanager
def _lock_file(out: str) -> Iterator[None]:
    Path(out).mkdir(parents=True, exist_ok=True)
    lock = FileLock(os.path.join(out, LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise _busy(out) from None
    try:
        yield
    finally:
        lock.release()


def limit_name(out: str) -> str:
    """The Prefect global concurrency limit that guards `out`: a readable slug of it plus a hash of the exact
    text (two outputs never share a limit), within the characters a limit's name allows."""
    text = out if is_uri(out) else str(Path(out).expanduser().absolute())
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[-60:].strip("-")
    return f"rnnbench-out-{slug}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@contextmanager
def _prefect_slot(out: str) -> Iterator[None]:
    """The one slot of `out`'s global concurrency limit (Prefect's public API: the client's
    upsert_global_concurrency_limit_by_name, then prefect.concurrency.sync.concurrency), for as long as the
    sweep runs; its lease is renewed in the background and expires URI_LEASE_S after a holder dies."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    name = limit_name(out)
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, limit=1)
        except ObjectAlreadyExists:
            pass  # another sweep created it between our read and our create: it is there, with one slot
    with ExitStack() as after_release, ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=URI_BUSY_WAIT_S,
                                            lease_duration=URI_LEASE_S, strict=True, holder=_holder()))
        except TimeoutError:
            raise _busy(out, f" (Prefect global concurrency limit {name!r}; a sweep killed without releasing it "
                             f"holds it for up to {URI_LEASE_S:.0f} s)") from None
        # one limit per output in use, not one left behind per output ever swept: removed once this sweep has
        # released its slot (`stack` unwinds first), however it ended; a sweep waiting for it meanwhile is refused
        # as busy, as it would have been; a killed holder's limit stays until the next sweep there ends
        after_release.callback(_remove_limit, name)
        yield


def _remove_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            pass


def _holder():
    """The flow run holding the slot, shown by Prefect next to the limit (None outside a flow run)."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return ConcurrencyLeaseHolder(type="flow_run", id=run_id) if run_id else None


def remove_stale_temporaries(out: str) -> int:
    """Delete half-written files a killed sweep left behind (safe: the caller holds `exclusive(out)`, so nobody
    else writes there)."""
    if is_uri(out) or not Path(out).is_dir():
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


def count_stored(out: str, run_ids: list[str]) -> int:
    """How many of these jobs have a stored result under `out` (what a resume will not run again)."""
    from rnnbench.results import result_path

    count = 0
    for run_id in run_ids:
        try:
            count += storage.exists(result_path(out, run_id))
        except OSError:
            pass
    return count
