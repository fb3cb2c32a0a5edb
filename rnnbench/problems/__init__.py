"""The problem registry: edit PROBLEMS to add a memory problem (it brings its default grid and solved rule along)."""

from __future__ import annotations

from collections.abc import Mapping

from rnnbench import plugins
from rnnbench.problems.adding import Adding
from rnnbench.problems.base import DefaultGrid, Problem
from rnnbench.problems.copy_memory import CopyMemory
from rnnbench.problems.copy_sequence import CopySequence
from rnnbench.problems.flip_flop import FlipFlop
from rnnbench.problems.group_word import GroupWord
from rnnbench.problems.mqar import MQAR
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
    # after the others, so that a `--subset i/n` of `full` still picks the jobs it picked before they came
    "group_word": GroupWord(),
    "mqar": MQAR(),
    "flip_flop": FlipFlop(),
}


# last, so that a plugin module can import Problem classes from this (half-initialised) package
plugins.extend(PROBLEMS, "PROBLEMS")


def get_problem(name: str, options: Mapping[str, object] | None = None) -> Problem:
    """Look a problem up by name, with its own settings (`options`: option name -> value, the others at their
    defaults; None: the registry's instance, every default); the error lists the valid names, or names the bad
    option and what is allowed."""
    try:
        problem = PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; valid problems: {', '.join(sorted(PROBLEMS))}") from None
    return problem if options is None else problem.configured(options)


def check_min_len(name: str, min_len: int, seq_len: int, options: Mapping[str, object] | None = None) -> None:
    """The problem's own `check_min_len` (with its `options`); where it has no variable-length form, the error
    names those that do."""
    problem = get_problem(name, options)
    if not problem.supports_variable_length:
        names = ", ".join(sorted(k for k, p in PROBLEMS.items() if p.supports_variable_length))
        raise ValueError(f"min_len={min_len}: problem {name!r} has no variable-length form; problems with one: "
                         f"{names}")
    problem.check_min_len(min_len, seq_len)


def check_eval_lens(name: str, eval_lens: list[int], seq_len: int,
                    options: Mapping[str, object] | None = None) -> None:
    """The problem's own `check_eval_lens` (with its `options`); where it has one length only, the error names
    those scored at any."""
    problem = get_problem(name, options)
    if not problem.length_generalises:
        names = ", ".join(sorted(k for k, p in PROBLEMS.items() if p.length_generalises))
        raise ValueError(f"--eval-lens: problem {name!r} is defined at one length only; problems whose answer is "
                         f"defined at any length: {names}")
    problem.check_eval_lens(eval_lens, seq_len)


__all__ = ["PROBLEMS", "DefaultGrid", "Problem", "check_eval_lens", "check_min_len", "get_problem"]
