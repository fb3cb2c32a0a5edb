"""The problem registry: edit PROBLEMS to add a memory problem."""

from __future__ import annotations

from rnnbench import plugins
from rnnbench.problems.adding import Adding
from rnnbench.problems.base import Problem
from rnnbench.problems.copy_memory import CopyMemory
from rnnbench.problems.copy_sequence import CopySequence
from rnnbench.problems.parity import Parity
from rnnbench.problems.selective_copy import SelectiveCopy
from rnnbench.problems.sequential_digits import SequentialDigits, SequentialDigitsPermuted
from rnnbench.problems.sequential_xor import SequentialXor
from rnnbench.problems.temporal_order import TemporalOrder

PROBLEMS: dict[str, Problem] = {
    "copy_memory": CopyMemory(),
    "sequential_xor": SequentialXor(),
    "adding": Adding(),
    "copy_sequence": CopySequence(),
    "selective_copy": SelectiveCopy(),
    "temporal_order": TemporalOrder(),
    "parity": Parity(),
    # needs the optional scikit-learn (extra "digits"), imported only when its data is first used
    "sequential_digits": SequentialDigits(),
    "sequential_digits_permuted": SequentialDigitsPermuted(),
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
