"""deploy/prefect.yaml, end to end: a real Prefect server, a process work pool, `prefect deploy`, a worker, and
the smoke deployment run to Completed with its report on disk.

Everything listens on 127.0.0.1 and lives under tmp_path (PREFECT_HOME included, so ~/.prefect is untouched).
Every process the test starts runs in its own process group, and the whole group is killed at teardown:
the server, the worker, and what the worker started (the flow-run process and its local Ray).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from rnnbench.config import CompareConfig, from_preset
from tests.processes import free_port, group_members, kill_group

pytestmark = [pytest.mark.deployment, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "deploy" / "prefect.yaml"
BIN = Path(sys.executable).parent
POOL = "rnnbench-process"


def _load_yaml() -> dict:
    return yaml.safe_load(PREFECT_YAML.read_text())


def _deployments() -> dict[str, dict]:
    return {d["name"]: d for d in _load_yaml()["deployments"]}


# ---- the file itself (fast) ------------------------------------------------------------------------------


def test_deployments_name_a_preset_and_override_only_what_differs():
    """No copy of a preset's grid in the file: each deployment names a preset and overrides a few fields, every
    one a config field, and together they make a valid config."""
    from flows.deployment import deployed

    flow_params = set(inspect.signature(deployed.fn).parameters)
    presets = {"nightly-quick": "quick", "weekly-full": "full", "smoke": "smoke"}
    assert set(_deployments()) == set(presets)
    for name, preset in presets.items():
        params = _deployments()[name]["parameters"]
        assert set(params) <= flow_params, f"{name}: unknown parameters {set(params) - flow_params}"
        assert params["preset"] == preset and params["timeout_hours"] > 0
        overrides = params["overrides"]
        assert set(overrides) <= set(CompareConfig.model_fields) and "grids" not in overrides
        config = from_preset(preset, **overrides)
        assert config.model_dump(exclude={"out", "data_root"}) == \
            from_preset(preset).model_dump(exclude={"out", "data_root"})


def test_schedule_pool_and_pull_step():
    spec = _load_yaml()
    nightly, weekly, smoke = (_deployments()[n] for n in ("nightly-quick", "weekly-full", "smoke"))
    assert nightly["schedules"] == [{"cron": "0 3 * * *", "timezone": "UTC", "active": True}]
    assert weekly["schedules"] == [{"cron": "0 4 * * 0", "timezone": "UTC", "active": True}]
    assert not smoke.get("schedules")
    for deployment in (nightly, weekly, smoke):
        assert deployment["entrypoint"] == "flows.deployment:deployed"
        assert deployment["work_pool"]["name"] == POOL
        env = deployment["work_pool"]["job_variables"]["env"]
        assert env["RAY_AUTH_MODE"] in ("token", "disabled"), "RAY_AUTH_MODE must be explicit"
        assert "RNNBENCH_HOME" not in env, "a literal placeholder here would shadow the worker's RNNBENCH_HOME"
    assert spec["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $RNNBENCH_HOME }}"}}]


def test_one_run_at_a_time_a_time_limit_and_a_pinnable_source():
    """A stuck scheduled run cannot hold the schedule: one run at a time, a newer one cancelled rather than queued
    behind it (Prefect 3's `concurrency_limit: {limit, collision_strategy}`), and every run under a time limit. The
    pinned sources the file offers name a tag (git) or an image tag, never a branch head or `latest`."""
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy

    strategies = {s.value for s in ConcurrencyLimitStrategy}
    for name, deployment in _deployments().items():
        limit = deployment["concurrency_limit"]
        assert limit["limit"] == 1 and limit["collision_strategy"] in strategies, name
        if deployment.get("schedules"):
            assert limit["collision_strategy"] == "CANCEL_NEW", name
    definitions = _load_yaml()["definitions"]
    clone = definitions["pulls"]["pinned_git_source"][0]["prefect.deployments.steps.git_clone"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", clone.get("branch", "")) or re.fullmatch(r"[0-9a-f]{40}",
                                                                                   clone.get("commit_sha", ""))
    image = definitions["work_pools"]["kubernetes"]["job_variables"]["image"]
    assert re.fullmatch(r".+:\d+\.\d+\.\d+", image), image


def test_a_deployment_refuses_what_it_would_ignore():
    from flows.deployment import check_parameters, dated, history_root

    with pytest.raises(ValueError, match="overrides.ray_address is not accepted.*RAY_ADDRESS"):
        check_parameters({"ray_address": "auto"}, 2)
    with pytest.raises(ValueError, match="timeout_hours=0"):
        check_parameters({}, 0)
    check_parameters(_deployments()["nightly-quick"]["parameters"]["overrides"], 2)
    from datetime import UTC, datetime

    assert dated({"out": "r/n/{date}", "lr": 1}, datetime(2026, 12, 1, 3, tzinfo=UTC)) == {"out": "r/n/2026-12-01",
                                                                                         "lr": 1}
    assert history_root("results/nightly-quick/{date}") == "results/nightly-quick"
    assert history_root("results/smoke") is None


# ---- processes ---------------------------------------------------------------------------------------------


class ProcessGroups:
    """Start commands in their own process groups; `stop_all` ends each whole group (TERM, then KILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self, grace: float = 10.0) -> list[str]:
        """Returns the names of groups that needed SIGKILL (last started, first stopped)."""
        killed = [name for name, proc in reversed(self.started) if kill_group(proc.pid, grace)]
        for _, proc in self.started:
            if proc.poll() is None:  # reap the leader
                proc.wait(timeout=5)
        return killed


def run(args: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log: ProcessGroups) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"prefect server exited with {proc.returncode}:\n{log.log('server')}"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no /api/health within {timeout} s:\n{log.log('server')}")


# ---- end to end --------------------------------------------------------------------------------------------


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroups]:
    logs = tmp_path / "logs"
    logs.mkdir()
    groups = ProcessGroups(logs)
    try:
        yield groups
    finally:
        groups.stop_all()
        leftovers = {name: group_members(p.pid) for name, p in groups.started if group_members(p.pid)}
        assert not leftovers, f"processes left running: {leftovers}"


