"""The Prefect API a command reports to: PREFECT_API_URL's, or one started here and handed on to Ray's workers.

With no PREFECT_API_URL, every process that runs a flow or a task would start a temporary Prefect server of its
own (Prefect's ephemeral mode: a server subprocess, seconds each), and Ray's workers would fight over one SQLite
file. So a command that runs work on Ray starts one API (flows/api_server.py) and exports its URL before Ray
starts; Ray's workers inherit it, and a missing URL in one of them is an error rather than a second server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flows.api_server import QUIET_ENV, LocalApi, quiet_environment
from flows.environ import environment


def configured() -> str | None:
    """The Prefect API this process is told to use (PREFECT_API_URL), or None."""
    return os.environ.get("PREFECT_API_URL") or None


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when set; otherwise start one temporary API on 127.0.0.1 for this process and
    export its URL, so that every Ray worker started afterwards talks to it (no server per worker)."""
    quiet_environment()
    existing = configured()
    if existing:
        yield existing
        return
    api = LocalApi().start()
    try:
        api.wait_ready()
        with exported(api.url), api_settings(api.url):
            yield api.url
            flush_logs()
    finally:
        api.stop()


@contextmanager
def exported(url: str) -> Iterator[None]:
    """PREFECT_API_URL for the processes started from now on (Ray's workers); a missing URL in one of them must
    be an error, not a silent second server fighting over SQLite."""
    with environment({"PREFECT_API_URL": url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}):
        yield


@contextmanager
def api_settings(url: str, ui: bool = False) -> Iterator[None]:
    """This process's Prefect settings may have been read before the URL was exported (they are cached per
    context), so set it there too. Flow-run heartbeats are off: they let a long-lived API mark runs whose
    process died as crashed, but this API dies with this process, and stopping the heartbeat thread costs up to
    a second at the end of every flow run.

    Without a UI (`ui` False: the temporary API serves none), PREFECT_UI_URL is empty: Prefect's flow engine
    prints "View at <UI URL>/runs/flow-run/..." only when a UI URL is set, and it would otherwise infer one
    from the API URL, a link to a page nobody serves."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_UI_URL,
        temporary_settings,
    )

    updates = {PREFECT_API_URL: url, PREFECT_SERVER_EPHEMERAL_ENABLED: False, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if not ui:
        updates[PREFECT_UI_URL] = ""
    with temporary_settings(updates=updates):
        yield


def flush_logs() -> None:
    """Send this process's queued Prefect logs now: before the API stops, or before a Ray worker is torn down."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)


def worker_env() -> dict[str, str]:
    """What every Ray worker needs to find the one Prefect API and stay quiet."""
    keys = [*QUIET_ENV, "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_SERVER_EPHEMERAL_ENABLED"]
    return {k: os.environ[k] for k in keys if k in os.environ}
