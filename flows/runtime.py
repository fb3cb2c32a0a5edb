"""The embedded runtime: one Prefect API and one Ray cluster shared by the driver and every worker."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

# Set before Prefect or Ray start: there is no internet, and telemetry only produces errors.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    # workers send their logs every 0.5 s instead of 2 s, so little is in flight when a task ends
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class RuntimeStartError(RuntimeError):
    """Prefect or Ray could not be started or reached; the message says which and where."""


def quiet_environment() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when set; otherwise start one temporary API on 127.0.0.1 for this process and
    export its URL, so that every Ray worker started afterwards talks to it (no server per worker)."""
    quiet_environment()
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    try:
        server.start(timeout=120)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no API", said once, clearly
        raise RuntimeStartError(f"could not start the local Prefect API: {exc}") from exc
    os.environ["PREFECT_API_URL"] = server.api_url
    # a missing URL in a worker must be an error, not a silent second server fighting over SQLite
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    try:
        yield server.api_url
    finally:
        flush_logs()
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.pop("PREFECT_SERVER_EPHEMERAL_ENABLED", None)
        server.stop()


def flush_logs() -> None:
    """Send this process's queued Prefect logs now: before the API stops, or before a Ray worker is torn down."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail within seconds, naming the address, when nothing listens there (ray.init would wait minutes)."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT, 'auto' or 'local'")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise RuntimeStartError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None


def worker_env() -> dict[str, str]:
    """What every Ray worker needs to find the one Prefect API and stay quiet."""
    keys = [*QUIET_ENV, "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_SERVER_EPHEMERAL_ENABLED"]
    return {k: os.environ[k] for k in keys if k in os.environ}


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Start a local Ray (address None) or join one (HOST:PORT, ray://..., 'auto') before the flow runs,
    and shut it down after, so that the task runner never owns Ray and worker logs are not cut off."""
    import ray

    quiet_environment()
    runtime_env = {"env_vars": worker_env()}
    if address is None:
        # a single-machine cluster bound to loopback: no token needed, nothing exposed
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        info = ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=512 * 1024 * 1024,
            runtime_env=runtime_env,
            log_to_driver=False,
        )
    else:
        check_ray_address(address)
        # the project's code travels with the job; the rest of the environment is the cluster's own
        runtime_env["py_modules"] = [str(PROJECT_ROOT / name) for name in ("rnnbench", "flows", "tasks", "schemas")]
        try:
            info = ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001
            raise RuntimeStartError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc
    try:
        yield {"address": info.address_info.get("address", address), "resources": ray.cluster_resources()}
    finally:
        ray.shutdown()


def fail(message: str, code: int = 2) -> None:
    """CLI exit for bad input: one clear line on stderr, non-zero status."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
