"""`python -m flows.compare --dry-run [--json]`: the plan (jobs, CPU-hours, disk, epochs per cell), nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnbench import sizing
from rnnbench.config import from_preset
from rnnbench.plan import plan_lines, plan_numbers
from rnnbench.scheduling import cpu_hours

ROOT = Path(__file__).resolve().parent.parent
# the CLI's own preflight, then what it imported: a dry run must neither import nor start Ray or Prefect
SCRIPT = """
import json, sys
from flows import compare_args
code = None
try:
    compare_args.preflight(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "prefect": "prefect" in sys.modules, "ray": "ray" in sys.modules}), file=sys.stderr)
"""


def dry_run(tmp_path: Path, *flags: str) -> tuple[str, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *flags, "--out", str(tmp_path / "out")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    state = json.loads(proc.stderr.strip().splitlines()[-1])
    assert state == {"code": 0, "prefect": False, "ray": False}, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written: no output folder, no dataset, no probe
    return proc.stdout, state


@pytest.mark.parametrize("preset", ["full", "seed"])
def test_dry_run_json_gives_every_cells_epochs_and_the_disk_figure(preset, tmp_path):
    out, _ = dry_run(tmp_path, "--preset", preset, "--dry-run", "--json")
    plan = json.loads(out)
    config = from_preset(preset, out=str(tmp_path / "out"))
    runs = config.every_stage()
    assert plan["jobs"] == len(runs) and plan["cpu_hours"] == pytest.approx(cpu_hours(runs))
    assert plan["dataset_files"] == len(config.datasets())
    assert plan["dataset_bytes"] == sum(d.n_rows * sizing.row_bytes(d.problem, d.seq_len, d.variable,
                                                                    dict(d.options)) for d in config.datasets())
    assert 0 < plan["dataset_bytes"] <= sizing.SWEEP_DATA_BYTES
    assert {(c["problem"], c["seq_len"]) for c in plan["epochs"]} == {(r.problem, r.seq_len) for r in runs}
    assert all(c["max_epochs"] <= sizing.MAX_EPOCHS and not c["data_limited"] for c in plan["epochs"])
    assert plan["data_limited_cells"] == 0 and plan["max_epochs"] <= 10


def test_dry_run_text_heads_with_the_plan_a_real_run_prints(tmp_path):
    out, _ = dry_run(tmp_path, "--preset", "seed", "--dry-run")
    config = from_preset("seed", out=str(tmp_path / "out"))
    assert out.startswith("plan: 45 jobs")
    assert "data: 45 dataset files, 660 MiB on disk" in out
    assert "epochs per run (updates x batch size / stored training sequences), min-max per problem: adding 1-1" in out
    assert "every cell at most 10" in out
    # the same lines a real run prints first (compare_args.preflight, on stderr)
    assert out.strip().splitlines()[:2] == plan_lines(config, os.cpu_count() or 1).splitlines()


def test_a_forced_small_training_set_is_planned_as_data_limited():
    config = from_preset("smoke", n_train=64)
    plan = plan_numbers(config, 2)
    assert plan["data_limited_cells"] == plan["cells"] > 0
    assert "read more than 10 epochs and will be marked data-limited" in plan_lines(config, 2, plan)


def test_json_without_dry_run_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flows.compare", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--json: only with --dry-run" in proc.stderr
