"""docs/PROBLEMS.md against the code (sections, baselines, solved rules), and no file pointing outside the project."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest

from rnnbench.problems import PROBLEMS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "PROBLEMS.md"
# spelled in pieces so that this file does not contain what it looks for
OUTSIDE = ("../" + "shared", "shared" + "/docs")
# relative steps at which the doc's threshold must sit on the code's flip: far above float rounding of the
# doc's own arithmetic (0.1 x 1/12), far below any difference between two rules worth writing down
FLIP = 1e-9


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def glance_rows(text: str) -> dict[str, list[str]]:
    """Problem name -> the cells of its row in the 'At a glance' table."""
    section = text.split("\n## At a glance", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = cells
    return rows


def expression(text: str, **names: float) -> float:
    """A formula as the doc prints it (1/12, 10·ln(8)/(T + 20), 0.1 × baseline), evaluated with `names`."""
    python = text.replace("·", "*").replace("×", "*").replace("−", "-").replace("ln(", "log(")
    if not re.fullmatch(r"[\w\s.*/+()-]+", python):
        raise ValueError(f"not a formula: {text!r}")
    # only arithmetic, names and log survive the check above, and no builtins are reachable
    return float(eval(python, {"__builtins__": {}, "log": math.log}, names))


def lengths(problem) -> list[int]:
    """Lengths at which to compare a baseline: the shortest allowed and a few longer ones where allowed."""
    shortest = problem.min_seq_len
    if not problem.length_generalises:
        return [shortest]
    return [shortest, shortest + 1, 2 * shortest + 7, 100, 1000]


class Scores(dict):
    """Every metric a solved rule may read (the primary one, copy_sequence's recall accuracy, ...) at one value."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> float:
        return self.value


def test_every_registered_problem_has_its_own_section():
    headings = [line for line in doc_text().splitlines() if re.match(r"#{2,4} ", line)]
    missing = [name for name in PROBLEMS if not any(f"`{name}`" in h for h in headings)]
    assert not missing, f"docs/PROBLEMS.md has no section heading for {missing}"


def project_files() -> list[Path]:
    """Tracked files and untracked ones git does not ignore, as they are in the working tree."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the project's files are what git tracks")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in dict.fromkeys(listed) if name and (ROOT / name).is_file()]


def test_no_project_file_points_outside_the_project():
    found = []
    for path in project_files():
        for number, line in enumerate(path.read_bytes().decode("utf-8", "replace").splitlines(), 1):
            if any(needle in line for needle in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "files that point outside the project (a clone has none of it):\n" + "\n".join(found)


def test_the_glance_table_has_a_row_for_every_registered_problem():
    rows = glance_rows(doc_text())
    assert sorted(PROBLEMS) == sorted(name for name in rows if name in PROBLEMS), sorted(set(PROBLEMS) - set(rows))


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_the_doc_baseline_is_the_code_baseline(name):
    problem = PROBLEMS[name]
    cells = glance_rows(doc_text())[name]
    formula = cells[-2].split("≈")[0]
    for seq_len in lengths(problem):
        assert expression(formula, T=seq_len) == pytest.approx(problem.baseline(seq_len), rel=1e-12), (
            f"{name} at T={seq_len}: docs/PROBLEMS.md says {cells[-2]!r}")
    if "≈" in cells[-2]:  # the rounded value printed beside a formula is its rounding
        shown = cells[-2].split("≈")[1].strip()
        assert f"{problem.baseline(lengths(problem)[0]):.{len(shown.split('.')[1])}f}" == shown


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_the_doc_solved_threshold_is_where_the_code_rule_flips(name):
    problem = PROBLEMS[name]
    cells = glance_rows(doc_text())[name]
    rule = re.fullmatch(r".*?(≥|≤)\s*(.+)", cells[-1])
    assert rule, f"{name}: no '≥ x' or '≤ x' in the solved column {cells[-1]!r}"
    for seq_len in lengths(problem):
        baseline = expression(cells[-2].split("≈")[0], T=seq_len)
        threshold = expression(rule.group(2), baseline=baseline, T=seq_len)
        step = FLIP * max(abs(threshold), 1.0)
        better, worse = (threshold + step, threshold - step) if rule.group(1) == "≥" else \
            (threshold - step, threshold + step)
        assert problem.solved_from(Scores(better), seq_len), f"{name} at T={seq_len}: {better} should be solved"
        assert not problem.solved_from(Scores(worse), seq_len), f"{name} at T={seq_len}: {worse} should not be"
        # where a problem declares its threshold on the primary metric, the declared number is the doc's too
        declared = getattr(problem, "solved_threshold", None)
        if callable(declared) and declared(seq_len) is not None:
            assert declared(seq_len) == pytest.approx(threshold, rel=FLIP), f"{name} at T={seq_len}"


def test_each_problem_section_states_the_same_solved_rule_as_the_table():
    text = doc_text()
    rows = glance_rows(text)
    for name in PROBLEMS:
        section = re.split(rf"\n###+ `{name}`\n", text)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        number = re.search(r"(≥|≤)\s*([\d.]+)", rows[name][-1]).group(2)
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", section), (
            f"{name}: its section never states the table's threshold {number}")
