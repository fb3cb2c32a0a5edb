"""Architecture options against the registry: the `arch.key=value` syntax, checks, and resolution for one run.

Torch-free: the driver parses and checks options, and rnnbench.rows records them, without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rnnbench import assignments
from rnnbench.archs import ARCHS
from rnnbench.archs.spec import ArchOption, RunShape, Value


def _with_options() -> str:
    return ", ".join(f"{name} ({', '.join(o.name for o in arch.arch_options)})"
                     for name, arch in sorted(ARCHS.items()) if arch.arch_options)


def split_key(key: object) -> tuple[str, ArchOption]:
    """'lru.r_max' -> ('lru', its ArchOption); ValueError listing the valid archs or keys."""
    if not isinstance(key, str) or key.count(".") != 1 or not all(key.split(".")):
        raise ValueError(f"arch option {key!r}: expected ARCH.KEY, e.g. lru.r_max; archs with options: "
                         f"{_with_options()}")
    arch_name, name = key.split(".")
    if arch_name not in ARCHS:
        raise ValueError(f"arch option {key!r}: unknown arch {arch_name!r}; archs with options: {_with_options()}")
    arch = ARCHS[arch_name]
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
    return assignments.parse_assignments(items, "arch option", "ARCH.KEY=VALUE, e.g. lru.r_max=0.999")


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
    for arch_name, given in by_arch.items():
        arch = ARCHS[arch_name]
        if arch.check_options is not None:
            defaults = {o.name: o.default for o in arch.arch_options}
            arch.check_options({**defaults, **given})
    return typed


def resolve(arch_name: str, given: Mapping[str, Value], shape: RunShape) -> dict[str, Value | None]:
    """Every option of `arch_name` for one run, by name: the given value ('arch.key' in `given`; other archs' keys
    are ignored), else the default, else the value derived from the run (None: the module's own init)."""
    arch = ARCHS[arch_name]
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
    return {option.column(name): (name, option) for name, arch in ARCHS.items()
            for option in arch.arch_options if option.field is None}


__all__ = ["ArchOption", "RunShape", "Value", "check_arch_options", "option_columns", "parse_assignments",
           "resolve", "split_key"]
