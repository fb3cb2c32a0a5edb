"""The README a newcomer reads: its length, its two commands (the test one is what CI runs), links and layout."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PACKAGES = ("flows", "tasks", "schemas", "rnnbench")
# what only one machine needs: a pinned torch build, byte-compiling for a PYTHONDONTWRITEBYTECODE machine
MACHINE_SPECIFIC = ("torch==", "compileall", "PYTHONDONTWRITEBYTECODE", "/opt/", "/work/")


def _text() -> str:
    return README.read_text(encoding="utf-8")


def commands(text: str) -> list[str]:
    """The lines of the README's ```bash blocks under its 'Two commands' heading."""
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_is_short_enough_to_read_top_to_bottom():
    assert len(_text().splitlines()) <= 200


def test_two_commands_one_runs_the_sweep_one_the_tests_and_nothing_machine_specific():
    lines = commands(_text())
    assert len(lines) == 2, lines
    run, test = lines
    assert run.endswith("python -m flows.compare"), run
    assert test.endswith("python -m pytest"), test
    for line in lines:
        for word in MACHINE_SPECIFIC:
            assert word not in line, f"{word!r} in a README command: {line}"


def test_ci_runs_the_readme_test_command_as_written():
    test = commands(_text())[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines(), "the README's test command is not a line of .ci/run"


def test_every_module_is_in_the_layout():
    layout = _text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__init__.py" and path.parent.name in PACKAGES:
                continue
            name = path.stem if path.name != "__init__.py" else path.parent.name + "/"
            if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", layout):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules the README's layout does not name: {missing}"


def test_relative_links_land_on_files():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", _text()):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
