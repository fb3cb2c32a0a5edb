"""What survives what: driver killed and resumed, Ray worker killed mid-job, jobs that raise, bad data, two
sweeps on one output. Each runs the real CLI in a subprocess against the session's Prefect API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from filelock import FileLock

from flows import compare
from schemas.metrics import Metrics, read_validated
from tests.processes import listening

ROOT = Path(__file__).resolve().parent.parent
# what legitimately differs between two runs of the same jobs
VOLATILE = ["train_seconds", "steps_per_second", "node", "ray_node_id"]
SMALL = ["--preset", "smoke", "--problems", "sequential_xor,adding"]

pytestmark = pytest.mark.e2e


def start(argv: list[str], out: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.compare", *argv, "--out", str(out)], cwd=ROOT,
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: kill -9 reaches the driver and the Ray it started
    )


def plugged(gate: Path) -> dict[str, str]:
    """The environment that registers the test's controllable archs (tests/plugin_faults.py) in the driver and,
    inherited, in every Ray worker."""
    gate.mkdir(exist_ok=True)
    return {"RNNBENCH_PLUGINS": "tests.plugin_faults", "RNNBENCH_TEST_GATE": str(gate),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(autouse=True)
def test_archs(monkeypatch):
    """This process reads the sweeps' metrics, so it knows the plugin's archs too, for this module's tests only."""
    from rnnbench import plugins
    from rnnbench.archs import ARCHS

    monkeypatch.setenv(plugins.ENV, "tests.plugin_faults")
    before = set(ARCHS)
    plugins.extend(ARCHS, "ARCHS")
    yield
    for name in set(ARCHS) - before:
        del ARCHS[name]


def started(gate: Path) -> list[Path]:
    return sorted(gate.glob("started-*"))


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output


def stable(path: Path) -> pl.DataFrame:
    return read_validated(str(path), Metrics).drop(VOLATILE).sort("run_id")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_driver_killed_mid_sweep_resumes_to_identical_metrics(prefect_api, tmp_path):
    """The sweep is interrupted while a gated job is running: it cannot have finished, whatever the CPU's speed."""
    interrupted, reference, gate = tmp_path / "interrupted", tmp_path / "reference", tmp_path / "gate"
    env = plugged(gate)
    argv = [*SMALL, "--archs", "rnn_tanh,gru,gated_gru"]
    proc = start(argv, interrupted, **env)
    wait_for(lambda: bool(started(gate)), 300, "a gated job to start")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Ray's workers live in their own sessions: one may still finish (and durably store) its job before it
    # notices its raylet is gone; count what is stored once they have exited (the gated ones never finish)
    wait_for(lambda: not _train_workers(), 60, "orphaned workers to exit")
    runs = interrupted / "runs"
    finished_before = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
    assert finished_before <= 4, "a gated job finished although its gate was closed"
    assert not (interrupted / "metrics.parquet").exists()

    (gate / "release").touch()
    code, output = finish(start(argv, interrupted, **env))
    assert code == 0, output
    assert f"{finished_before} already finished" in output
    code, output = finish(start(argv, reference, **env))
    assert code == 0, output
    resumed, uninterrupted = stable(interrupted / "metrics.parquet"), stable(reference / "metrics.parquet")
    assert resumed.height == 6 and set(resumed["status"]) == {"ok"}
    assert resumed.equals(uninterrupted)  # bit-identical on CPU, timing aside
    assert not list(interrupted.rglob(".tmp-*"))


