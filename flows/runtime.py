"""The compare CLI's runtime: one Prefect API and one Ray, started side by side, for the driver and every worker.

Its parts, one job each: flows/api_server.py (the Prefect API's process), flows/prefect_api.py (which API a
process reports to, handed on to Ray's workers), flows/ray_start.py (starting or joining Ray), flows/liveness.py
(what died under a sweep) and flows/task_runner.py (the flow's task runner, for runs nothing else started Ray for).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flows import prefect_api, ray_start
from flows.api_server import LocalApi, quiet_environment
from flows.environ import environment


@contextmanager
def embedded(address: str | None = None, api: LocalApi | None = None, keep_api: bool = False) -> Iterator[str]:
    """A Prefect API and Ray, started side by side.

    `api`: one the caller started already (the CLI starts it before its own imports); else one is started here
    unless PREFECT_API_URL is set. Its URL is exported before Ray starts, so Ray's workers inherit it while the
    server is still starting: the two start-ups (each several seconds) overlap instead of adding up. The API is
    stopped on the way out unless `keep_api` (the caller's, kept up for its UI; the caller stops it)."""
    quiet_environment()
    configured = prefect_api.configured()
    if api is None and configured:
        # a profile's URL (or key) as environment variables too: local Ray workers inherit them
        with environment(prefect_api.configured_env()), ray_start.ray_cluster(address):
            yield configured
        return
    api = api or LocalApi().start()
    try:
        with prefect_api.exported(api.url), ray_start.ray_cluster(address):
            if ray_start.is_local(address):
                ray_start.warm_workers()
            api.wait_ready()
            with prefect_api.api_settings(api.url, ui=api.ui):
                yield api.url
                prefect_api.flush_logs()
    finally:
        if not keep_api:
            api.stop()
