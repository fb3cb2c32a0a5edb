"""The embedded runtime: one Prefect API and one Ray cluster shared by the driver and every worker.

Three ways Ray is reached, all configured here so that they behave alike:
- `python -m flows.compare` (no --ray-address): `ray_cluster()` starts a private single-machine Ray bound to
  127.0.0.1 before the flow, so the task runner reuses it.
- `python -m flows.compare --ray-address HOST:PORT|auto|ray://...`: `ray_cluster(address)` joins the cluster;
  the project's code travels as `py_modules` (or the job's own `working_dir` under `ray job submit`) and the
  Prefect API URL travels as `env_vars` in the job's runtime_env.
- a Prefect deployment run (nothing pre-starts Ray): `RnnbenchRayTaskRunner` starts or joins Ray with the same
  arguments, the address coming from RAY_ADDRESS ('local' or unset: a private loopback Ray).

A private local Ray is started with Ray's public interfaces only (`ray.init` arguments and documented environment
variables, no patched internals): it listens on 127.0.0.1 only and requires a token this process makes up (see
`_local_ray_environment`); it is refused, before anything starts, when it would listen on another address.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from prefect_ray import RayTaskRunner

from flows.api_server import QUIET_ENV, LocalApi, RuntimeStartError, quiet_environment
from flows.cli import check_ray_address, fail  # noqa: F401 - fail: the CLIs' one exit path, re-exported for them

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the project's importable packages: what a remote worker needs besides the cluster's installed dependencies
PROJECT_PACKAGES = ("rnnbench", "flows", "tasks", "schemas")
# never shipped to workers (Ray also skips what the package's .gitignore lists)
UPLOAD_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"]
LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024
# set by `ray job submit` in the driver's environment: the job's runtime_env, which ray.init merges with ours
_RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when set; otherwise start one temporary API on 127.0.0.1 for this process and
    export its URL, so that every Ray worker started afterwards talks to it (no server per worker)."""
    quiet_environment()
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    api = LocalApi().start()
    try:
        api.wait_ready()
        with _exported(api.url), _temporary_api_settings(api.url):
            yield api.url
            flush_logs()
    finally:
        api.stop()


@contextmanager
def embedded(address: str | None = None, api: LocalApi | None = None, keep_api: bool = False) -> Iterator[str]:
    """The CLI's runtime: a Prefect API and Ray, started side by side.

    `api`: one the caller started already (the CLI starts it before its own imports); else one is started here
    unless PREFECT_API_URL is set. Its URL is exported before Ray starts, so Ray's workers inherit it while the
    server is still starting: the two start-ups (each several seconds) overlap instead of adding up. The API is
    stopped on the way out unless `keep_api` (the caller's, kept up for its UI; the caller stops it)."""
    quiet_environment()
    if api is None and os.environ.get("PREFECT_API_URL"):
        with ray_cluster(address):
            yield os.environ["PREFECT_API_URL"]
        return
    api = api or LocalApi().start()
    try:
        with _exported(api.url), ray_cluster(address):
            if address in (None, "", "local"):
                warm_workers()
            api.wait_ready()
            with _temporary_api_settings(api.url, ui=api.ui):
                yield api.url
                flush_logs()
    finally:
        if not keep_api:
            api.stop()


@contextmanager
def _exported(url: str) -> Iterator[None]:
    """PREFECT_API_URL for the processes started from now on (Ray's workers); a missing URL in one of them must
    be an error, not a silent second server fighting over SQLite."""
    with _environment({"PREFECT_API_URL": url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}):
        yield


@contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """Set os.environ keys; put back exactly what was there before (absent keys are removed again)."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _temporary_api_settings(url: str, ui: bool = False) -> Iterator[None]:
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


WARM_MODULES = ("rnnbench.train", "tasks.train", "tasks.datasets")


def warm_workers() -> list:
    """Have each of Ray's pre-started workers import torch and the tasks now (seconds each), while the
    Prefect API is still starting, instead of when the first dataset or job reaches it. Not waited for."""
    import ray

    @ray.remote(num_cpus=1, max_retries=0)
    def _import(names: tuple[str, ...]) -> None:
        import importlib

        for name in names:
            importlib.import_module(name)

    return [_import.remote(WARM_MODULES) for _ in range(int(ray.cluster_resources().get("CPU", 1)))]


def flush_logs() -> None:
    """Send this process's queued Prefect logs now: before the API stops, or before a Ray worker is torn down."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)


def worker_env() -> dict[str, str]:
    """What every Ray worker needs to find the one Prefect API and stay quiet."""
    keys = [*QUIET_ENV, "PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_SERVER_EPHEMERAL_ENABLED"]
    return {k: os.environ[k] for k in keys if k in os.environ}


