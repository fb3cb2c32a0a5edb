"""A --horizon sweep end to end (real CLI, Prefect API and Ray): killed mid-round and rerun, it ends with the
horizons.parquet of an uninterrupted run, and the report leads with the horizons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from schemas.horizons import Horizons
from schemas.metrics import read_validated
from tests.processes import plugged, wait_for

ROOT = Path(__file__).resolve().parent.parent
# sequential_xor is solved at every length within a few hundred updates, so the search doubles round by round
# up to its cap; gated_gru (tests/plugin_faults.py) holds its job until the test releases it
ARGV = ["--preset", "smoke", "--problems", "sequential_xor", "--archs", "rnn_tanh,gated_gru", "--seeds", "1",
        "--steps", "300", "--horizon", "4,24,4"]
TIMING = ["seconds", "seconds_per_update"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(autouse=True)
def test_archs(monkeypatch):
    """This process reads the sweeps' outputs, so it knows the plugin's archs too, for this module's tests only."""
    from rnnbench import plugins
    from rnnbench.archs import ARCHS

    monkeypatch.setenv(plugins.ENV, "tests.plugin_faults")
    before = set(ARCHS)
    plugins.extend(ARCHS, "ARCHS")
    yield
    for name in set(ARCHS) - before:
        del ARCHS[name]


def start(out: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows.compare", *ARGV, "--out", str(out)], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=600)
    return proc.returncode, output


def horizons(out: Path) -> pl.DataFrame:
    return read_validated(str(out / "horizons.parquet"), Horizons).drop(TIMING).sort("problem", "arch")


def test_a_horizon_sweep_killed_mid_round_resumes_to_the_same_horizons(prefect_api, tmp_path):
    interrupted, reference, gate = tmp_path / "interrupted", tmp_path / "reference", tmp_path / "gate"
    env = plugged(gate)
    proc = start(interrupted, env)
    # round 1: rnn_tanh's job runs, gated_gru's waits at its gate; the sweep is killed in that round
    wait_for(lambda: any(gate.glob("started-*")), 300, "the gated job to start")
    wait_for(lambda: len(list((interrupted / "runs").glob("*.json"))) >= 1 if (interrupted / "runs").is_dir()
             else False, 300, "rnn_tanh's first job to be stored")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the gated job's worker lives in a session of its own: released before it has exited, it could still store
    # its job; its pid is in its marker's name
    worker = int(next(gate.glob("started-*")).name.split("-")[1])
    wait_for(lambda: not Path(f"/proc/{worker}").exists(), 60, "the gated job's orphaned worker to exit")
    stored = len(list((interrupted / "runs").glob("*.json")))
    assert stored == 1 and not (interrupted / "horizons.parquet").exists()

    (gate / "release").touch()
    code, output = finish(start(interrupted, env))
    assert code == 0, output
    assert "2 jobs: 1 already finished" in output  # the round's finished job is reused, not trained again
    assert "horizon search, round 2" in output
    code, reference_output = finish(start(reference, env))
    assert code == 0, reference_output

    resumed = horizons(interrupted)
    assert resumed.equals(horizons(reference))
    assert resumed.height == 2 and resumed["search"].to_list() == ["search", "search"]
    assert resumed["lengths_tried"].to_list() == [[4, 8, 16, 24]] * 2  # doubled, the last step cut to the cap
    assert resumed["beyond_cap"].to_list() == [True, True]
    assert resumed["jobs"].to_list() == [4, 4]
    report = (interrupted / "report.md").read_text()
    assert report.index("## Answer") < report.index("plots/horizons.png") < report.index("plots/overview.png")
    assert (interrupted / "plots" / "horizons.png").exists()
