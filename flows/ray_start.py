"""Starting or joining Ray: a private local Ray on loopback with a token, or a cluster, and the session that results.

Three ways Ray is reached, all configured here so that they behave alike:
- `python -m flows.compare` (no --ray-address): `ray_cluster()` starts a private single-machine Ray bound to
  127.0.0.1 before the flow, so the task runner reuses it.
- `python -m flows.compare --ray-address HOST:PORT|auto|ray://...`: `ray_cluster(address)` joins the cluster;
  the project's code travels as `py_modules` (beside the job's own `working_dir` under `ray job submit`) and the
  Prefect API URL travels as `env_vars` in the job's runtime_env.
- a Prefect deployment run (nothing pre-starts Ray): the task runner (flows/task_runner.py) starts or joins Ray
  with the same arguments, the address coming from RAY_ADDRESS ('local' or unset: a private loopback Ray).

A private local Ray is started with Ray's public interfaces only (`ray.init` arguments and documented environment
variables, no patched internals): it listens on 127.0.0.1 only and requires a token this process makes up (see
`local_ray_environment`); it is refused, before anything starts, when it would listen on another address.

What whoever started or joined Ray knows about it (whether it is a private one, when the flow last got a result
from a worker, whether it is stopping already) is a `RaySession`, current in the context that entered it: the flow
reads it from there, and tells it when it needs Ray no more (`release_ray`).
"""

from __future__ import annotations

import gc
import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flows.api_server import RuntimeStartError, quiet_environment
from flows.cli import check_ray_address
from flows.environ import environment
from flows.prefect_api import configured, worker_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the project's importable packages: what a remote worker needs besides the cluster's installed dependencies
PROJECT_PACKAGES = ("rnnbench", "flows", "tasks", "schemas")
# never shipped to workers (Ray also skips what the package's .gitignore lists)
UPLOAD_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"]
LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024
# ray.init under `ray job submit`: the driver's runtime_env fields win over the job's where both set one
JOB_RUNTIME_ENV_OVERRIDE = {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}
# what a Ray worker imports before its first dataset or job: see warm_workers
WARM_MODULES = ("rnnbench.train", "tasks.train", "tasks.datasets")
# ray.init options that only make sense for a new local cluster (ray.init refuses them when joining one)
LOCAL_ONLY_INIT_KWARGS = frozenset({"num_cpus", "num_gpus", "resources", "include_dashboard", "dashboard_host",
                                    "dashboard_port", "object_store_memory", "_node_ip_address", "_temp_dir"})


# ---- the session: what the code that started or joined Ray knows about it -----------------------------------


