"""What an architecture declares to the registry: Arch (how to build its core, which options it takes) and ArchOption.

Torch-free: the driver parses and checks options, and rnnbench.rows records them, without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from torch import nn

Value = float | int | bool | str

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class RunShape(NamedTuple):
    """What a derived default may depend on."""

    seq_len: int
    hidden_size: int


@dataclass(frozen=True)
class ArchOption:
    """One setting of one architecture: its constructor keyword, type, default (with its source) and range.

    `default=None` means either "computed from the run" (`derive`, e.g. IndRNN's bound from T) or "the
    module's own init" (e.g. nn.LSTM's forget-gate bias); `source` says which and cites the paper.
    """

    name: str  # the core's constructor keyword, and the KEY of ARCH.KEY=VALUE
    type: type  # float, int, bool or str
    default: Value | None
    source: str  # where the default comes from: paper and section, or why None
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False
    choices: tuple[str, ...] = ()
    derive: Callable[[RunShape], Value] | None = None  # the default, computed from the run, when `default` is None
    field: str | None = None  # kept in ModelOptions.<field> (an older flag's home) rather than in arch_options

    def column(self, arch: str) -> str:
        """Its metrics column: opt_<arch>_<name> (or the older flag's own column)."""
        return self.field or f"opt_{arch}_{self.name}"

    def allowed(self) -> str:
        """The allowed values in words, e.g. 'a number in (0, 1]'."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        kind = "an integer" if self.type is int else "a number"
        if self.low is None and self.high is None:
            return kind if self.type is int else "a finite number"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{kind} in {left}{lo}, {hi}{right}"

    def coerce(self, arch: str, raw: object) -> Value:
        """`raw` (a typed value, or the text of a flag) as this option's type; ValueError naming the value."""
        where = f"{arch}.{self.name}={raw!r}"
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
                return raw.strip().lower() in _TRUE
            raise ValueError(f"{where}: expected {self.allowed()}")
        if self.type is str:
            if not isinstance(raw, str) or (self.choices and raw not in self.choices):
                raise ValueError(f"{where}: expected {self.allowed()}")
            return raw
        if isinstance(raw, bool):
            raise ValueError(f"{where}: expected {self.allowed()}, not a boolean")
        try:
            number = float(raw.strip()) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: not a number; expected {self.allowed()}") from None
        if not math.isfinite(number):
            raise ValueError(f"{where}: expected {self.allowed()}")
        if self.type is int:
            if number != int(number):
                raise ValueError(f"{where}: not an integer; expected {self.allowed()}")
            number = int(number)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise ValueError(f"{where}: out of range; expected {self.allowed()}")
        return number


@dataclass(frozen=True)
class Arch:
    """How to build one architecture's core, and which options it takes.

    `options` names the shared ModelOptions fields beyond num_layers/bias/dropout that it accepts;
    `arch_options` are its own settings (`--arch-option ARCH.KEY=VALUE`), each passed to the core's constructor
    under its name, with the paper's default; `check_options` cross-checks them (ValueError naming the values).
    """

    name: str
    build: Callable[..., nn.Module]
    source: str
    options: frozenset[str] = field(default_factory=frozenset)
    recurrent_inits: tuple[str, ...] = ("default",)
    arch_options: tuple[ArchOption, ...] = ()
    check_options: Callable[[dict[str, Value | None]], None] | None = None
    # what expressivity results know it as (rnnbench.theory reads it; FAMILIES says what each means); "" for none
    family: str = ""


# the recurrence families rnnbench.theory's predictions name; an arch declares one (or "": no prediction applies)
FAMILIES = {
    "dense_nonlinear": "a dense recurrence through a saturating nonlinearity (tanh RNN, GRU, LSTM)",
    "dense_relu": "a dense recurrence through a ReLU",
    "diagonal_relu": "a diagonal (element-wise) recurrence through a ReLU (IndRNN)",
    "diagonal_positive": "a recurrence linear in the state, diagonal, input-dependent, with eigenvalues (gates) in "
                         "(0, 1) (minGRU, minLSTM)",
    "diagonal_time_invariant": "a recurrence linear in the state, diagonal and input-independent, with complex "
                               "eigenvalues inside the unit circle (LRU)",
}


__all__ = ["FAMILIES", "Arch", "ArchOption", "RunShape", "Value"]
