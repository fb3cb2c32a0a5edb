"""Orchestration seen from outside: one sweep per output on URIs (a Prefect global concurrency limit), RAY_ADDRESS,
what a job asks Ray for, progress lines when stdout is not a terminal, and `--ui`. Real Prefect API, real Ray;
sweeps run as the CLI in a subprocess, and wait on events the test controls (gated jobs), never on sleeps."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from flows import cli, compare_args
from rnnbench import sweep
from rnnbench.config import from_preset
from tests.processes import free_port, group_members, kill_group, listening, plugged, wait_for

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


class Output:
    """A subprocess's merged stdout/stderr, read line by line in a thread, so that a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines, self._queue = proc, [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 300) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"exited before a line matching {pattern!r}:\n{self.text()[-4000:]}")
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.text()[-4000:]}")

    def rest(self, timeout: float = 300) -> str:
        self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=30)) is not None:
            self.lines.append(line)
        return self.text()

    def text(self) -> str:
        return "".join(self.lines)


def cli_process(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows.compare", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def own_api_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a CLI that starts its own Prefect API (no PREFECT_API_URL), on a Prefect home of its
    own (its database is created once for this module, and shared with nobody else on the machine)."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    return env


# ---- one sweep per output: URIs ------------------------------------------------------------------------------

TRY_LOCK = """
import sys
from rnnbench import sweep
try:
    with sweep.exclusive(sys.argv[1]):
        print("held")
except sweep.SweepBusy as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_uri_output_is_held_through_a_prefect_global_concurrency_limit(prefect_api, tmp_path):
    """A URI has no lock file: its lock is a global concurrency limit of one slot on the Prefect API, created on
    first use and named after the output. Another process is refused while it is held, and gets it after."""
    from prefect.client.orchestration import get_client

    uri = f"memory://rnnbench-test/{tmp_path.name}/out"
    name = sweep.limit_name(uri)
    assert re.fullmatch(r"rnnbench-out-[a-z0-9-]+-[0-9a-f]{12}", name)
    assert name != sweep.limit_name(uri + "2")

    def other_process() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", TRY_LOCK, uri], cwd=ROOT, env=os.environ, capture_output=True,
                              text=True, timeout=120)

    with sweep.exclusive(uri):
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        assert limit.limit == 1 and limit.active_slots == 1
        refused = other_process()
        assert refused.returncode == 3, refused.stdout + refused.stderr[-3000:]
        assert f"another sweep is running on --out '{uri}'" in refused.stdout
        assert f"Prefect global concurrency limit '{name}'" in refused.stdout
        with sweep.exclusive(uri):  # the same process again (the CLI, then its flow): re-entry, not a conflict
            pass
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        # released, then removed: one limit per output in use, none left behind by every output ever swept
        client.read_global_concurrency_limit_by_name(name)
    held = other_process()
    assert held.returncode == 0 and held.stdout.strip() == "held", held.stdout + held.stderr[-3000:]


def test_cli_sweep_on_a_held_uri_is_refused_by_the_flow(prefect_api, tmp_path):
    """The CLI has no early lock for a URI: the flow's concurrency limit refuses it, with the CLI's message."""
    uri = f"file://{tmp_path}/out"
    with sweep.exclusive(uri):
        proc = subprocess.run([sys.executable, "-m", "flows.compare", "--preset", "smoke", "--problems", "adding",
                               "--archs", "gru", "--out", uri], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"error: another sweep is running on --out '{uri}'" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "out" / "runs").exists()


# ---- where jobs run ------------------------------------------------------------------------------------------


def test_ray_address_from_the_environment_is_honoured(monkeypatch, capsys):
    from flows import compare_args

    port = free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # nothing listens there
    with pytest.raises(SystemExit) as exit_info:
        compare_args.preflight(["--preset", "smoke"])
    assert exit_info.value.code == 2
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in capsys.readouterr().err


def test_resources_per_job_flag_parses_and_refuses_rays_own_names():
    assert cli.resources("accel=1, tpu_slice=0.5") == {"accel": 1.0, "tpu_slice": 0.5}
    for bad, message in (("GPU=1", "--gpus-per-job"), ("CPU=2", "--cpus-per-job"), ("accel", "NAME=AMOUNT"),
                         ("accel=0", "positive"), ("accel=x", "NAME=AMOUNT")):
        with pytest.raises(Exception, match=message):
            cli.resources(bad)


def test_resources_per_job_is_part_of_the_config_and_its_record():
    """What a job asks Ray for is a config field (a deployment sets it in its overrides; config.json keeps it)."""
    from rnnbench.config import CompareConfig

    args = compare_args.build_parser().parse_args(["--preset", "smoke", "--resources-per-job", "accel=1"])
    config = compare_args.config_from_args(args)
    assert config.resources_per_job == {"accel": 1.0}
    assert CompareConfig.model_validate_json(config.model_dump_json()).resources_per_job == {"accel": 1.0}
    assert from_preset("smoke", resources_per_job={"tpu": 0.5}).resources_per_job == {"tpu": 0.5}
    for bad, message in (({"GPU": 1}, "gpus_per_job"), ({"accel": 0}, "positive"), ({"memory": 1}, "Ray's own")):
        with pytest.raises(ValueError, match=message):
            from_preset("smoke", resources_per_job=bad)


def test_what_the_local_ray_can_never_provide_is_refused_not_waited_for(prefect_api, tmp_path):
    """On the private local Ray (one machine, never scales) a job asking for a GPU or a custom resource the machine
    lacks would wait forever: refused, naming both; never a KeyError."""
    proc = subprocess.run([sys.executable, "-m", "flows.compare", "--preset", "smoke", "--problems", "adding",
                           "--archs", "gru", "--gpus-per-job", "0.25", "--resources-per-job", "accel=1",
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "each job asks for GPU=0.25, accel=1 but the local Ray on this machine has GPU=0, accel=0" in proc.stderr
    assert "Traceback" not in proc.stderr and "KeyError" not in proc.stderr, proc.stderr[-3000:]


# ---- visible runs ----------------------------------------------------------------------------------------------

PROGRESS = r"jobs: (\d+)/(\d+) done, (\d+) failed, ETA ~\d+(\.\d)? (s|min|h) \(cost model\)"


def test_progress_lines_with_an_eta_when_stdout_is_not_a_terminal(own_api_env, tmp_path):
    """Piped stdout: a line when the jobs start, one every ~10 s while they run (here: while a gated job holds the
    sweep), one at the end; each with done/total, failures and an ETA from the cost model. Datasets have their
    own lines. The CLI's own temporary API serves no UI: no 'View at' link to it, but how to see the history."""
    gate = tmp_path / "gate"
    proc = cli_process(["--preset", "smoke", "--problems", "adding", "--archs", "gru,gated_gru",
                        "--out", str(tmp_path / "out")], {**own_api_env, **plugged(gate)})
    output = Output(proc)
    try:
        output.wait_for(r"datasets: \d+/3 done")  # train, validation and test files
        first = output.wait_for(PROGRESS)
        assert first.group(2) == "2"
        wait_for(lambda: any(gate.glob("started-*")), 300, "the gated job to start")
        ticked = output.wait_for(PROGRESS, timeout=60)  # nothing else logs a jobs line while the gate is closed
        assert int(ticked.group(1)) < 2
        (gate / "release").touch()
        output.wait_for(r"jobs: 2/2 done, 0 failed, in \d+")
        text = output.rest()
    finally:
        (gate / "release").touch()
        kill_group(proc.pid)
    assert proc.returncode == 0, text[-4000:]
    assert "View at" not in text, "a link to a UI that nobody serves"
    assert re.search(r"history: .*prefect server start.*--ui", text), text[-2000:]


def test_ui_keeps_the_prefect_ui_and_history_up_until_ctrl_c(own_api_env, tmp_path):
    proc = cli_process(["--preset", "smoke", "--problems", "adding", "--archs", "gru", "--ui",
                        "--out", str(tmp_path / "out")], own_api_env)
    output = Output(proc)
    try:
        match = output.wait_for(r"Prefect UI: (http://127\.0\.0\.1:(\d+))/runs/flow-run/([0-9a-f-]+) ", timeout=600)
        base, port, run_id = match.group(1), int(match.group(2)), match.group(3)
        # the run's page, as a browser asks for it (the UI is a single-page app: any of its paths is index.html)
        request = urllib.request.Request(f"{base}/runs/flow-run/{run_id}", headers={"Accept": "text/html"})
        with urllib.request.urlopen(request, timeout=30) as page:
            assert page.status == 200 and "text/html" in page.headers["content-type"]
            assert "<title>Prefect" in page.read().decode()
        with urllib.request.urlopen(f"{base}/ui-settings", timeout=30) as settings:
            assert json.loads(settings.read())["api_url"] == f"{base}/api"  # the UI's calls reach this API
        with urllib.request.urlopen(f"{base}/api/flow_runs/{run_id}", timeout=30) as api:
            assert json.loads(api.read())["state_type"] == "COMPLETED"  # the run's history, served after it
        assert f"View at {base}/runs/flow-run/{run_id}" in output.text()  # Prefect's own link, live this time
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C on a terminal: the whole foreground group
        text = output.rest(timeout=60)
    finally:
        kill_group(proc.pid)
    assert proc.returncode == 0, text[-4000:]
    assert "Prefect UI stopped" in text and "Traceback" not in text, text[-4000:]
    wait_for(lambda: not listening(port), 20, "the UI's port to close")
    wait_for(lambda: not group_members(proc.pid), 30, "every process of the run to exit")


def test_progress_says_the_same_on_a_terminal_bar_and_in_log_lines(capsys):
    """done/total, failures and the cost model's ETA: the bar's status column and the log line agree."""
    import logging

    from flows.progress import StageProgress, duration

    estimates = {"a": 10.0, "b": 20.0, "c": 30.0}
    lines = StageProgress("jobs", 4, logging.getLogger("test"), done=1, estimates=estimates, slots=2, terminal=False)
    assert lines.line() == "jobs: 1/4 done, 0 failed, ETA ~30 s (cost model)"  # 60 s of work over 2 slots
    lines.advance(["a"], failed=1)
    lines.started = time.monotonic()  # no wall-clock pace yet: the ETA is still the cost model's over the slots
    assert lines.line() == "jobs: 2/4 done, 1 failed, ETA ~25 s (cost model)"
    with StageProgress("jobs", 4, logging.getLogger("test"), done=1, estimates=estimates, slots=2,
                       terminal=True) as bar:
        bar.advance(["a"], failed=1)
        bar.started = time.monotonic()
        assert bar._status() == "1 failed, ETA ~25 s (cost model)"
        assert bar._bar.tasks[0].completed == 2 and bar._bar.tasks[0].total == 4
    assert [duration(s) for s in (0.2, 42, 300, 7200)] == ["1 s", "42 s", "5 min", "2.0 h"]


def test_a_run_is_named_by_preset_and_date_and_links_a_report_in_an_object_store(prefect_api, monkeypatch):
    """The compare flow's run name (flows.compare.run_name) reads the run's own parameters and scheduled time; a
    report whose output has an http(s) address is published as a link artifact under the run's key."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    from flows.compare import run_name
    from tasks.artifacts import publish_report_link

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/")

    @flow(flow_run_name=run_name)
    def named(preset: str = "smoke") -> tuple[str, str | None]:
        return flow_run.name, publish_report_link("s3://bucket/run/report.html")

    name, url = named()
    assert re.fullmatch(r"smoke-\d{4}-\d{2}-\d{2}-\d{4}", name), name
    assert url == "http://127.0.0.1:9/bucket/run/report.html"
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts(limit=50)
    links = [a for a in artifact if a.key == "rnnbench-report"]
    assert links and f"({url})" in links[0].data  # Prefect stores a link artifact as Markdown: [text](url)
