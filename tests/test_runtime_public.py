"""The embedded runtime (flows/runtime.py and its parts: api_server, prefect_api, ray_start, liveness, task_runner,
environ) through Ray's and Prefect's public interfaces only, and what it must still guarantee:

- no patched internals, no underscore modules or attributes of Ray or Prefect, no private PREFECT__* variables,
  no underscore ray.init arguments (read from the source, including the code the API process runs);
- no state in module globals: what a run knows lives in objects it owns or in a context (read from the source);
- every TCP port the local Ray and the Prefect API listen on is bound to a loopback address (read from
  /proc/net/tcp{,6} and each process's sockets, for the driver and everything it started);
- the local Ray requires its token: its GCS and raylet refuse a gRPC call without it and answer one with it, its
  dashboard agent answers HTTP without it with 401;
- Ray workers inherit PREFECT_API_URL;
- nothing is left running after the driver ends, normally or by kill -9 (the API dies with it: Linux parent-death
  signal).

The driver runs in a fresh process: Ray reads its cluster mode and auth mode when it is first imported.
"""

from __future__ import annotations

import ast
import http.client
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from flows import api_server, ray_start
from tests.processes import listening

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_MODULES = ("runtime", "api_server", "prefect_api", "ray_start", "liveness", "task_runner", "environ")
SOURCES = [ROOT / "flows" / f"{name}.py" for name in RUNTIME_MODULES]
LIBRARIES = ("ray", "prefect", "prefect_ray", "uvicorn")


# ---- public interfaces only (static) -----------------------------------------------------------------------


def _programs() -> list[tuple[str, ast.Module]]:
    """The runtime's modules, and the program the API process runs (a string in api_server)."""
    return [*((path.name, ast.parse(path.read_text())) for path in SOURCES),
            ("api_server._BOOT", ast.parse(api_server._BOOT))]


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _problems(where: str, tree: ast.Module) -> list[str]:
    problems = []
    library_names: set[str] = set()  # names this program binds to Ray's or Prefect's modules and objects
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIBRARIES:
                    library_names.add(alias.asname or parts[0])
                    if any(map(_private, parts)):
                        problems.append(f"{where}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            library_names.update(alias.asname or alias.name for alias in node.names)
            names = [node.module, *(alias.name for alias in node.names)]
            if any(_private(part) for name in names for part in name.split(".")):
                problems.append(f"{where}:{node.lineno} imports from {node.module}: {names[1:]}")
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and _root_name(node) in library_names:
            problems.append(f"{where}:{node.lineno} uses {ast.unparse(node)}")
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Attribute) and _root_name(target) in library_names:
                problems.append(f"{where}:{node.lineno} assigns {ast.unparse(target)} (monkeypatching)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            problems.append(f"{where}:{node.lineno} calls {node.func.id}")
        if isinstance(node, ast.keyword) and node.arg and _private(node.arg):
            problems.append(f"{where}:{node.lineno} passes the keyword argument {node.arg}")
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                and "PREFECT__" in node.value):
            problems.append(f"{where}:{node.lineno} names a private Prefect variable: {node.value!r}")
    return problems


# every module of the project: no private module or attribute of Ray, Prefect or torch, reached through a name bound
# to one of them or to an object one of them returned (x = ray.get_runtime_context(); x.worker._mode)
PRIVATE_CHECKED_LIBRARIES = (*LIBRARIES, "torch")
PROJECT_SOURCES = sorted(path for package in ("flows", "tasks", "rnnbench", "schemas")
                         for path in (ROOT / package).rglob("*.py"))


