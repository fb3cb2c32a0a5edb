"""`NAME.KEY=VALUE` flags (--arch-option, --problem-option): repeated or comma-separated text -> {key: value text}."""

from __future__ import annotations

from collections.abc import Iterable


def parse_assignments(items: Iterable[str], kind: str, example: str, twice_hint: str = "") -> dict[str, str]:
    """{key: value text} of every `NAME.KEY=VALUE` in `items`; a key given twice with different values is refused.
    `kind` ("arch option") and `example` ("ARCH.KEY=VALUE, e.g. lru.r_max=0.999") word the errors."""
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"{kind} {part.strip()!r}: expected {example}")
            if key in out and out[key] != value:
                raise ValueError(f"{kind} {key} given twice: {out[key]} and {value}{twice_hint}")
            out[key] = value
    return out


__all__ = ["parse_assignments"]
