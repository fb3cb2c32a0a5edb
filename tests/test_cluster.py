"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`), and the comparison
run against it the way a cluster user runs it: `python -m flows.compare --ray-address HOST:PORT`.

Measured facts this test is built on (Ray 2.60, Linux):
- `ray start --node-ip-address 127.0.0.1` is rewritten to the machine's routable address, and the GCS listens
  on every interface; a worker node cannot join a loopback-only head. So the cluster uses token auth
  (RAY_AUTH_MODE=token, a fresh 0600 token file), exactly as a shared cluster should, not `disabled`.
- Both nodes share the host name, so a metrics row's `node` (socket.gethostname()) cannot tell them apart: the
  Ray node that ran each job is read from the row's `ray_node_id` when the trainer records it, else from the
  Ray state API (task name `train-evaluate`).
- `ray stop` would kill every Ray on the machine (other tests' too): the nodes are started in their own process
  groups, and teardown kills exactly those groups.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import ray_start
from flows.api_server import RuntimeStartError
from tests.processes import free_port, kill_group, processes_mentioning

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OBJECT_STORE_BYTES = "200000000"


# ---- the API-reachability check (no cluster needed) --------------------------------------------------------


def test_loopback_api_refused_when_a_node_is_another_machine():
    local = {"10.0.0.5"}
    with pytest.raises(RuntimeStartError, match="10.0.0.9"):
        ray_start.check_api_reachable("http://127.0.0.1:4200/api", {"10.0.0.5", "10.0.0.9"}, local)
    # every node on this machine (the loopback test cluster), or an API every node can reach: fine
    ray_start.check_api_reachable("http://127.0.0.1:4200/api", {"10.0.0.5"}, local)
    ray_start.check_api_reachable("http://localhost:4200/api", {"127.0.0.1"}, set())
    ray_start.check_api_reachable("http://10.0.0.5:4200/api", {"10.0.0.5", "10.0.0.9"}, local)
    ray_start.check_api_reachable(None, {"10.0.0.9"}, local)


def test_cluster_runtime_env_ships_code_and_api(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://10.0.0.5:4200/api")
    env = ray_start.cluster_runtime_env()
    assert env["env_vars"]["PREFECT_API_URL"] == "http://10.0.0.5:4200/api"
    assert [Path(p).name for p in env["py_modules"]] == list(ray_start.PROJECT_PACKAGES)
    assert all((Path(p) / "__init__.py").is_file() for p in env["py_modules"])
    # under `ray job submit --working-dir . --runtime-env-json '{"env_vars": {"PREFECT_API_URL": ...}}'` the job
    # carries both too: ray.init is told, through Ray's documented switch, that the driver's fields win
    assert ray_start.JOB_RUNTIME_ENV_OVERRIDE == {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}


# ---- the cluster configs in deploy/ (static) ---------------------------------------------------------------


def test_ray_cluster_launcher_config_is_valid_and_safe():
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text()))
    validate_config(config)  # what `ray up` checks first
    types = config["available_node_types"]
    assert any(t["resources"].get("GPU") for t in types.values()), "no GPU worker type"
    assert types[config["head_node_type"]]["resources"].get("CPU") == 0
    head, workers = " ".join(config["head_start_ray_commands"]), " ".join(config["worker_start_ray_commands"])
    for commands in (head, workers):
        assert "RAY_AUTH_MODE=token" in commands and "RAY_AUTH_TOKEN_PATH=" in commands
    assert "--dashboard-host=127.0.0.1" in head
    assert "pip install" in " ".join(config["setup_commands"]) and "~/rnnbench" in " ".join(config["setup_commands"])


