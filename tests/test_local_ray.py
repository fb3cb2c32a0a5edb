"""The private local Ray that `flows.compare` starts: the processes it needs, on loopback, all gone after.

It is started with Ray's public interfaces only (flows/ray_start.py), so Ray's autoscaler monitor, log monitor and
usage-statistics dashboard process run too (~2 CPU-s at start-up, measured in the README); which of Ray's
processes run is Ray's business and not pinned here. What is: the ones the sweep needs, loopback addresses, token
authentication, and nothing left after. tests/test_runtime_public.py checks every listening port and the token
from outside, in a fresh process; this test runs `ray_cluster()` in the test process itself, as the in-process
tests of flows.compare do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import processes_mentioning, wait_for

ROOT = Path(__file__).resolve().parent.parent

NEEDED = {"GCS": "gcs_server", "raylet": "raylet/raylet", "worker": "default_worker.py"}
# what flows/ray_start.py sets for a private local Ray while it runs
PRIVATE_RAY_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


def _commands(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass  # ended meanwhile
    return out


@pytest.mark.e2e
def test_local_ray_runs_tasks_on_loopback_with_a_token_and_leaves_nothing(monkeypatch):
    from flows.ray_start import ray_cluster

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    for key in PRIVATE_RAY_ENV:
        monkeypatch.delenv(key, raising=False)
    with ray_cluster() as info:
        import ray

        session = Path(info["session_dir"]).name
        assert ray.get([ray.remote(lambda i: i * i).remote(i) for i in range(4)]) == [0, 1, 4, 9]
        assert info["address"].startswith("127.0.0.1:")
        seen = ray.get(ray.remote(lambda: (os.environ.get("RAY_AUTH_MODE"), ray.util.get_node_ip_address())).remote())
        assert seen == ("token", "127.0.0.1"), seen
        commands = _commands(processes_mentioning(session))
        for role, text in NEEDED.items():
            assert any(text in c for c in commands), f"no {role} process: {commands}"
    assert processes_mentioning(session) == []
    # the variables for the private Ray are this process's only while it runs
    for key in PRIVATE_RAY_ENV:
        assert os.environ.get(key) is None, key


# a deployment run: nothing starts Ray before the flow, so its task runner does, and stops it after
RUNNER = """
import json, os, sys
from prefect import flow, task
from flows import ray_start
from flows.task_runner import RnnbenchRayTaskRunner

@task
def where():
    import ray
    return ray.util.get_node_ip_address()

@flow(task_runner=RnnbenchRayTaskRunner(init_kwargs={"include_dashboard": False}))
def probe():
    session = ray_start.session()
    node = where.submit().result()
    return {"private": ray_start.is_private_ray(), "session_dir": session.session_dir, "node": node}

seen = probe()
import ray
seen.update(initialized_after=ray.is_initialized(), session_after=ray_start.session() is not None,
            env_after={key: os.environ.get(key) for key in sys.argv[1:]})
print(json.dumps(seen))
"""


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_task_runner_starts_a_private_ray_for_the_flow_run_and_stops_it_after(prefect_api):
    """The flow sees the runner's Ray session (a private Ray on loopback); after the run it is stopped, its session
    is current nowhere, and the variables it ran with are gone again."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", *PRIVATE_RAY_ENV)}
    proc = subprocess.run([sys.executable, "-c", RUNNER, *PRIVATE_RAY_ENV], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["private"] is True and seen["node"] == "127.0.0.1", seen
    assert seen["initialized_after"] is False and seen["session_after"] is False, seen
    assert seen["env_after"] == dict.fromkeys(PRIVATE_RAY_ENV), seen
    session = Path(seen["session_dir"]).name
    wait_for(lambda: not processes_mentioning(session), 60, "the runner's Ray processes to exit")
