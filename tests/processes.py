"""Helpers for tests that check what is left running: is a loopback port listening, which processes run a command."""

from __future__ import annotations

import socket
from pathlib import Path


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def processes_with(text: str) -> list[int]:
    """PIDs whose command line (arguments joined by spaces) contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(entry.name))
        except OSError:
            pass
    return found
