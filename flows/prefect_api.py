"""The Prefect API a command reports to: the one Prefect's settings name (PREFECT_API_URL in the environment or the
active profile), or one started here; either is handed on to Ray's workers.

With no PREFECT_API_URL, every process that runs a flow or a task would start a temporary Prefect server of its
own (Prefect's ephemeral mode: a server subprocess, seconds each), and Ray's workers would fight over one SQLite
file. So a command that runs work on Ray starts one API (flows/api_server.py) and exports its URL before Ray
starts; Ray's workers inherit it, and a missing URL in one of them is an error rather than a second server.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.api_server import QUIET_ENV, LocalApi, quiet_environment
from flows.environ import environment


def configured() -> str | None:
    """The Prefect API this process is told to use, as Prefect itself reads it (prefect.settings): the
    PREFECT_API_URL environment variable, else the active profile (`prefect config set PREFECT_API_URL=...`,
    `prefect cloud login`) or a settings file; None when nothing names one.

    Importing Prefect's settings takes about a second (1.2-1.3 s measured on this 2-core machine, noisy), which the
    light commands (dataset generation and validation without an API) do not pay: Prefect is asked only when it is
    imported already or some settings source besides the environment exists (`settings_files`)."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url  # the environment comes before every settings file, in Prefect as here
    if "prefect.settings" not in sys.modules and not settings_files():
        return None
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def settings_files() -> list[Path]:
    """The files from which Prefect could read settings here: the profiles file (PREFECT_PROFILES_PATH, default
    PREFECT_HOME/profiles.toml, PREFECT_HOME defaulting to ~/.prefect), and prefect.toml, .env or a pyproject.toml
    with a [tool.prefect] table in the working directory."""
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    candidates = [Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser(),
                  Path("prefect.toml"), Path(".env")]
    found = [path for path in candidates if path.is_file()]
    pyproject = Path("pyproject.toml")
    if pyproject.is_file() and "[tool.prefect" in pyproject.read_text(errors="replace"):
        found.append(pyproject)
    return found


def configured_env() -> dict[str, str]:
    """The API URL and key of Prefect's current settings as environment variables: what a Ray worker on another
    node, which has neither this environment nor this user's profile, needs to report to the same API."""
    from prefect.settings import get_current_settings

    # each from the environment where it is set there, as configured() does: Prefect reads its settings when it is
    # imported, so a variable set (or changed) in this process since is not in them yet, and it wins in Prefect too
    api = get_current_settings().api
    url = os.environ.get("PREFECT_API_URL") or api.url
    key = os.environ.get("PREFECT_API_KEY") or (api.key.get_secret_value() if api.key is not None else None)
    return {**({"PREFECT_API_URL": url} if url else {}), **({"PREFECT_API_KEY": key} if key else {})}


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when set; otherwise start one temporary API on 127.0.0.1 for this process and
    export its URL, so that every Ray worker started afterwards talks to it (no server per worker)."""
    quiet_environment()
    existing = configured()
    if existing:
        with environment(configured_env()):  # Ray's workers inherit it, whether it came from a profile or not
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
    """Send this process's queued Prefect logs now: before the API stops, or before a Ray worker is torn down.
    APILogHandler.flush() is Prefect's public call for it (it blocks until the queue is sent, at most 5 s); it
    keeps no state of its own, so a fresh handler flushes the one queue every handler feeds."""
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


def worker_env() -> dict[str, str]:
    """What every Ray worker needs to find the one Prefect API and stay quiet: the API's URL and key as this
    process's Prefect settings have them (environment or profile)."""
    keys = [*QUIET_ENV, "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_SERVER_EPHEMERAL_ENABLED"]
    return {**{k: os.environ[k] for k in keys if k in os.environ}, **configured_env()}
