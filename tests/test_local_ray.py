"""The private local Ray that `flows.compare` starts: the processes it needs, on loopback, all gone after.

It is started with Ray's public interfaces only (flows/runtime.py), so Ray's autoscaler monitor, log monitor and
usage-statistics dashboard process run too (~2 CPU-s at start-up, measured in the README); which of Ray's
processes run is Ray's business and not pinned here. What is: the ones the sweep needs, loopback addresses, token
authentication, and nothing left after. tests/test_runtime_public.py checks every listening port and the token
from outside, in a fresh process; this test runs `ray_cluster()` in the test process itself, as the in-process
tests of flows.compare do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import processes_mentioning

NEEDED = {"GCS": "gcs_server", "raylet": "raylet/raylet", "worker": "default_worker.py"}
# what flows/runtime.py sets for a private local Ray while it runs
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
    from flows.runtime import ray_cluster

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