def test_smoke_deployment_runs_through_a_worker(tmp_path: Path, processes: ProcessGroups):
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "RAY_")) and k != "RNNBENCH_HOME"}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RNNBENCH_HOME": str(ROOT),  # read by `prefect deploy` for the pull step, see deploy/prefect.yaml
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    prefect = str(BIN / "prefect")

    # no scheduler: the nightly deployment must not start a run during the test; no UI: faster start
    server = processes.start("server", [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port),
                                        "--no-ui", "--no-scheduler", "--analytics-off"], env)
    wait_healthy(api, server, timeout=180, log=processes)
    timings["server"] = time.monotonic() - t0

    run([prefect, "work-pool", "create", POOL, "--type", "process"], env, timeout=120)
    t = time.monotonic()
    deployed = run([prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML)], env,
                   timeout=300)
    timings["deploy"] = time.monotonic() - t
    assert "rnnbench/smoke" in deployed.stdout and "rnnbench/nightly-quick" in deployed.stdout, deployed.stdout

    with httpx.Client(base_url=api, timeout=30) as client:
        nightly = client.get("/deployments/name/rnnbench/nightly-quick").raise_for_status().json()
        smoke = client.get("/deployments/name/rnnbench/smoke").raise_for_status().json()
    (schedule,) = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["schedule"]["timezone"] == "UTC"
    assert smoke["schedules"] == []
    # one run at a time: the server holds the limit and what a colliding run gets
    assert nightly["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert smoke["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert nightly["global_concurrency_limit"]["limit"] == smoke["global_concurrency_limit"]["limit"] == 1
    assert nightly["work_pool_name"] == smoke["work_pool_name"] == POOL
    # `prefect deploy` resolved {{ $RNNBENCH_HOME }} from its own environment: the checkout's absolute path
    assert smoke["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]

    # the worker only serves the smoke deployment's queue; it starts in tmp_path, not in the checkout
    processes.start("worker", [prefect, "worker", "start", "--pool", POOL, "--work-queue", "manual",
                               "--limit", "1", "--install-policy", "never"], env, cwd=tmp_path)

    # a dated output, as the scheduled deployments have: the run writes ROOT/<its day>, then the history of ROOT
    root = tmp_path / "runs"
    params = {**smoke["parameters"], "overrides": {**smoke["parameters"]["overrides"], "out": f"{root}/{{date}}"}}
    t = time.monotonic()
    try:
        result = subprocess.run(
            [prefect, "deployment", "run", "rnnbench/smoke", "--params", json.dumps(params),
             "--watch", "--watch-interval", "2", "--watch-timeout", "600"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=660, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"no terminal state in time\nworker log:\n{processes.log('worker')[-6000:]}") from exc
    timings["run"] = time.monotonic() - t
    assert result.returncode == 0 and "Completed" in result.stdout, (
        f"{result.stdout}\n{result.stderr}\nworker log:\n{processes.log('worker')[-8000:]}")

    (out,) = [p for p in root.iterdir() if p.is_dir()]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", out.name), out.name
    for name in ("history.html", "history.parquet"):  # the step at the end of the run
        assert (root / name).is_file(), f"{name} missing under {root}: {sorted(p.name for p in root.iterdir())}"
    assert out.name in (root / "history.html").read_text()
    for name in ("metrics.parquet", "curves.parquet", "report.html"):
        assert (out / name).is_file(), f"{name} missing under {out}: {sorted(p.name for p in out.iterdir())}"
    import polars as pl

    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.height == 9 and metrics["status"].to_list() == ["ok"] * 9, metrics.select("run_id", "status")
    assert set(metrics["device"]) == {"cpu"} and metrics["node"].null_count() == 0

    # the Ray workers reported to this API (PREFECT_API_URL reached them through the flow-run environment); the
    # deployment's run holds the comparison as a subflow, whose tasks these are (this server has no other runs)
    with httpx.Client(base_url=api, timeout=30) as client:
        (flow_run,) = client.post("/flow_runs/filter", json={
            "deployments": {"id": {"any_": [smoke["id"]]}}}).raise_for_status().json()
        runs = client.post("/flow_runs/filter", json={}).raise_for_status().json()
        task_runs = client.post("/task_runs/filter", json={
            "flow_runs": {"id": {"any_": [r["id"] for r in runs]}}}).raise_for_status().json()
    assert flow_run["state_type"] == "COMPLETED"
    assert len(runs) == 2 and {r["state_type"] for r in runs} == {"COMPLETED"}, \
        [(r["name"], r["state_type"]) for r in runs]
    # small jobs are packed into tasks named "<first run id> and <n> more"
    trained = [t for t in task_runs if " and " in t["name"] and t["name"].endswith(" more")]
    jobs = sum(1 + int(t["name"].rsplit(" ", 2)[1]) for t in trained)
    assert jobs == 9 and {t["state_type"] for t in trained} == {"COMPLETED"}, \
        [(t["name"], t["state_type"]) for t in task_runs]

    timings["total"] = time.monotonic() - t0
    print("deployment timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
