"""Shared command-line parsing: comma lists, integer and address checks that name the bad value."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import NoReturn
from urllib.parse import urlparse

from flows.api_server import RuntimeStartError
from rnnbench.config import RAY_BUILTIN_RESOURCES


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


def floats(text: str) -> list[float]:
    try:
        return [float(part) for part in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None




def resources(text: str) -> dict[str, float]:
    """'accel=1,tpu_slice=0.5' -> {name: amount}: custom Ray resources each job asks for."""
    out: dict[str, float] = {}
    for item in names(text):
        name, sep, amount = item.partition("=")
        name = name.strip()
        try:
            value = float(amount) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not name or not value > 0:
            raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT with a positive amount, got {item!r}")
        if name in RAY_BUILTIN_RESOURCES:
            flag = RAY_BUILTIN_RESOURCES[name]
            raise argparse.ArgumentTypeError(f"{name!r} is Ray's own resource" + (f": use {flag}" if flag else ""))
        out[name] = value
    return out


def positive_int(value: int, what: str) -> int:
    if value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def exit_now(code: int) -> NoReturn:
    """Exit once a CLI has written, flushed and stopped everything: skips the interpreter's teardown of the
    modules it imported (Prefect, Ray, polars, ...), which takes most of a second and does nothing for the user."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def fail(message: str, code: int = 2) -> NoReturn:
    """CLI exit for bad input: one clear line on stderr, non-zero status."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail within seconds, naming the address, when nothing listens there (ray.init would wait minutes)."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT, 'auto' or 'local'")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise RuntimeStartError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
