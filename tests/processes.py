"""Helpers for tests that start servers and check what is left running: free ports, listening ports, process
groups and command lines, read from /proc."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _proc_stat(pid_dir: Path) -> tuple[str, int] | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _proc_stat(entry)) and st[1] == pgid and st[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def kill_group(pgid: int, grace: float = 0.0) -> bool:
    """End a process group started with start_new_session (pgid = its leader's pid): SIGTERM first when `grace`
    seconds are given for it to finish (Ray's daemons flush and remove their files), then SIGKILL; returns once
    no live member is left, or after 5 s more. True when the group was still there for SIGKILL."""
    steps = ((signal.SIGTERM, grace),) if grace > 0 else ()
    for sig, wait in (*steps, (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return False  # the group has ended
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and group_members(pgid):
            time.sleep(0.2)
        if not group_members(pgid):
            return sig == signal.SIGKILL
    return True


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line (arguments joined by spaces) contains `text`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        st = _proc_stat(entry)
        if text in cmdline and st and st[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll `condition` (an event the test controls or awaits) until it holds; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def plugged(gate: Path) -> dict[str, str]:
    """The environment that registers the test's controllable archs (tests/plugin_faults.py) in the driver and,
    inherited, in every Ray worker."""
    gate.mkdir(exist_ok=True)
    return {"RNNBENCH_PLUGINS": "tests.plugin_faults", "RNNBENCH_TEST_GATE": str(gate),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
