"""The problem registry: edit PROBLEMS to add a memory problem (it brings its default grid and solved rule along)."""

from __future__ import annotations

from rnnbench import plugins
from rnnbench.problems.adding import Adding
from rnnbench.problems.base import DefaultGrid, Problem
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


def check_min_len(name: str, min_len: int, seq_len: int) -> None:
    """The problem's own `check_min_len`; where it has no variable-length form, the error names those that do."""
    problem = get_problem(name)
    if not problem.supports_variable_length:
        names = ", ".join(sorted(k for k, p in PROBLEMS.items() if p.supports_variable_length))
        raise ValueError(f"min_len={min_len}: problem {name!r} has no variable-length form; problems with one: "
                         f"{names}")
    problem.check_min_len(min_len, seq_len)


def check_eval_lens(name: str, eval_lens: list[int], seq_len: int) -> None:
    """The problem's own `check_eval_lens`; where it has one length only, the error names those scored at any."""
    problem = get_problem(name)
    if not problem.length_generalises:
        names = ", ".join(sorted(k for k, p in PROBLEMS.items() if p.length_generalises))
        raise ValueError(f"--eval-lens: problem {name!r} is defined at one length only; problems whose answer is "
                         f"defined at any length: {names}")
    problem.check_eval_lens(eval_lens, seq_len)


__all__ = ["PROBLEMS", "DefaultGrid", "Problem", "check_eval_lens", "check_min_len", "get_problem"]
