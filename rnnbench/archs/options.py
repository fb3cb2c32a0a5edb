"""Architecture options: each arch's own typed settings, the `arch.key=value` syntax, checks and resolution.

Torch-free: the driver parses and checks options, and rnnbench.rows records them, without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

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


def _registry():
    from rnnbench.archs import ARCHS

    return ARCHS


def _with_options() -> str:
    return ", ".join(f"{name} ({', '.join(o.name for o in arch.arch_options)})"
                     for name, arch in sorted(_registry().items()) if arch.arch_options)


def split_key(key: object) -> tuple[str, ArchOption]:
    """'lru.r_max' -> ('lru', its ArchOption); ValueError listing the valid archs or keys."""
    archs = _registry()
    if not isinstance(key, str) or key.count(".") != 1 or not all(key.split(".")):
        raise ValueError(f"arch option {key!r}: expected ARCH.KEY, e.g. lru.r_max; archs with options: "
                         f"{_with_options()}")
    arch_name, name = key.split(".")
    if arch_name not in archs:
        raise ValueError(f"arch option {key!r}: unknown arch {arch_name!r}; archs with options: {_with_options()}")
    arch = archs[arch_name]
    for option in arch.arch_options:
        if option.name == name:
            return arch_name, option
    if not arch.arch_options:
        raise ValueError(f"arch option {key!r}: arch {arch_name!r} takes no options; archs with options: "
                         f"{_with_options()}")
    raise ValueError(f"arch option {key!r}: arch {arch_name!r} has no option {name!r}; its options: "
                     f"{', '.join(o.name for o in arch.arch_options)}")


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """The text of repeated / comma-separated `ARCH.KEY=VALUE` flags -> {key: value text}; a key given twice with
    different values is refused."""
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"arch option {part.strip()!r}: expected ARCH.KEY=VALUE, e.g. lru.r_max=0.999")
            if key in out and out[key] != value:
                raise ValueError(f"arch option {key} given twice: {out[key]} and {value}")
            out[key] = value
    return out


def check_arch_options(options: Mapping[str, object] | None) -> dict[str, Value]:
    """Every key known and every value of its type and in its range (and each arch's own cross-checks, e.g. LRU's
    r_min < r_max with the other at its default); returns {key: typed value}, sorted by key."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"arch options must map ARCH.KEY to a value, got {options!r}")
    typed: dict[str, Value] = {}
    by_arch: dict[str, dict[str, Value]] = {}
    for key in sorted(options):
        arch_name, option = split_key(key)
        typed[key] = by_arch.setdefault(arch_name, {})[option.name] = option.coerce(arch_name, options[key])
    archs = _registry()
    for arch_name, given in by_arch.items():
        arch = archs[arch_name]
        if arch.check_options is not None:
            defaults = {o.name: o.default for o in arch.arch_options}
            arch.check_options({**defaults, **given})
    return typed


def resolve(arch_name: str, given: Mapping[str, Value], shape: RunShape) -> dict[str, Value | None]:
    """Every option of `arch_name` for one run, by name: the given value ('arch.key' in `given`; other archs' keys
    are ignored), else the default, else the value derived from the run (None: the module's own init)."""
    arch = _registry()[arch_name]
    values: dict[str, Value | None] = {}
    for option in arch.arch_options:
        key = f"{arch_name}.{option.name}"
        if key in given:
            values[option.name] = option.coerce(arch_name, given[key])
        elif option.default is None and option.derive is not None:
            values[option.name] = option.derive(shape)
        else:
            values[option.name] = option.default
    if arch.check_options is not None:
        arch.check_options(values)
    return values


def option_columns() -> dict[str, tuple[str, ArchOption]]:
    """{metrics column: (arch, option)} for the options recorded in their own opt_* column."""
    return {option.column(name): (name, option) for name, arch in _registry().items()
            for option in arch.arch_options if option.field is None}


__all__ = ["ArchOption", "RunShape", "Value", "check_arch_options", "option_columns", "parse_assignments",
           "resolve", "split_key"]
