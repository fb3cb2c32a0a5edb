"""Tests for the dataset CLIs (flows.datasets, flows.validate): bad input fails fast and writes nothing;
the flows run end to end against the session's Prefect API; one subprocess run starts its own API."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

import flows.datasets
import flows.validate
from flows import runtime
from rnnbench.datasets import SPLITS, DatasetSpec
from tasks import dataset_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ["copy_memory", "sequential_xor", "adding"]


def expected_specs(seq_lens, n_train, n_test, seed, problems=PROBLEMS) -> list[DatasetSpec]:
    return [DatasetSpec(p, t, s, seed, n_train if s == "train" else n_test)
            for p, t, s in product(problems, seq_lens, SPLITS)]


def mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


# ---- bad input: SystemExit before any Prefect API starts, nothing written --------------------------------


@pytest.fixture
def no_prefect(monkeypatch):
    """Bad input must be rejected before the runtime is touched: starting an API here is a test failure."""

    def forbidden():
        raise AssertionError("a Prefect API was started for bad input")

    monkeypatch.setattr(runtime, "prefect_api", forbidden)


BAD_INPUT = [
    pytest.param(["--problems", "copy_memory,nope"], ["'nope'", "adding", "copy_memory", "sequential_xor"],
                 id="unknown-problem"),
    pytest.param(["--seq-lens", "1"], ["seq_len=1"], id="seq-len-1"),
    pytest.param(["--seq-lens", "20,0"], ["seq_len=0"], id="seq-len-0"),
    pytest.param(["--n-train", "0"], ["--n-train", "got 0"], id="n-train-0"),
    pytest.param(["--n-test", "-5"], ["--n-test", "got -5"], id="n-test-negative"),
    pytest.param(["--seed", "-1"], ["seed", "-1"], id="seed-negative"),
    pytest.param(["--seq-lens", "abc"], ["'abc'"], id="seq-lens-not-int"),
    pytest.param(["--n-train", "ten"], ["'ten'"], id="n-train-not-int"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("args", "named"), BAD_INPUT)
def test_datasets_cli_rejects_bad_input(args, named, tmp_path, capsys, no_prefect):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        # small valid sizes first; the bad value comes later on the command line, and argparse's last one wins
        flows.datasets.main(["--seq-lens", "5", "--n-train", "5", "--n-test", "5", *args, "--out", str(out)])
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err
    for text in named:
        assert text in err, err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(30)
def test_datasets_cli_rejects_unwritable_out(tmp_path, capsys, no_prefect):
    blocker = tmp_path / "a-file"
    blocker.write_text("I am a regular file\n")
    out = blocker / "data"
    with pytest.raises(SystemExit) as info:
        flows.datasets.main(["--seq-lens", "5", "--n-train", "5", "--n-test", "5", "--out", str(out)])
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert str(out) in err and "cannot be written" in err
    assert [p.name for p in tmp_path.rglob("*")] == ["a-file"]
    assert blocker.read_text() == "I am a regular file\n"


@pytest.mark.timeout(30)
def test_validate_cli_rejects_empty_directory(tmp_path, capsys, no_prefect):
    with pytest.raises(SystemExit) as info:
        flows.validate.main([str(tmp_path)])
    assert info.value.code not in (0, None)
    assert str(tmp_path) in capsys.readouterr().err


# ---- end to end with the session's Prefect API -----------------------------------------------------------


@pytest.mark.timeout(180)
def test_datasets_flow_writes_reuses_and_validates(prefect_api, tmp_path, capsys):
    out = tmp_path / "data"
    argv = ["--problems", ",".join(PROBLEMS), "--seq-lens", "4,9", "--n-train", "30", "--n-test", "12",
            "--seed", "5", "--out", str(out)]
    specs = expected_specs([4, 9], 30, 12, 5)

    assert flows.datasets.main(argv) == 0
    printed = capsys.readouterr().out
    for spec in specs:
        path = spec.path(str(out))
        assert Path(path).is_file(), path
        assert f"wrote  {path}" in printed
        dataset_store.load(path, expected=spec)
    # 3 problems x 2 lengths x 3 splits, and nothing else (no temp or probe files) left behind
    assert len(mtimes(out)) == len(specs) == 18
    before = mtimes(out)

    assert flows.datasets.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("reused ") == len(specs) and "wrote" not in printed
    assert mtimes(out) == before

    assert flows.validate.main([str(out)]) == 0
    assert f"{len(specs)} valid, 0 invalid" in capsys.readouterr().out

    victim = Path(specs[3].path(str(out)))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    assert flows.validate.main([str(out)]) == 1
    err = capsys.readouterr().err
    assert str(victim) in err and "readable_parquet" in err
    assert f"{len(specs) - 1} valid, 1 invalid" in err


# ---- the embedded API, with nothing started by hand ------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_datasets_cli_subprocess_starts_its_own_api(tmp_path):
    env = dict(os.environ)
    for key in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_SERVER_EPHEMERAL_ENABLED"):
        env.pop(key, None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # a fresh database, isolated from ~/.prefect
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "flows.datasets", "--problems", "adding,sequential_xor", "--seq-lens", "6",
           "--n-train", "20", "--n-test", "8", "--seed", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for spec in expected_specs([6], 20, 8, 1, problems=["adding", "sequential_xor"]):
        path = spec.path(str(out))
        assert f"wrote  {path}" in proc.stdout
        dataset_store.load(path, expected=spec)
