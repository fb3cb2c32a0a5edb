"""What survives what: driver killed and resumed, Ray worker killed mid-job, jobs that raise, bad data, two
sweeps on one output. Each runs the real CLI in a subprocess against the session's Prefect API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from filelock import FileLock

from flows import compare
from schemas.metrics import Metrics, read_validated
from tests.processes import kill_group, listening, plugged, wait_for

ROOT = Path(__file__).resolve().parent.parent
# what legitimately differs between two runs of the same jobs
VOLATILE = ["train_seconds", "steps_per_second", "node", "ray_node_id"]
SMALL = ["--preset", "smoke", "--problems", "sequential_xor,adding"]

pytestmark = pytest.mark.e2e


def start(argv: list[str], out: Path, own_api: bool = False, **env: str) -> subprocess.Popen:
    """The CLI on `out`, reporting to the session's Prefect API, or with `own_api` to the one it starts itself."""
    environment = {**os.environ, **env}
    if own_api:
        environment.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flows.compare", *argv, "--out", str(out)], cwd=ROOT,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: kill -9 reaches the driver and the Ray it started
    )


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

    # what a write cut short by the kill leaves (whether this kill left one depends on timing): deleted at restart
    (interrupted / "runs").mkdir(exist_ok=True)
    (interrupted / "runs" / ".tmp-0123-cut-short.json").write_text('{"row": ')
    (gate / "release").touch()
    code, output = finish(start(argv, interrupted, **env))
    assert code == 0, output
    assert f"{finished_before} already finished" in output
    assert re.search(r"removed \d+ half-written file\(s\) left by an interrupted sweep", output)
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
        kill_group(proc.pid)  # whatever else it had started
        proc.stdout.close()
    wait_for(lambda: not _train_workers(), 60, "orphaned workers to exit")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> dict[int, str]:
    """Live children of `pid` and the first word of each one's command line (Ray names its processes there)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    kids = {}
    for child in map(int, out):
        try:
            kids[child] = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_ray_dying_mid_sweep_says_what_died_and_the_same_command_resumes(prefect_api, tmp_path):
    """The raylet's RuntimeEnvAgent is fate-shared with the raylet: killing it kills this sweep's Ray. The sweep
    says so in one line (what died, how many of how many jobs are stored, that the same command resumes) and
    exits 1; the same command then ends with the metrics of an uninterrupted run."""
    out, reference, gate = tmp_path / "out", tmp_path / "reference", tmp_path / "gate"
    env = plugged(gate)
    code, output = finish(start([*SMALL, "--archs", "rnn_tanh,gru"], out, **env))  # 4 jobs stored
    assert code == 0, output
    first_metrics = (out / "metrics.parquet").read_bytes()
    argv = [*SMALL, "--archs", "rnn_tanh,gru,gated_gru"]  # + 2 gated jobs: the only ones left to run
    proc = start(argv, out, **env)
    wait_for(lambda: bool(started(gate)), 300, "a gated job to start")
    worker = int(started(gate)[0].name.split("-")[1])
    raylet = _parent(worker)  # the sweep's own Ray, never another one on this machine
    ray_processes = [raylet, *_children(raylet)]
    agent = next(pid for pid, name in _children(raylet).items() if name == "ray::RuntimeEnvAgent")
    os.kill(agent, signal.SIGKILL)
    code, output = finish(proc, timeout=300)
    assert code == 1, output
    line = f"error: Ray (the raylet of this machine's node) died mid-sweep: 4 of 6 jobs are stored in {out}; " \
           "run the same command again to resume"
    assert line in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert (out / "metrics.parquet").read_bytes() == first_metrics  # no metrics written with made-up failures
    wait_for(lambda: not any(map(_alive, ray_processes)), 60, "the dead Ray's processes to exit")
    assert len(list((out / "runs").glob("*.json"))) == 4

    (gate / "release").touch()
    code, output = finish(start(argv, out, **env))
    assert code == 0, output
    assert "4 already finished" in output
    code, output = finish(start(argv, reference, **env))
    assert code == 0, output
    assert stable(out / "metrics.parquet").equals(stable(reference / "metrics.parquet"))


def test_prefect_api_dying_mid_sweep_says_so_and_the_same_command_resumes(tmp_path):
    """The CLI's own Prefect API is killed while a gated job runs: one line says so (how many jobs are stored,
    that the same command resumes), exit 1 at once, Ray stopped with it; the same command then finishes."""
    out, gate = tmp_path / "out", tmp_path / "gate"
    env = {"PREFECT_HOME": str(tmp_path / "prefect-home"), **plugged(gate)}  # with its own API, on its own home
    code, output = finish(start([*SMALL, "--archs", "gru"], out, own_api=True, **env))  # 2 jobs stored
    assert code == 0, output
    argv = [*SMALL, "--archs", "gru,gated_gru"]  # + 2 gated jobs: the only ones left to run
    proc = start(argv, out, own_api=True, **env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if match := re.search(r"local Prefect API starting on (http://127\.0\.0\.1:(\d+)/api)", line):
            url, port = match.group(1), match.group(2)
            break
        if "Beginning flow run" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("the CLI did not start its own Prefect API:\n" + "".join(lines))
    wait_for(lambda: bool(started(gate)), 300, "a gated job to start")
    worker = int(started(gate)[0].name.split("-")[1])
    api = next(pid for pid in _children(proc.pid)
               if f"--port\0{port}\0".encode() in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(api, signal.SIGKILL)
    code, rest = finish(proc, timeout=120)
    output = "".join(lines) + rest
    assert code == 1, output[-4000:]
    assert f"error: the Prefect API at {url} died mid-sweep: 2 of 4 jobs are stored in {out}; run the same " \
           "command again to resume" in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    wait_for(lambda: not _alive(worker), 60, "the sweep's Ray workers to stop")

    (gate / "release").touch()
    code, output = finish(start(argv, out, own_api=True, **env))
    assert code == 0, output
    assert "2 already finished" in output
    assert read_validated(str(out / "metrics.parquet"), Metrics)["status"].to_list() == ["ok"] * 4


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


def test_a_changed_config_on_the_same_out_reuses_matching_jobs_runs_the_rest_and_records_it(prefect_api, tmp_path):
    out = tmp_path / "out"
    code, output = finish(start(["--preset", "smoke", "--problems", "adding", "--archs", "gru"], out))
    assert code == 0, output
    before = stable(out / "metrics.parquet")
    (stored,) = (out / "runs").glob("*.json")
    written = stored.stat().st_mtime_ns
    code, output = finish(start(["--preset", "smoke", "--problems", "adding", "--archs", "gru,lstm"], out))
    assert code == 0, output
    assert "2 jobs: 1 already finished" in output and "1 to run" in output
    assert re.search(r"config differs from the last sweep on \S+ in archs: matching finished jobs are reused", output)
    assert stored.stat().st_mtime_ns == written, "the matching job was trained again"
    after = stable(out / "metrics.parquet")
    assert sorted(after["arch"].to_list()) == ["gru", "lstm"]
    assert after.filter(pl.col("arch") == "gru").equals(before)  # the reused row, as it was
    assert json.loads((out / "config.json").read_text())["archs"] == ["gru", "lstm"]  # the config it now covers
    assert "lstm" in (out / "report.md").read_text()


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


SECOND_FLOW = """
import json, sys
from flows.compare import compare
state = compare(preset="smoke", overrides={"out": sys.argv[1], "archs": ["gru"]}, return_state=True)
print(json.dumps({"type": state.type.value, "message": state.message}))
"""


def test_a_second_flow_run_on_a_held_output_is_refused_and_touches_nothing(prefect_api, tmp_path):
    """The lock is the flow's, whoever starts it: while a CLI sweep holds OUT (its gated job running), a flow run
    started as a deployment starts one (no CLI) ends Failed with the refusal, and leaves OUT alone (it would
    otherwise delete the first sweep's half-written files as stale)."""
    out, gate = tmp_path / "out", tmp_path / "gate"
    env = plugged(gate)
    first = start(["--preset", "smoke", "--problems", "adding", "--archs", "gated_gru"], out, **env)
    try:
        wait_for(lambda: bool(started(gate)), 300, "the first sweep's gated job to start")
        in_flight = out / "runs" / ".tmp-0123-in-flight.json"  # as a job of the first sweep writes it
        in_flight.parent.mkdir(parents=True, exist_ok=True)
        in_flight.write_text("{}")
        second = subprocess.run([sys.executable, "-c", SECOND_FLOW, str(out)], cwd=ROOT, env={**os.environ, **env},
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        state = json.loads(second.stdout.strip().splitlines()[-1])
        assert state["type"] == "FAILED", state
        assert f"another sweep is running on --out '{out}'" in state["message"]
        assert in_flight.exists(), "the refused run deleted the running sweep's temporary file"
        assert "Traceback" not in second.stderr, second.stderr[-3000:]
    finally:
        (gate / "release").touch()
    code, output = finish(first)
    assert code == 0, output
    assert read_validated(str(out / "metrics.parquet"), Metrics)["status"].to_list() == ["ok"]


def test_second_sweep_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(str(out / ".rnnbench.lock")):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(["--preset", "smoke", "--out", str(out)])
    assert exit_info.value.code != 0
    assert f"another sweep is running on --out '{out}'" in capsys.readouterr().err