def test_kuberay_manifest_has_gpu_workers_and_token_auth():
    import yaml

    # the file also defines the ServiceAccount and the Prefect server the cluster names (tests/test_kuberay.py)
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kuberay-raycluster.yaml").read_text()) if d]
    (manifest,) = [d for d in docs if d["kind"] == "RayCluster"]
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = manifest["spec"]
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    assert head["rayStartParams"]["num-cpus"] == "0"
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if any("nvidia.com/gpu" in c["resources"]["limits"] for c in g["template"]["spec"]["containers"])]
    assert gpu_groups, "no GPU worker group"
    # token auth through spec.authOptions, which KubeRay turns into every Ray container's RAY_AUTH_MODE and
    # RAY_AUTH_TOKEN (and the autoscaler's): no Ray container sets them itself, so none holds a token of its own
    assert spec["authOptions"] == {"mode": "token", "secretName": "rnnbench-ray-token"}
    ray_containers = [c for c in head["template"]["spec"]["containers"] if c["name"] == "ray-head"] + [
        c for g in spec["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]]
    assert ray_containers
    for container in ray_containers:
        assert not {e["name"] for e in container.get("env", [])} & {"RAY_AUTH_TOKEN"}, container["name"]


# ---- the cluster -------------------------------------------------------------------------------------------


STATE_QUERY = textwrap.dedent("""
    import json, sys
    from ray.util.state import list_nodes, list_tasks
    address, what = sys.argv[1], sys.argv[2]
    if what == "nodes":
        rows = [{"node_id": n.node_id, "state": n.state, "resources": n.resources_total}
                for n in list_nodes(address=address, limit=100)]
    else:
        rows = [{"name": t.name, "node_id": t.node_id, "state": t.state}
                for t in list_tasks(address=address, filters=[("name", "=", what)], detail=True, limit=10000,
                                    raise_on_missing_output=False)]
    print(json.dumps(rows))
""")


class Cluster:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.groups: list[int] = []
        self.head_id = self.worker_id = ""
        self.store: ObjectStore | None = None

    def ray_start(self, name: str, args: list[str]) -> None:
        log = self.tmp / f"{name}.log"
        # each node in a working directory of its own, as on separate machines: a relative path resolved by a
        # worker instead of the driver lands somewhere nobody else looks
        cwd = self.tmp / f"node-{name}"
        cwd.mkdir(exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(BIN / "ray"), "start", *args], env=self.env, cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.groups.append(proc.pid)  # its daemons (GCS, raylet, workers, ...) stay in this process group
        rc = proc.wait(timeout=180)
        assert rc == 0, f"ray start ({name}) -> {rc}:\n{log.read_text(errors='replace')[-4000:]}"

    def query(self, what: str) -> list[dict]:
        result = subprocess.run([sys.executable, "-c", STATE_QUERY, self.dashboard, what], env=self.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def alive_nodes(self) -> dict[str, dict]:
        return {n["node_id"]: n["resources"] for n in self.query("nodes") if n["state"] == "ALIVE"}

    def stop(self) -> None:
        for pgid in reversed(self.groups):
            kill_group(pgid, grace=10.0)


class ObjectStore:
    """An S3-protocol server on loopback (moto's server mode) and the environment that points pyarrow at it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "rnnbench-test",
                    "AWS_SECRET_ACCESS_KEY": "rnnbench-test", "AWS_REGION": "us-east-1",
                    "AWS_EC2_METADATA_DISABLED": "true"}
        self.log = tmp / "s3.log"
        self.group: int | None = None

    def start(self) -> None:
        import urllib.request

        with open(self.log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.group = proc.pid
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
                time.sleep(0.2)

    def filesystem(self):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(access_key=self.env["AWS_ACCESS_KEY_ID"], secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
                                 region=self.env["AWS_REGION"], endpoint_override=self.endpoint, scheme="http",
                                 allow_bucket_creation=True)

    def stop(self) -> None:
        if self.group is not None:
            kill_group(self.group, grace=5.0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # short: Ray's unix socket paths live under it (sun_path is limited to 107 bytes)
    tmp = Path(tempfile.mkdtemp(prefix="rbc-", dir="/tmp"))
    token = tmp / "auth_token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_", "AWS_"))}
    # every node holds the object store's address and credentials, as cluster nodes hold theirs (an instance
    # role, or the AWS_* variables of each node): nothing about the store travels with the job
    store = ObjectStore(tmp)
    store.start()
    env.update(store.env)
    env.update({
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0",
        "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    c = Cluster(tmp, env)
    c.store = store
    started = time.monotonic()
    try:
        c.ray_start("head", [
            "--head", "--node-ip-address", "127.0.0.1", "--port", str(c.gcs_port), "--num-cpus", "1",
            "--resources", '{"head_node": 1}', "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(c.dashboard_port), "--ray-client-server-port", str(free_port()),
            "--object-store-memory", OBJECT_STORE_BYTES, "--temp-dir", str(tmp), "--disable-usage-stats"])
        c.ray_start("worker", [
            "--address", c.address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--resources", '{"worker_node": 1}', "--object-store-memory", OBJECT_STORE_BYTES,
            "--temp-dir", str(tmp), "--disable-usage-stats"])
        deadline = time.monotonic() + 120
        while len(nodes := c.alive_nodes()) < 2:
            assert time.monotonic() < deadline, f"only {len(nodes)} node(s) alive"
            time.sleep(1)
        c.head_id = next(n for n, r in nodes.items() if "head_node" in r)
        c.worker_id = next(n for n, r in nodes.items() if "worker_node" in r)
        print(f"\ncluster up in {time.monotonic() - started:.1f} s")
        yield c
    finally:
        c.stop()
        store.stop()
        left = processes_mentioning(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes of {tmp} still running: {left}"


# ---- runs on it --------------------------------------------------------------------------------------------


PROBE = textwrap.dedent("""
    import json, os
    from prefect import flow, task
    from prefect_ray.context import remote_options
    from flows.prefect_api import prefect_api
    from flows.task_runner import RnnbenchRayTaskRunner

    @task
    def where():
        import ray, rnnbench, tasks
        return {"node_id": ray.get_runtime_context().get_node_id(), "rnnbench": rnnbench.__file__,
                "tasks": tasks.__file__, "api": os.environ.get("PREFECT_API_URL")}

    # the task runner flows.compare uses; here RAY_ADDRESS picks the cluster
    @flow(task_runner=RnnbenchRayTaskRunner(init_kwargs={"include_dashboard": False}))
    def probe():
        with remote_options(num_cpus=1, scheduling_strategy="SPREAD"):
            futures = [where.submit() for _ in range(4)]
        return [f.result() for f in futures]

    with prefect_api() as api:
        rows = probe()
    print(json.dumps({"api": api, "rows": rows}))
""")


def test_deployment_style_runner_ships_code_and_api_to_both_nodes(cluster: Cluster):
    """Nothing pre-starts Ray (a deployment run): the task runner joins the cluster from RAY_ADDRESS, and its
    workers import the project from the uploaded py_modules and report to the driver's Prefect API."""
    t = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PROBE], env={**cluster.env, "RAY_ADDRESS": cluster.address},
                            cwd=cluster.tmp, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rows = report["rows"]
    assert {r["node_id"] for r in rows} == {cluster.head_id, cluster.worker_id}
    for row in rows:
        assert row["api"] == report["api"]
        for module in ("rnnbench", "tasks"):
            assert "runtime_resources/py_modules_files" in row[module], row  # shipped, not the local checkout
    print(f"probe flow on the cluster: {time.monotonic() - t:.1f} s")


def test_smoke_preset_runs_on_both_nodes(cluster: Cluster):
    out = cluster.tmp / "out"
    t = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "flows.compare", "--preset", "smoke", "--ray-address", cluster.address,
         "--out", str(out), "--shared-path"],  # both nodes are on this machine: they mount the same path
        env=cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    import polars as pl

    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.height == 9 and metrics["status"].to_list() == ["ok"] * 9, metrics.select("run_id", "status")
    assert set(metrics["device"]) == {"cpu"}
    assert set(metrics["node"]) == {socket.gethostname()}  # both nodes: one host
    assert (out / "report.html").is_file()

    if "ray_node_id" in metrics.columns:
        job_nodes = set(metrics["ray_node_id"])
    else:
        finished = [task for task in cluster.query("train-evaluate") if task["state"] == "FINISHED"]
        assert len(finished) >= 9, finished
        job_nodes = {task["node_id"] for task in finished}
    assert job_nodes == {cluster.head_id, cluster.worker_id}, f"jobs ran on {job_nodes}"
    print(f"smoke on the two-node cluster: {elapsed:.1f} s")


def test_jobs_that_ask_for_a_custom_resource_wait_for_and_run_on_the_node_that_has_it(cluster: Cluster):
    """An autoscaling cluster starts the node a job needs only once the job asks for it: demand comes from the
    config (--resources-per-job), not from what the cluster shows at the start. Here no node has `accel` when
    the sweep submits its jobs; they wait (Ray: pending node assignment), and once a node declaring accel=1
    joins, every job runs there. The address comes from RAY_ADDRESS, as ray.init reads it."""
    out = cluster.tmp / "accel-out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.compare", "--preset", "smoke", "--problems", "adding", "--archs", "gru,lstm",
         "--resources-per-job", "accel=1", "--out", str(out), "--shared-path"],
        env={**cluster.env, "RAY_ADDRESS": cluster.address}, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    accel_group = None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "no node offers accel=1 now" in line:
                break
        else:
            raise AssertionError("".join(lines)[-4000:])
        # submitted, and waiting: Ray holds every chunk task for a node with accel
        deadline = time.monotonic() + 120
        while not any(t["state"] == "PENDING_NODE_ASSIGNMENT" for t in cluster.query("train-evaluate-chunk")):
            assert time.monotonic() < deadline, cluster.query("train-evaluate-chunk")
            time.sleep(1)
        assert not (out / "runs").exists() or not list((out / "runs").glob("*.json"))

        cluster.ray_start("accel", [
            "--address", cluster.address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--resources", '{"accel": 1}', "--object-store-memory", OBJECT_STORE_BYTES,
            "--temp-dir", str(cluster.tmp), "--disable-usage-stats"])
        accel_group = cluster.groups[-1]
        rest, _ = proc.communicate(timeout=600)
        output = "".join(lines) + rest
        assert proc.returncode == 0, output[-6000:]
        accel_id = next(n for n, r in cluster.alive_nodes().items() if "accel" in r)
    finally:
        if proc.poll() is None:
            proc.kill()
        if accel_group is not None:  # the module's other tests expect the two nodes they started with
            kill_group(accel_group, grace=10.0)
            cluster.groups.remove(accel_group)

    import polars as pl

    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics["status"].to_list() == ["ok", "ok"], metrics.select("run_id", "status", "error")
    assert set(metrics["ray_node_id"]) == {accel_id}, (metrics["ray_node_id"].to_list(), accel_id)


