"""The process-group helper the tests and benchmarks share (tests/processes.py): every member ends, TERM then KILL."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import group_members, kill_group, wait_for

# a leader that starts a child and sleeps; with "ignore" the leader (not its child) survives SIGTERM
GROUP = """
import signal, subprocess, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
time.sleep(120)
"""


def _group(term: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", GROUP, term], start_new_session=True)
    wait_for(lambda: len(group_members(proc.pid)) == 2, 30, "the leader and its child")
    return proc


def test_a_group_that_ends_on_sigterm_is_not_killed():
    proc = _group("default")
    assert kill_group(proc.pid, grace=10.0) is False
    assert group_members(proc.pid) == []
    proc.wait(timeout=5)


def test_a_group_that_outlives_its_grace_is_killed_every_member():
    proc = _group("ignore")
    assert kill_group(proc.pid, grace=0.5) is True
    assert group_members(proc.pid) == []
    assert proc.wait(timeout=5) == -9


def test_without_a_grace_the_group_is_killed_at_once():
    proc = _group("default")
    assert kill_group(proc.pid) is True
    assert group_members(proc.pid) == []
    assert proc.wait(timeout=5) == -9
