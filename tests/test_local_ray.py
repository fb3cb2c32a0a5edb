"""The private local Ray that `flows.compare` starts: only the processes it uses, on loopback, all gone after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import processes_mentioning

# Ray processes a private single-machine cluster never uses (flows/runtime.py leaves them out)
UNUSED = {"autoscaler monitor": "autoscaler/_private/monitor.py", "log monitor": "_private/log_monitor.py",
          "dashboard (usage statistics only)": "dashboard/dashboard.py"}
NEEDED = {"GCS": "gcs_server", "raylet": "raylet/raylet", "worker": "default_worker.py"}


def _commands(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass  # ended meanwhile
    return out


@pytest.mark.e2e
def test_local_ray_runs_tasks_without_unused_processes_and_leaves_nothing(monkeypatch):
    import ray

    from flows.runtime import ray_cluster

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    with ray_cluster() as info:
        session = Path(ray._private.worker._global_node.get_session_dir_path()).name
        assert ray.get([ray.remote(lambda i: i * i).remote(i) for i in range(4)]) == [0, 1, 4, 9]
        assert info["address"].startswith("127.0.0.1:")
        commands = _commands(processes_mentioning(session))
        for role, text in NEEDED.items():
            assert any(text in c for c in commands), f"no {role} process: {commands}"
        for role, text in UNUSED.items():
            assert not any(text in c for c in commands), f"{role} was started"
    assert processes_mentioning(session) == []