# ---- storage every node reads ------------------------------------------------------------------------------


LOCAL_REFUSED = ("is local to this node; use an object store URI (s3://, gs://) or a path every node mounts, and "
                 "pass --shared-path to say so")


def _driver_dir(cluster: Cluster, name: str) -> Path:
    """A working directory of the driver's own, neither node's."""
    path = cluster.tmp / name
    path.mkdir(exist_ok=True)
    return path


def test_a_local_out_is_refused_before_any_work_on_a_multi_node_cluster(cluster: Cluster):
    cwd = _driver_dir(cluster, "driver-local")
    result = subprocess.run(
        [sys.executable, "-m", "flows.compare", "--preset", "smoke", "--ray-address", cluster.address,
         "--out", "local-out"],
        env=cluster.env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-6000:]
    assert f"--out {cwd / 'local-out'} {LOCAL_REFUSED}" in result.stderr, result.stderr[-3000:]
    out = cwd / "local-out"
    assert not any((out / name).exists() for name in ("data", "runs", "config.json", "metrics.parquet"))


def test_an_object_store_output_completes_on_both_nodes_and_reads_back_from_the_bucket(cluster: Cluster):
    """`--out s3://...` on the two-node cluster: datasets, job results, metrics and report all go to the bucket
    through pyarrow's S3 filesystem, whichever node writes them; nothing lands in a node's working directory."""
    import pyarrow.parquet as pq

    fs = cluster.store.filesystem()
    fs.create_dir("rnnbench-test")
    cwd = _driver_dir(cluster, "driver-s3")
    t = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "flows.compare", "--preset", "smoke", "--ray-address", cluster.address,
         "--out", "s3://rnnbench-test/run"],
        env=cluster.env, cwd=cwd, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    with fs.open_input_file("rnnbench-test/run/metrics.parquet") as f:
        metrics = pq.read_table(f).to_pylist()
    assert len(metrics) == 9 and {row["status"] for row in metrics} == {"ok"}, metrics
    assert {row["ray_node_id"] for row in metrics} == {cluster.head_id, cluster.worker_id}
    with fs.open_input_file("rnnbench-test/run/summary.parquet") as f:
        assert pq.read_table(f).num_rows > 0
    with fs.open_input_stream("rnnbench-test/run/report.html") as f:
        assert b"</html>" in f.read()
    import pyarrow.fs as pafs

    stored = fs.get_file_info(pafs.FileSelector("rnnbench-test/run", recursive=True))
    assert any(info.path.startswith("rnnbench-test/run/data/") and info.path.endswith(".parquet")
               for info in stored), [info.path for info in stored]
    strays = [p for d in [cwd, *cluster.tmp.glob("node-*")] for p in d.rglob("*")
              if p.suffix in (".parquet", ".json", ".html")]
    assert strays == [], strays
    print(f"smoke to s3 on the two-node cluster: {elapsed:.1f} s")

