"""The problem registry: edit PROBLEMS to add a memory problem."""

from __future__ import annotations

from rnnbench import plugins
from rnnbench.problems.adding import Adding
from rnnbench.problems.base import Problem
from rnnbench.problems.copy_memory import CopyMemory
from rnnbench.problems.sequential_xor import SequentialXor

PROBLEMS: dict[str, Problem] = {
    "copy_memory": CopyMemory(),
    "sequential_xor": SequentialXor(),
    "adding": Adding(),
}


# last, so that a plugin module can import Problem classes from this (half-initialised) package
plugins.extend(PROBLEMS, "PROBLEMS")


def get_problem(name: str) -> Problem:
    """Look a problem up by name; the error lists the valid names."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; valid problems: {', '.join(sorted(PROBLEMS))}") from None


__all__ = ["PROBLEMS", "Problem", "get_problem"]