@dataclass
class RaySession:
    """The Ray this process started or joined, and which it stops (`stop`). `private_gcs`: the GCS address of a
    private local Ray this process started (None for a cluster it joined); `last_result`: when the flow last
    received a task's result from a worker (time.monotonic), so that the worker logs' grace at shutdown can count
    from it; `stopping`: the thread stopping Ray once the flow has released it."""

    address: str | None
    session_dir: str | None = None
    private_gcs: str | None = None
    last_result: float | None = None
    stopping: threading.Thread | None = field(default=None, repr=False)
    stop_error: BaseException | None = field(default=None, repr=False)

    def is_private(self) -> bool:
        """Whether Ray, as connected now, is the private local one this session started (one machine, whose
        resources never change), as opposed to a cluster it joined (which may scale)."""
        import ray

        if self.private_gcs is None or not ray.is_initialized():
            return False
        try:
            return ray.get_runtime_context().gcs_address == self.private_gcs
        except Exception:  # noqa: BLE001 - e.g. a Ray client connection, which has no GCS address here
            return False

    def results_received(self) -> None:
        """The flow has every result it waits for: the workers' last log lines were written before that moment."""
        self.last_result = time.monotonic()

    def let_worker_logs_arrive(self) -> None:
        """Workers send their Prefect logs in batches; give the last batch time to leave before Ray stops them
        (cheaper than flushing after every task, which restarts the log worker each time). Two batch intervals
        after the last result, so the wait is over already when the flow did something else meanwhile."""
        wait = 2 * float(os.environ.get("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "2"))
        if self.last_result is not None:
            wait -= time.monotonic() - self.last_result
            self.last_result = None
        if wait > 0:
            time.sleep(wait)

    def release(self) -> None:
        """The flow has every result it waits for and asks nothing more of Ray: stop it now, in the background,
        while the flow writes its outputs. Ray's shutdown is a second or more of waiting (it stops its processes
        one after the other), plus the workers' logs' grace, which then overlap the metrics and the report
        instead of following them. `stop()` waits for it.

        The caller must hold no Ray object any more (no future, no ObjectRef): one freed after the shutdown has
        begun, in another thread than the one shutting down, ends the whole process ("The core worker has
        already been shutdown", Ray 2.60). Garbage left in reference cycles is collected here, first."""
        self.results_received()
        if self.stopping is None:
            gc.collect()
            self.stopping = threading.Thread(target=self._shutdown, name="rnnbench-ray-stop", daemon=True)
            self.stopping.start()

    def stop(self) -> None:
        """Shut Ray down once the workers' logs have had their grace; or wait until the shutdown `release()`
        began is over (and raise what it raised)."""
        if self.stopping is None:
            self._shutdown()
            return
        self.stopping.join()
        if self.stop_error is not None:
            raise self.stop_error

    def _shutdown(self) -> None:
        import ray

        try:
            self.let_worker_logs_arrive()
            ray.shutdown()
        except BaseException as exc:  # noqa: BLE001 - handed to stop(), in the thread that owns Ray
            if self.stopping is None:
                raise
            self.stop_error = exc


# A context variable, not a module global: a session belongs to the code that made it current (`current()`) and to
# the flow run that code wraps, and is nobody's once that code has left the block
_SESSION: ContextVar[RaySession | None] = ContextVar("rnnbench_ray_session", default=None)


def session() -> RaySession | None:
    """The Ray session of this context: the one `ray_cluster()` or the task runner entered, else None."""
    return _SESSION.get()


@contextmanager
def current(ray_session: RaySession) -> Iterator[RaySession]:
    """Make `ray_session` the session of this context until the block ends."""
    token = _SESSION.set(ray_session)
    try:
        yield ray_session
    finally:
        _SESSION.reset(token)


def is_private_ray() -> bool:
    """Whether the Ray this context uses is a private local one it started (see RaySession.is_private)."""
    current_session = session()
    return current_session is not None and current_session.is_private()


def release_ray() -> None:
    """The flow asks nothing more of Ray: the session of this context, if any, stops it in the background (see
    RaySession.release); whoever entered the session still waits for that at its end."""
    current_session = session()
    if current_session is not None:
        current_session.release()


# ---- ray.init's arguments ----------------------------------------------------------------------------------


def cluster_runtime_env() -> dict[str, Any]:
    """runtime_env for joining an existing cluster: the Prefect API URL and key, and the project's code.

    Under `ray job submit`, ray.init merges this with the job's own runtime_env and would refuse a field (or an
    env var) set on both sides; `init_ray` joins with RAY_OVERRIDE_JOB_RUNTIME_ENV=1, Ray's documented switch
    for "the driver's fields win" (docs.ray.io, "Environment Dependencies"; ray-project/ray#39208), instead of
    reading the job's runtime_env from a variable Ray sets for itself. The job's working_dir stays; the env vars
    are the same values (the job's env vars are this driver's environment too)."""
    return {"env_vars": worker_env(), "py_modules": [str(PROJECT_ROOT / name) for name in PROJECT_PACKAGES],
            "excludes": list(UPLOAD_EXCLUDES)}


def ray_init_kwargs(address: str | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """ray.init arguments: a private loopback cluster (address None or 'local') or joining one (anything else)."""
    quiet_environment()
    if is_local(address):
        # "local", not None: never join a cluster that happens to run on this machine (RAY_ADDRESS,
        # /tmp/ray/ray_current_cluster). Loopback and token: local_ray_environment, entered by the caller
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


def is_local(address: str | None) -> bool:
    return address in (None, "", "local")


# ---- a private local Ray: loopback and token ---------------------------------------------------------------

# Loopback. Ray has no documented loopback-only option on Linux: it rewrites 127.0.0.1, in ray.init's node
# address and in `ray start --node-ip-address`, to the machine's routable address, and its GCS, raylet, agents,
# workers and metrics then listen on that address or on every interface (measured, Ray 2.60). What it does
# have is its single-machine mode, the default on Windows and macOS, where a node takes the loopback address
# and every one of those ports binds 127.0.0.1. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, documented (docs.ray.io,
# "Ray Clusters Overview") as the variable that turns that mode off there (=1), turns it on on Linux (=0).
# Trade-off: a public variable used on the platform its name does not mention, read once when Ray is first
# imported; tests/test_runtime_public.py checks every port, and should a future Ray ignore the variable,
# `check_loopback_mode` refuses to start rather than listen on the network.
LOOPBACK_MODE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# One random token per process, made when this module is first imported, for every private local Ray it starts:
# Ray's client caches the token it has read, so a second local Ray in the same process must get the same one.
_PROCESS_TOKEN = secrets.token_hex(32)


@contextmanager
def local_ray_environment() -> Iterator[None]:
    """The environment a new private local Ray starts in, from before Ray is first imported in this process
    until that Ray is shut down (the previous values are put back after).

    - loopback: LOOPBACK_MODE_ENV (above).
    - Ray's token authentication (docs.ray.io, "Ray token authentication"), not `RAY_AUTH_MODE=disabled`:
      RAY_AUTH_MODE=token with RAY_AUTH_TOKEN, a random token made up by this process. Ray's own processes and
      workers inherit both; a client without the token is refused by the GCS, the raylet and the agents. An
      environment variable rather than Ray's default ~/.ray/auth_token: nothing is written to the user's home,
      and a long-lived token there is not reused for a cluster that lives for one run.
    Ray reads its auth mode and cluster mode once per process, when it is first imported: set later, they do not
    apply to this process (`check_loopback_mode` notices)."""
    with environment({**LOOPBACK_MODE_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _PROCESS_TOKEN}):
        yield


def check_loopback_mode() -> None:
    """Refuse, before anything starts, a local Ray that would not listen on loopback only: Ray was imported in this
    process before `local_ray_environment` (e.g. by code that joined a cluster first), or a future Ray ignores
    LOOPBACK_MODE_ENV. `ray.util.get_node_ip_address()` is the address a new local node would take."""
    import ray

    if ray.is_initialized():
        return  # ray.init itself refuses to start a second cluster
    ip = ray.util.get_node_ip_address()
    if not is_loopback(ip):
        raise RuntimeStartError(
            f"a local Ray started here would listen on {ip}, not only on 127.0.0.1 (Ray was imported in this process "
            f"before {', '.join(f'{k}={v}' for k, v in LOOPBACK_MODE_ENV.items())} was set, or this Ray version "
            "ignores it). Start the run in a fresh process, or start a Ray cluster with token authentication "
            "yourself and pass its address (--ray-address / RAY_ADDRESS).")


def _check_bound_to_loopback(info: Any) -> None:
    """After the start: every address Ray reports for the new node is a loopback one."""
    addresses = info.address_info
    hosts = {addresses.get("node_ip_address"), str(addresses.get("gcs_address", "")).rpartition(":")[0].strip("[]")}
    if not all(is_loopback(host) for host in hosts):
        raise RuntimeStartError(f"the local Ray reports the addresses {sorted(map(str, hosts))}, not only "
                                "loopback ones: stopped it")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- a cluster: can its nodes reach the Prefect API? -------------------------------------------------------


def check_api_reachable(api_url: str | None, node_ips: set[str], local_ips: set[str]) -> None:
    """Raise when the Prefect API is on this machine's loopback but some Ray node is another machine:
    its workers could not report a single task (they would fail one by one, minutes later)."""
    if not api_url or not is_loopback(urlparse(api_url).hostname):
        return
    remote = sorted(ip for ip in node_ips if ip not in local_ips and not is_loopback(ip))
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
    check_api_reachable(configured(), node_ips, local_ips)


# ---- starting it -------------------------------------------------------------------------------------------


def init_ray(kwargs: dict[str, Any]) -> RaySession:
    """ray.init(**kwargs), checked: a new local Ray on loopback only, a joined cluster able to reach the Prefect
    API (else Ray is shut down again and RuntimeStartError raised). For a new local Ray the caller has entered
    `local_ray_environment()` before Ray was first imported."""
    import ray

    address = kwargs.get("address")
    local = address == "local"
    if local:
        check_loopback_mode()
    try:
        with environment({} if local else JOB_RUNTIME_ENV_OVERRIDE):
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
    addresses = info.address_info
    return RaySession(addresses.get("address", address), addresses.get("session_dir"),
                      addresses.get("gcs_address") if local else None)


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Start a local Ray (address None) or join one (HOST:PORT, ray://..., 'auto') before the flow runs,
    and shut it down after, so that the task runner never owns Ray and worker logs are not cut off."""
    if not is_local(address):
        check_ray_address(address)
    with ExitStack() as stack:
        if is_local(address):
            stack.enter_context(local_ray_environment())  # before Ray is first imported: see there
        import ray

        ray_session = stack.enter_context(current(init_ray(ray_init_kwargs(address, num_cpus))))
        try:
            yield {"address": ray_session.address, "resources": ray.cluster_resources(),
                   "session_dir": ray_session.session_dir}
        finally:
            ray_session.stop()


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