def _library_objects(tree: ast.Module, libraries: tuple[str, ...]) -> set[str]:
    """Names bound to a library's modules, or to what an expression on one of them gives (assignment, `with ... as`,
    a for loop over one), followed through further assignments until nothing new is bound."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names
                         if alias.name.split(".")[0] in libraries)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in libraries:
            names.update(alias.asname or alias.name for alias in node.names)
    while True:
        bound = set(names)
        for node in ast.walk(tree):
            pairs = []
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                pairs = [(t, node.value) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
            elif isinstance(node, ast.NamedExpr):
                pairs = [(node.target, node.value)]
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                pairs = [(node.optional_vars, node.context_expr)]
            elif isinstance(node, ast.For | ast.comprehension):
                pairs = [(node.target, node.iter)]
            for target, value in pairs:
                if _root_name(value) in names:
                    bound.update(_bound_names(target))
        if bound == names:
            return names
        names = bound


def _bound_names(target: ast.AST) -> list[str]:
    """The plain names an assignment target binds (`x`, `a, b`), not the objects whose attribute it sets."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _bound_names(element)]
    return _bound_names(target.value) if isinstance(target, ast.Starred) else []


def _private_reaches(where: str, tree: ast.Module, libraries: tuple[str, ...] = PRIVATE_CHECKED_LIBRARIES) -> list[str]:
    problems = []
    objects = _library_objects(tree, libraries)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)])
            for module in modules:
                parts = module.split(".")
                if parts[0] in libraries and any(map(_private, parts)):
                    problems.append(f"{where}:{node.lineno} imports {module}")
        elif isinstance(node, ast.Attribute) and _private(node.attr) and _root_name(node) in objects:
            problems.append(f"{where}:{node.lineno} uses {ast.unparse(node)}")
    return problems


def test_the_project_reaches_no_private_ray_prefect_or_torch_interface():
    problems = [problem for path in PROJECT_SOURCES
                for problem in _private_reaches(str(path.relative_to(ROOT)), ast.parse(path.read_text()))]
    assert problems == []


# undocumented reaches the project once had, each with its public replacement: prefect-ray's _owns_ray (the task
# runner tracks the Ray it started itself), prefect._internal's APILogWorker.drain_all (APILogHandler.flush()),
# Ray's RAY_JOB_CONFIG_JSON_ENV_VAR (RAY_OVERRIDE_JOB_RUNTIME_ENV), get_runtime_context().worker.mode
# (get_task_id())
UNDOCUMENTED = ("_owns_ray", "prefect._internal", "RAY_JOB_CONFIG_JSON", "worker.mode", "drain_all")


def test_no_undocumented_reach_the_project_once_had_is_back():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in PROJECT_SOURCES
             for number, line in enumerate(path.read_text().splitlines(), 1) if any(u in line for u in UNDOCUMENTED)]
    assert found == []


def test_the_private_reach_checker_follows_objects_a_library_returned():
    before = """
import ray
import torch as th
from prefect.logging.handlers import APILogWorker
from prefect._internal.concurrency import services
context = ray.get_runtime_context()
mode = context.worker.mode
hidden = context._get_current_task_id()
with th.no_grad() as grad:
    grad._state
APILogWorker._instances
class Mine:
    _own = 1
Mine()._own
self.layer = th.nn.Linear(2, 2)
self._mine
info = ray.init()
node = info.address_info
node._secret
"""
    flagged = {int(problem.split(":")[1].split()[0]) for problem in _private_reaches("before", ast.parse(before))}
    assert flagged == {5, 8, 10, 11, 19}


def test_runtime_uses_only_public_ray_and_prefect_interfaces():
    problems = [problem for where, tree in _programs() for problem in _problems(where, tree)]
    assert problems == []


def test_the_checker_finds_what_the_runtime_used_to_do():
    """The static check above, on the kinds of lines the runtime's modules had before."""
    before = """
from ray._private import ray_constants
from ray._private import parameter
import ray
ray_constants.ENABLE_RAY_CLUSTER = False
parameter.RayParams.__init__ = init
session = ray._private.worker._global_node
ray.init(address="local", _node_ip_address="127.0.0.1")
SERVER_ENV = {"PREFECT__SERVER_EPHEMERAL": "1"}
"""
    flagged = {int(problem.split(":")[1].split()[0]) for problem in _problems("before", ast.parse(before))}
    assert flagged == {2, 3, 5, 6, 7, 8, 9}


