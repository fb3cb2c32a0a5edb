"""Problem options against the registry: the `PROBLEM.KEY=VALUE` syntax, checks, and each run's resolved settings.

Mirrors rnnbench/archs/options.py: a problem declares its settings (`Problem.problem_options`); a sweep gives some
as `--problem-option group_word.group=a5`; every run records its problem's settings, all resolved, in
opt_<problem>_<key> columns, so runs that differ in one are different cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rnnbench import assignments
from rnnbench.archs.spec import Value
from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.problems.base import ProblemOption


def _with_options() -> str:
    return ", ".join(f"{name} ({', '.join(o.name for o in problem.problem_options)})"
                     for name, problem in sorted(PROBLEMS.items()) if problem.problem_options) or "none"


def split_key(key: object) -> tuple[str, ProblemOption]:
    """'group_word.group' -> ('group_word', its option); ValueError listing the problems with options or the keys."""
    if not isinstance(key, str) or key.count(".") != 1 or not all(key.split(".")):
        raise ValueError(f"problem option {key!r}: expected PROBLEM.KEY, e.g. group_word.group; problems with "
                         f"options: {_with_options()}")
    problem_name, name = key.split(".")
    if problem_name not in PROBLEMS:
        raise ValueError(f"problem option {key!r}: unknown problem {problem_name!r}; problems with options: "
                         f"{_with_options()}")
    options = PROBLEMS[problem_name].problem_options
    for option in options:
        if option.name == name:
            return problem_name, option
    if not options:
        raise ValueError(f"problem option {key!r}: problem {problem_name!r} takes no options; problems with "
                         f"options: {_with_options()}")
    raise ValueError(f"problem option {key!r}: problem {problem_name!r} has no option {name!r}; its options: "
                     f"{', '.join(o.name for o in options)}")


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """The text of repeated / comma-separated `PROBLEM.KEY=VALUE` flags -> {key: value text}; a key given twice
    with different values is refused (one value per sweep: a sweep's cells of one problem share its settings)."""
    return assignments.parse_assignments(items, "problem option", "PROBLEM.KEY=VALUE, e.g. group_word.group=a5",
                                         "; a sweep runs one value of each (run another --out for another)")


def check_problem_options(options: Mapping[str, object] | None) -> dict[str, Value]:
    """Every key known, every value of its type and range, and each problem's own cross-checks (mqar: no more
    queries than pairs); returns {key: typed value}, sorted by key."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"problem options must map PROBLEM.KEY to a value, got {options!r}")
    typed: dict[str, Value] = {}
    by_problem: dict[str, dict[str, Value]] = {}
    for key in sorted(options):
        problem_name, option = split_key(key)
        typed[key] = by_problem.setdefault(problem_name, {})[option.name] = option.coerce(problem_name, options[key])
    for problem_name, given in by_problem.items():
        get_problem(problem_name, given)
    return typed


def given_for(problem_name: str, options: Mapping[str, Value]) -> dict[str, Value]:
    """{key: value} of `problem_name`'s own entries of sweep-wide PROBLEM.KEY options (others' keys dropped)."""
    prefix = f"{problem_name}."
    return {key.removeprefix(prefix): value for key, value in options.items() if key.startswith(prefix)}


def problem_option_columns() -> dict[str, tuple[str, ProblemOption]]:
    """{metrics column: (problem, option)}: opt_<problem>_<key>, null on other problems' rows."""
    return {option.column(name): (name, option) for name, problem in PROBLEMS.items()
            for option in problem.problem_options}


__all__ = ["check_problem_options", "given_for", "parse_assignments", "problem_option_columns", "split_key"]