def test_cli_killed_leaves_no_prefect_api_behind(tmp_path):
    """The API the CLI starts dies with it, even on kill -9 of the driver alone (its group left alone)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "flows.compare", *SMALL, "--out", str(tmp_path / "out")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        port = None
        for line in proc.stdout:
            if match := re.search(r"local Prefect API starting on http://127\.0\.0\.1:(\d+)/api", line):
                port = int(match.group(1))
                break
        assert port, "the CLI did not say where its API starts"
        wait_for(lambda: listening(port), 120, "the API to answer")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not listening(port), 20, "the orphaned API to stop")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever else it had started
        except ProcessLookupError:
            pass
        proc.stdout.close()
    wait_for(lambda: not _train_workers(), 60, "orphaned workers to exit")


def _train_workers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "^ray::train-evaluate"], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def test_ray_worker_killed_mid_job_is_rerun_once(prefect_api, tmp_path):
    out, gate = tmp_path / "out", tmp_path / "gate"
    proc = start(["--preset", "smoke", "--problems", "adding", "--archs", "gated_gru"], out, **plugged(gate))
    wait_for(lambda: bool(started(gate)), 300, "the gated job to start")
    victim = int(started(gate)[0].name.split("-")[1])  # the worker process running the job, held at its gate
    os.kill(victim, signal.SIGKILL)
    (gate / "release").touch()  # Ray's re-run of the task gets through
    code, output = finish(proc)
    assert code == 0, output
    assert len(started(gate)) == 2, "the job was not run exactly twice (once killed, once re-run)"
    pids = {int(p.name.split("-")[1]) for p in started(gate)}
    assert victim in pids and len(pids) == 2, "the re-run was not in a fresh worker process"
    metrics = read_validated(str(out / "metrics.parquet"), Metrics)
    assert metrics.height == 1 and metrics["status"][0] == "ok"
    assert len(list((out / "runs").glob("*.json"))) == 1


def test_job_that_raises_is_retried_then_recorded_failed_without_aborting(prefect_api, tmp_path):
    out, gate = tmp_path / "out", tmp_path / "gate"
    env = plugged(gate)
    (gate / "fail").touch()
    argv = [*SMALL, "--archs", "rnn_tanh,gru,raising_gru"]
    code, output = finish(start(argv, out, **env))
    assert code == 1, output  # a failed job makes the exit status non-zero, after everything else finished
    metrics = read_validated(str(out / "metrics.parquet"), Metrics)
    failed = metrics.filter(pl.col("status") == "failed")
    assert failed.height == 2 and set(failed["arch"]) == {"raising_gru"}
    assert all("injected fault" in e for e in failed["error"])
    assert metrics.filter(pl.col("status") == "ok").height == 4
    assert all("after 3 attempts" in e for e in failed["error"])  # first try + 2 bounded retries
    report = (out / "report.md").read_text()
    assert "Failed and diverged jobs" in report and "injected fault" in report
    # Prefect is the record: the chunk task ran 3 times (its own retries), the flow run ended Failed
    flow_run, task_runs = latest_flow_run()
    assert flow_run["state_type"] == "FAILED" and "2 of 6 jobs failed" in flow_run["state"]["message"]
    raising = [t for t in task_runs if "raising_gru" in t["name"]]
    assert raising and all(t["run_count"] == 3 and t["state_type"] == "FAILED" for t in raising), \
        [(t["name"], t["run_count"], t["state_type"]) for t in task_runs]
    # the failed jobs are not stored, so a resume tries them again (and this time they succeed)
    (gate / "fail").unlink()
    code, output = finish(start(argv, out, **env))
    assert code == 0, output
    assert "4 already finished" in output


def latest_flow_run() -> tuple[dict, list[dict]]:
    """The session API's most recent flow run and its task runs."""
    import httpx

    with httpx.Client(base_url=os.environ["PREFECT_API_URL"], timeout=30) as client:
        (flow_run,) = client.post("/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}).json()
        task_runs = client.post("/task_runs/filter", json={
            "flow_runs": {"id": {"any_": [flow_run["id"]]}}}).json()
    return flow_run, task_runs


def test_damaged_stored_result_is_named_and_its_job_trained_again(prefect_api, tmp_path):
    out = tmp_path / "out"
    argv = ["--preset", "smoke", "--problems", "adding", "--archs", "gru,lstm"]
    code, output = finish(start(argv, out))
    assert code == 0, output
    reference = stable(out / "metrics.parquet")
    damaged = sorted((out / "runs").glob("*.json"))[0]
    payload = json.loads(damaged.read_text())
    payload["row"]["test_metric"] = "0.1"  # parses, but a string where a number belongs
    damaged.write_text(json.dumps(payload))
    code, output = finish(start(argv, out))
    assert code == 0, output
    assert f"damaged stored result {damaged}" in output and "1 already finished" in output
    assert "Traceback" not in output
    assert stable(out / "metrics.parquet").equals(reference)


def test_invalid_dataset_is_refused_before_training_until_regenerated(prefect_api, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--preset", "smoke", "--problems", "sequential_xor", "--archs", "gru", "--out", str(out)]
    assert compare.main(argv) == 0
    train_file = next((out / "data").rglob("train-*.parquet"))
    train_file.write_bytes(train_file.read_bytes()[: train_file.stat().st_size // 2])  # truncated
    (out / "runs").rename(tmp_path / "runs-aside")  # so the job would have to train again
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        compare.main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert str(train_file) in err and "readable_parquet" in err and "--regenerate" in err
    assert not (out / "runs").exists() or not list((out / "runs").glob("*.json"))
    assert compare.main([*argv, "--regenerate"]) == 0
    assert read_validated(str(out / "metrics.parquet"), Metrics)["status"].to_list() == ["ok"]


def test_second_sweep_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(str(out / ".rnnbench.lock")):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(["--preset", "smoke", "--out", str(out)])
    assert exit_info.value.code != 0
    assert f"another sweep is running on --out '{out}'" in capsys.readouterr().err
