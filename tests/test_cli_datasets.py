"""Tests for the dataset CLIs (flows.datasets, flows.validate): bad input fails fast and writes nothing; with a
Prefect API configured the flows run end to end against it (the session's); without one, the same checks run in
the command's own process, which starts no API and never imports Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

import flows.datasets
import flows.validate
from rnnbench.datasets import SPLITS, DatasetSpec
from tasks import dataset_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ["copy_memory", "sequential_xor", "adding"]


def expected_specs(seq_lens, n_train, n_test, seed, problems=PROBLEMS) -> list[DatasetSpec]:
    return [DatasetSpec(p, t, s, seed, n_train if s == "train" else n_test)
            for p, t, s in product(problems, seq_lens, SPLITS)]


def mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


# ---- bad input: SystemExit before any work starts (in process or on an API), nothing written ------------


@pytest.fixture
def no_prefect(monkeypatch):
    """Bad input must be rejected before any work starts: building or validating anything here is a test failure."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work was started for bad input")

    monkeypatch.setattr(flows.datasets, "build_all", forbidden)
    monkeypatch.setattr(flows.validate, "validate_all", forbidden)


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
    pytest.param(["--problems", "group_word", "--problem-option", "group_word.group=a6"],
                 ["'a6'", "z2", "a5", "s5"], id="unknown-group"),
    pytest.param(["--problems", "adding", "--problem-option", "group_word.group=a5"],
                 ["group_word", "--problems"], id="option-for-a-problem-not-built"),
    pytest.param(["--problems", "mqar", "--problem-option", "mqar.pairs"], ["mqar.pairs", "PROBLEM.KEY=VALUE"],
                 id="option-without-value"),
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


@pytest.mark.timeout(60)
def test_datasets_cli_builds_a_problem_at_its_given_settings(tmp_path, capsys, monkeypatch):
    """--problem-option reaches the files: group_word's a5 files under group=a5/, every target a product in A5 (60
    elements), and the files are the ones a sweep at that setting reads."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    out = tmp_path / "data"
    assert flows.datasets.main(["--problems", "group_word", "--seq-lens", "8", "--n-train", "16", "--n-test", "8",
                                "--problem-option", "group_word.group=a5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for split in SPLITS:
        spec = DatasetSpec("group_word", 8, split, 0, 16 if split == "train" else 8, options={"group": "a5"})
        path = spec.path(str(out))
        assert "group=a5" in path and f"wrote  {path}" in printed
        data = dataset_store.load(path, expected=spec)
        assert data.meta["problem_options"] == "group=a5"
    assert not list(out.rglob("group=z2*")) and not list(out.rglob("group=s3*"))


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


# ---- no API configured: in process ----------------------------------------------------------------------

IN_PROCESS = """
import json, sys
from pathlib import Path
import flows.datasets, flows.validate

out = sys.argv[1]
codes = [flows.datasets.main(["--problems", "adding,sequential_xor", "--seq-lens", "6", "--n-train", "20",
                              "--n-test", "8", "--seed", "1", "--out", out]),
         flows.validate.main([out])]
victim = sorted(Path(out).rglob("*.parquet"))[0]
victim.write_bytes(victim.read_bytes()[:100])
codes.append(flows.validate.main([out]))
print(json.dumps({"codes": codes, "victim": str(victim), "prefect": "prefect" in sys.modules}))
"""


@pytest.mark.timeout(120)
def test_without_an_api_the_commands_run_in_process_with_the_same_checks(tmp_path):
    """No PREFECT_API_URL: generation, validation at the Parquet boundary and atomic writes as in the flows, but in
    the command's own process: no Prefect server starts (its home gets no database) and Prefect is not imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    out = tmp_path / "data"
    proc = subprocess.run([sys.executable, "-c", IN_PROCESS, str(out)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 1]
    specs = expected_specs([6], 20, 8, 1, problems=["adding", "sequential_xor"])
    for spec in specs:
        path = spec.path(str(out))
        assert f"wrote  {path}" in proc.stdout
        if path != report["victim"]:
            assert f"{path}: valid (" in proc.stdout
            dataset_store.load(path, expected=spec)
    assert f"{len(specs)} valid, 0 invalid" in proc.stdout
    assert report["victim"] in proc.stderr and "readable_parquet" in proc.stderr
    assert f"{len(specs) - 1} valid, 1 invalid" in proc.stderr
    assert report["prefect"] is False
    assert not (tmp_path / "prefect-home").exists() or not list((tmp_path / "prefect-home").rglob("*.db"))