@pytest.mark.parametrize("address", [None, "local", "10.0.0.5:6379", "ray://10.0.0.5:10001"])
def test_ray_init_arguments_are_public(address):
    kwargs = ray_start.ray_init_kwargs(address)
    assert [key for key in kwargs if key.startswith("_")] == []


# ---- no state in module globals (static) ----------------------------------------------------------------------

MUTATORS = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "add", "discard",
            "remove"}


def _module_state(where: str, tree: ast.Module) -> list[str]:
    """Module-level names a function rebinds (`global`) or a module-level container something changes in place
    (item assignment or deletion, augmented assignment, a mutating method)."""
    problems = [f"{where}:{node.lineno} global {', '.join(node.names)}" for node in ast.walk(tree)
                if isinstance(node, ast.Global)]
    module_names = {target.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        changed = None
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            changed = next((t.value for t in targets if isinstance(t, ast.Subscript | ast.Attribute)), None)
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                changed = node.target
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            changed = node.func.value
        if isinstance(changed, ast.Name) and changed.id in module_names:
            problems.append(f"{where}:{node.lineno} changes the module-level {changed.id}")
    return problems


def test_runtime_keeps_no_state_in_module_globals():
    problems = [problem for path in SOURCES for problem in _module_state(path.name, ast.parse(path.read_text()))]
    assert problems == []


def test_the_state_checker_finds_what_the_runtime_used_to_keep():
    """The static check above, on the kinds of lines the runtime had before it was split (four such globals)."""
    before = """
_local_token = None
_cache = {}
SEEN = []
def token():
    global _local_token
    _local_token = _local_token or "x"
def remember(key, value):
    _cache[key] = value
    SEEN.append(key)
def count():
    total = {}
    total["n"] = 1
"""
    flagged = {int(problem.split(":")[1].split()[0]) for problem in _module_state("before", ast.parse(before))}
    assert flagged == {6, 9, 10}


# ---- processes, sockets and the token, read from /proc --------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # state, ppid, ... (fields 3 onwards)


def _process_tree(root: int) -> dict[int, str]:
    """root and every process below it -> its start time (so that a reused pid is not mistaken for it)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            starts[int(entry.name)] = fields[19]
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            tree[pid] = starts[pid]
            todo.extend(children.get(pid, []))
    return tree


def _alive(tree: dict[int, str]) -> dict[int, str]:
    """The processes of `tree` still running, with their command lines."""
    out = {}
    for pid, start in tree.items():
        fields = _stat(pid)
        if fields and fields[19] == start and fields[0] not in ("Z", "X"):
            try:
                out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


def _listening_inodes() -> dict[int, tuple[str, int]]:
    """socket inode -> (address, port) of every listening TCP socket in this network namespace."""
    out = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if name == "tcp":
                host = str(ipaddress.IPv4Address(raw[::-1]))
            else:  # four little-endian 32-bit words
                host = str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
            out[int(fields[9])] = (host, int(port, 16))
    return out


def _listening(pids) -> dict[int, list[tuple[str, int]]]:
    """pid -> the (address, port) of every TCP socket it listens on."""
    inodes = _listening_inodes()
    out = {}
    for pid in pids:
        sockets = set()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                    sockets.add(inodes[int(target[8:-1])])
        except OSError:
            continue
        out[pid] = sorted(sockets)
    return out


def _is_loopback(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a dual-stack socket bound to 127.0.0.1
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _grpc_status(port: int, method: str, token: str | None) -> str:
    """The status of a unary call with an empty request, with or without Ray's bearer token. Only the status
    matters: UNAUTHENTICATED means the server refused the caller before looking at the request."""
    import grpc

    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(method)(b"", timeout=10, metadata=metadata)
            return "OK"
        except grpc.RpcError as exc:
            return exc.code().name


def _http_status(port: int) -> int | str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError, http.client.HTTPException) as exc:  # not HTTP
        return type(exc).__name__


def _wait_until(condition, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# ---- the driver, in a fresh process --------------------------------------------------------------------------

DRIVER = """
import json, os, sys
from flows import runtime

with runtime.embedded() as api_url:
    import ray

    @ray.remote
    def seen():
        return {k: os.environ.get(k) for k in ("PREFECT_API_URL", "RAY_AUTH_MODE")}

    workers = ray.get([seen.remote() for _ in range(2)])
    print(json.dumps({"api": api_url, "gcs": ray.get_runtime_context().gcs_address, "workers": workers}),
          flush=True)
    sys.stdin.readline()
print("stopped", flush=True)
"""
# Ray's DashboardAgent and RuntimeEnvAgent notice that their raylet is gone about a minute after a kill -9 of the
# driver (measured, Ray 2.60, with this runtime and with the one before it); everything else goes at once
AGENTS_LINGER_S = 120


@pytest.mark.e2e
@pytest.mark.timeout(600)
@pytest.mark.parametrize("end", ["exit", "kill -9"])
def test_local_ray_and_api_listen_on_loopback_only_require_the_token_and_leave_nothing(end, tmp_path):
    pytest.importorskip("grpc")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
                        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    log = tmp_path / "driver.log"
    with open(log, "w") as err:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=err, text=True)
    watchdog = threading.Timer(420, driver.kill)
    watchdog.start()
    tree: dict[int, str] = {}
    try:
        line = driver.stdout.readline()
        assert line, f"the driver ended before it was ready:\n{log.read_text()[-4000:]}"
        info = json.loads(line)
        api_port, gcs_port = urlparse(info["api"]).port, int(info["gcs"].rpartition(":")[2])
        # Ray's dashboard agent opens its HTTP port last, seconds after the node is up (over a minute on a loaded
        # 2-core machine, seen in CI): look once it has
        deadline = time.monotonic() + 240
        while True:
            tree.update(_process_tree(driver.pid))
            commands = _alive(tree)
            sockets = _listening(commands)
            agent = next((pid for pid, command in commands.items() if "DashboardAgent" in command), None)
            agent_http = {_http_status(port) for _, port in sockets.get(agent, [])}
            if 401 in agent_http or time.monotonic() > deadline:
                break
            time.sleep(1)

        # every port of every process, the driver's own included, is on loopback
        exposed = {f"{pid} {commands.get(pid, '?')[:60]}": [s for s in socks if not _is_loopback(s[0])]
                   for pid, socks in sockets.items()}
        assert {k: v for k, v in exposed.items() if v} == {}
        ports = {port for socks in sockets.values() for _, port in socks}
        assert {api_port, gcs_port} <= ports, (api_port, gcs_port, sockets)
        assert urlparse(info["api"]).hostname == "127.0.0.1"
        assert info["workers"] == [{"PREFECT_API_URL": info["api"], "RAY_AUTH_MODE": "token"}] * 2

        # the token (read from the GCS's environment): the GCS and the raylet refuse a call without it
        gcs_pid = next(pid for pid, socks in sockets.items() if any(port == gcs_port for _, port in socks))
        gcs_env = _environ(gcs_pid)
        assert gcs_env.get("RAY_AUTH_MODE") == "token" and len(gcs_env.get("RAY_AUTH_TOKEN", "")) >= 32
        token = gcs_env["RAY_AUTH_TOKEN"]
        # Ray's internal gRPC methods (named here for the test only): only the status of the call matters
        cluster_id = "/ray.rpc.NodeInfoGcsService/GetClusterId"
        assert _grpc_status(gcs_port, cluster_id, None) == "UNAUTHENTICATED"
        assert _grpc_status(gcs_port, cluster_id, "0" * 64) == "UNAUTHENTICATED"
        assert _grpc_status(gcs_port, cluster_id, token) == "OK"
        raylet = next(pid for pid, command in commands.items() if "raylet/raylet" in command)
        node_stats = "/ray.rpc.NodeManagerService/GetNodeStats"
        without = {port: _grpc_status(port, node_stats, None) for _, port in sockets[raylet]}
        with_token = {port: _grpc_status(port, node_stats, token) for _, port in sockets[raylet]}
        assert "UNAUTHENTICATED" in without.values() and "OK" not in without.values(), without
        assert "OK" in with_token.values(), with_token
        assert 401 in agent_http, (agent, agent_http)

        if end == "exit":
            driver.stdin.write("\n")
            driver.stdin.flush()
            assert driver.wait(timeout=120) == 0, log.read_text()[-4000:]
            linger = 30.0
        else:
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait()
            linger = AGENTS_LINGER_S
        assert _wait_until(lambda: not _alive({p: s for p, s in tree.items() if "Agent" not in commands.get(p, "")}),
                           30), _alive(tree)
        assert _wait_until(lambda: not _alive(tree), linger), _alive(tree)
        assert not listening(api_port) and not listening(gcs_port)
    finally:
        watchdog.cancel()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in _alive(tree):  # only what this test's driver started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---- the Prefect API named by the user's profile ---------------------------------------------------------------

PROFILE_PROBE = """
import json, os, sys
from pathlib import Path
from flows import compare_args, prefect_api

checked = compare_args.preflight(["--preset", "smoke", "--out", sys.argv[1]])
children = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and
            (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
print(json.dumps({"started": checked.api is not None, "children": children, "url": prefect_api.configured(),
                  "workers": prefect_api.worker_env()}))
"""


def test_a_profile_set_api_url_is_used_and_no_local_api_is_started(tmp_path):
    """`prefect config set PREFECT_API_URL=...` (or `prefect cloud login`) writes the active profile, not the
    environment: the CLI reads it as Prefect does, starts no API of its own, and hands URL and key to Ray's
    workers (a worker on another node has no profile)."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    url = "http://10.1.2.3:4200/api"
    (home / "profiles.toml").write_text(
        f'active = "team"\n\n[profiles.team]\nPREFECT_API_URL = "{url}"\nPREFECT_API_KEY = "pnu_test"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    result = subprocess.run([sys.executable, "-c", PROFILE_PROBE, str(tmp_path / "out")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["started"] is False and seen["children"] == [], seen
    assert "local Prefect API starting" not in result.stderr
    assert seen["url"] == url
    assert seen["workers"]["PREFECT_API_URL"] == url and seen["workers"]["PREFECT_API_KEY"] == "pnu_test"


# ---- dependency floors that match what the code calls ----------------------------------------------------------

# what the code calls, and the first release that has it (read off the released wheels, 2026-12-04): Prefect's
# concurrency(holder=...) and ConcurrencyLeaseHolder (rnnbench/sweep.py) are in 3.4.19, not 3.4.18; prefect-ray's
# RayTaskRunner leaves a Ray it did not start running from 0.5.0 (0.4.5 shuts down any; flows/task_runner.py);
# Ray's token authentication (flows/ray_start.py) from 2.52
FLOORS = {"prefect": (3, 4, 19), "prefect-ray": (0, 5), "ray": (2, 52)}


def test_dependency_floors_are_the_releases_that_have_what_the_code_calls():
    import re
    import tomllib

    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?>=([0-9.]+).*", requirement.replace(" ", ""))
        if match:
            floors[match[1].lower()] = tuple(int(part) for part in match[2].split("."))
    for name, floor in FLOORS.items():
        assert floors.get(name, ()) >= floor, f"{name}: pyproject.toml allows {floors.get(name)}, the code needs " \
                                               f"{floor}"