def _job_runtime_env() -> dict[str, Any]:
    """The runtime_env `ray job submit` gave this driver ({} outside a Ray job)."""
    raw = os.environ.get(_RAY_JOB_CONFIG_ENV)
    if not raw:
        return {}
    try:
        return json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return {}


def cluster_runtime_env() -> dict[str, Any]:
    """runtime_env for joining an existing cluster: the Prefect API URL and the project's code.

    ray.init merges it with the runtime_env of a `ray job submit` job, and refuses a field (or an env var)
    set on both sides, so what the job already provides is left out: with `--working-dir .` the project is
    already on every worker's path (py_modules would ship it twice)."""
    job = _job_runtime_env()
    job_env = job.get("env_vars") or {}
    runtime_env: dict[str, Any] = {"env_vars": {k: v for k, v in worker_env().items() if k not in job_env}}
    if not any(key in job for key in ("working_dir", "py_modules", "excludes")):
        runtime_env["py_modules"] = [str(PROJECT_ROOT / name) for name in PROJECT_PACKAGES]
        runtime_env["excludes"] = list(UPLOAD_EXCLUDES)
    return runtime_env


def ray_init_kwargs(address: str | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """ray.init arguments: a private loopback cluster (address None or 'local') or joining one (anything else)."""
    quiet_environment()
    if _is_local(address):
        # "local", not None: never join a cluster that happens to run on this machine (RAY_ADDRESS,
        # /tmp/ray/ray_current_cluster). Loopback and token: _local_ray_environment, entered by the caller
        return {
            "address": "local",
            "num_cpus": num_cpus or os.cpu_count(),
            "include_dashboard": False,
            "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
            # no runtime_env: local workers inherit os.environ (PREFECT_API_URL included), and a runtime_env
            # would make Ray start fresh workers instead of using the ones it pre-started
            "log_to_driver": False,
        }
    return {"address": address, "runtime_env": cluster_runtime_env(), "log_to_driver": False}


def _is_local(address: str | None) -> bool:
    return address in (None, "", "local")


# Loopback. Ray has no documented loopback-only option on Linux: it rewrites 127.0.0.1, in ray.init's node
# address and in `ray start --node-ip-address`, to the machine's routable address, and its GCS, raylet, agents,
# workers and metrics then listen on that address or on every interface (measured, Ray 2.60). What it does
# have is its single-machine mode, the default on Windows and macOS, where a node takes the loopback address
# and every one of those ports binds 127.0.0.1. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, documented (docs.ray.io,
# "Ray Clusters Overview") as the variable that turns that mode off there (=1), turns it on on Linux (=0).
# Trade-off: a public variable used on the platform its name does not mention, read once when Ray is first
# imported; tests/test_runtime_public.py checks every port, and should a future Ray ignore the variable,
# `_check_loopback_mode` refuses to start rather than listen on the network.
LOOPBACK_MODE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
_local_token: str | None = None


def _local_ray_token() -> str:
    """One random token per process, for every private local Ray it starts: Ray's client caches the token it
    has read, so a second local Ray in the same process must get the same one."""
    global _local_token
    if _local_token is None:
        _local_token = secrets.token_hex(32)
    return _local_token


@contextmanager
def _local_ray_environment() -> Iterator[None]:
    """The environment a new private local Ray starts in, from before Ray is first imported in this process
    until that Ray is shut down (the previous values are put back after).

    - loopback: LOOPBACK_MODE_ENV (above).
    - Ray's token authentication (docs.ray.io, "Ray token authentication"), not `RAY_AUTH_MODE=disabled`:
      RAY_AUTH_MODE=token with RAY_AUTH_TOKEN, a random token made up by this process. Ray's own processes and
      workers inherit both; a client without the token is refused by the GCS, the raylet and the agents. An
      environment variable rather than Ray's default ~/.ray/auth_token: nothing is written to the user's home,
      and a long-lived token there is not reused for a cluster that lives for one run.
    Ray reads its auth mode and cluster mode once per process, when it is first imported: set later, they do not
    apply to this process (`_check_loopback_mode` notices)."""
    with _environment({**LOOPBACK_MODE_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _local_ray_token()}):
        yield


def _check_loopback_mode() -> None:
    """Refuse, before anything starts, a local Ray that would not listen on loopback only: Ray was imported in this
    process before `_local_ray_environment` (e.g. by code that joined a cluster first), or a future Ray ignores
    LOOPBACK_MODE_ENV. `ray.util.get_node_ip_address()` is the address a new local node would take."""
    import ray

    if ray.is_initialized():
        return  # ray.init itself refuses to start a second cluster
    ip = ray.util.get_node_ip_address()
    if not _is_loopback(ip):
        raise RuntimeStartError(
            f"a local Ray started here would listen on {ip}, not only on 127.0.0.1 (Ray was imported in this process "
            f"before {', '.join(f'{k}={v}' for k, v in LOOPBACK_MODE_ENV.items())} was set, or this Ray version "
            "ignores it). Start the run in a fresh process, or start a Ray cluster with token authentication "
            "yourself and pass its address (--ray-address / RAY_ADDRESS).")


def _check_bound_to_loopback(info: Any) -> None:
    """After the start: every address Ray reports for the new node is a loopback one."""
    addresses = info.address_info
    hosts = {addresses.get("node_ip_address"), str(addresses.get("gcs_address", "")).rpartition(":")[0].strip("[]")}
    if not all(_is_loopback(host) for host in hosts):
        raise RuntimeStartError(f"the local Ray reports the addresses {sorted(map(str, hosts))}, not only "
                                "loopback ones: stopped it")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_reachable(api_url: str | None, node_ips: set[str], local_ips: set[str]) -> None:
    """Raise when the Prefect API is on this machine's loopback but some Ray node is another machine:
    its workers could not report a single task (they would fail one by one, minutes later)."""
    if not api_url or not _is_loopback(urlparse(api_url).hostname):
        return
    remote = sorted(ip for ip in node_ips if ip not in local_ips and not _is_loopback(ip))
    if remote:
        raise RuntimeStartError(
            f"PREFECT_API_URL={api_url} is on this machine's loopback, but the Ray cluster has nodes on "
            f"{', '.join(remote)} that cannot reach it. Start a Prefect server every node can reach "
            "(`prefect server start --host <head-ip>`, firewalled to the cluster) or use Prefect Cloud, and "
            "export PREFECT_API_URL=http://<head-ip>:4200/api before running.")


def _check_cluster_can_reach_api(address: str) -> None:
    import ray

    node_ips = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    local_ips = set() if address.startswith("ray://") else {ray.util.get_node_ip_address()}
    check_api_reachable(os.environ.get("PREFECT_API_URL"), node_ips, local_ips)


_private_gcs: str | None = None  # the GCS address of the private local Ray this process started, if any


def is_private_ray() -> bool:
    """Whether the Ray this process is connected to is a private local one it started (one machine, whose
    resources never change), as opposed to a cluster it joined (which may scale)."""
    import ray

    if _private_gcs is None or not ray.is_initialized():
        return False
    try:
        return ray.get_runtime_context().gcs_address == _private_gcs
    except Exception:  # noqa: BLE001 - e.g. a Ray client connection, which has no GCS address here
        return False


def _init_ray(kwargs: dict[str, Any]) -> Any:
    """ray.init(**kwargs); for a new local Ray the caller has entered `_local_ray_environment()` before Ray was
    first imported."""
    global _private_gcs
    import ray

    address = kwargs.get("address")
    local = address == "local"
    if local:
        _check_loopback_mode()
    try:
        info = ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001
        where = "start a local Ray" if local else f"join the Ray cluster at {address!r}"
        raise RuntimeStartError(f"cannot {where}: {exc}") from exc
    try:
        if local:
            _check_bound_to_loopback(info)
        else:
            _check_cluster_can_reach_api(address)
    except RuntimeStartError:
        ray.shutdown()
        raise
    _private_gcs = info.address_info.get("gcs_address") if local else None
    return info


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Start a local Ray (address None) or join one (HOST:PORT, ray://..., 'auto') before the flow runs,
    and shut it down after, so that the task runner never owns Ray and worker logs are not cut off."""
    if not _is_local(address):
        check_ray_address(address)
    with ExitStack() as stack:
        if _is_local(address):
            stack.enter_context(_local_ray_environment())  # before Ray is first imported: see there
        import ray

        info = _init_ray(ray_init_kwargs(address, num_cpus))
        try:
            yield {"address": info.address_info.get("address", address), "resources": ray.cluster_resources(),
                   "session_dir": info.address_info.get("session_dir")}
        finally:
            let_worker_logs_arrive()
            ray.shutdown()


# ---- what died mid-sweep -------------------------------------------------------------------------------------

RAYLET_DIED = "Ray (the raylet of this machine's node)"
# a GCS that does not answer for this long is taken for dead (a fault-tolerant one restarts within seconds)
GCS_SILENCE_S = 30.0
_gcs_silent_since: float | None = None


def ray_death(exc: BaseException | None = None) -> str | None:
    """What of Ray has died, or None while it serves: read off `exc` (an error a task's result raised) when it
    says so, else probed: this process's node is marked dead (a raylet never comes back), or the GCS has not
    answered for GCS_SILENCE_S. Cheap enough to call every few seconds while a sweep waits."""
    global _gcs_silent_since
    import ray
    import ray.exceptions as rex

    if isinstance(exc, rex.LocalRayletDiedError):
        return RAYLET_DIED
    if exc is not None and not isinstance(exc, rex.RaySystemError):
        return None
    if not ray.is_initialized():
        return "Ray"
    try:
        nodes = ray.nodes()
    except Exception:  # noqa: BLE001 - a GCS that does not answer
        now = time.monotonic()
        _gcs_silent_since = _gcs_silent_since or now
        return "Ray (its GCS)" if exc is not None or now - _gcs_silent_since >= GCS_SILENCE_S else None
    _gcs_silent_since = None
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - e.g. a Ray client driver, which is no node's
        node_id = None
    if node_id and any(n.get("NodeID") == node_id and not n.get("Alive") for n in nodes):
        return RAYLET_DIED
    return None  # Ray answers: a RaySystemError of one task is that task's failure


def api_death(exc: BaseException, api_url: str | None = None) -> str | None:
    """'the Prefect API at URL' when `exc` is (or was caused by) a failed connection to the Prefect API and the
    API no longer answers its health check; None otherwise."""
    import httpx

    url = api_url or os.environ.get("PREFECT_API_URL")
    seen, chain = set(), exc
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, httpx.TransportError | ConnectionError):
            break
        chain = chain.__cause__ or chain.__context__
    else:
        return None
    if url and _answers(f"{url.rstrip('/')}/health"):
        return None
    return f"the Prefect API at {url}" if url else "the Prefect API"


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


_last_remote_result: float | None = None  # when the flow last received a task's result from a worker


def remote_results_received() -> None:
    """The flow has every result it waits for: the workers' last log lines were written before that moment."""
    global _last_remote_result
    _last_remote_result = time.monotonic()


def let_worker_logs_arrive() -> None:
    """Workers send their Prefect logs in batches; give the last batch time to leave before Ray stops them
    (cheaper than flushing after every task, which restarts the log worker each time). Two batch intervals
    after the last result, so the wait is over already when the flow did something else meanwhile."""
    global _last_remote_result
    wait = 2 * float(os.environ.get("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "2"))
    if _last_remote_result is not None:
        wait -= time.monotonic() - _last_remote_result
        _last_remote_result = None
    if wait > 0:
        time.sleep(wait)


class RnnbenchRayTaskRunner(RayTaskRunner):
    """RayTaskRunner that, when nothing has started Ray yet (a deployment run), starts or joins Ray exactly as
    `ray_cluster()` does: RAY_ADDRESS unset or 'local' -> a private loopback Ray; anything else (auto,
    HOST:PORT, ray://...) -> join it, shipping the code and PREFECT_API_URL in the runtime_env. It then owns
    that Ray and shuts it down at the end of the flow run.

    When Ray is already initialised (the CLI's `ray_cluster()`), it is reused and left running."""

    def __enter__(self):
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        kwargs = ray_init_kwargs(address)
        local = kwargs["address"] == "local"
        environment = ExitStack()
        if local:  # before anything below imports Ray: see _local_ray_environment
            environment.enter_context(_local_ray_environment())
        import ray

        if ray.is_initialized():
            environment.close()
            return super().__enter__()
        # the decorator's own init_kwargs (e.g. namespace) win; options that only make sense for a new local
        # cluster are dropped when joining one (ray.init refuses them there)
        extra = {k: v for k, v in self.init_kwargs.items() if local or k not in _LOCAL_ONLY_INIT_KWARGS}
        try:
            _init_ray({**kwargs, **extra})
        except BaseException:
            environment.close()
            raise
        try:
            super().__enter__()  # sees Ray initialised: reuses it
        except BaseException:
            ray.shutdown()
            environment.close()
            raise
        self._owns_ray = True
        self._ray_environment = environment
        return self

    def __exit__(self, *exc_info):
        if getattr(self, "_owns_ray", False):
            let_worker_logs_arrive()
        try:
            return super().__exit__(*exc_info)
        finally:
            environment = getattr(self, "_ray_environment", None)
            if environment is not None:
                self._ray_environment = None
                environment.close()


_LOCAL_ONLY_INIT_KWARGS = {"num_cpus", "num_gpus", "resources", "include_dashboard", "dashboard_host",
                           "dashboard_port", "object_store_memory", "_node_ip_address", "_temp_dir"}
