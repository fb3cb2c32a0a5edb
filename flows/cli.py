"""Shared command-line parsing: comma lists and integer checks that name the bad value."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def names(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def ints(text: str) -> list[int]:
    try:
        return [int(part) for part in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def positive_int(value: int, what: str) -> int:
    if value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def fail(message: str, code: int = 2) -> NoReturn:
    """CLI exit for bad input: one clear line on stderr, non-zero status."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
