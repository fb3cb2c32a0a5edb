"""rnnbench/memory.py: a training process keeps freed memory for reuse, so repeated large tensors fault in no pages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# in a fresh process (malloc's settings are per process and cannot be undone): page faults of the 3rd-7th
# allocation of a 64 MB tensor, each freed before the next, against the first's
PROBE = textwrap.dedent("""
    import resource, sys, torch
    from rnnbench.train import configure_cpu
    if sys.argv[1] == "configure":
        configure_cpu(1)
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    before = faults()
    torch.ones(16 * 1024 * 1024)
    first = faults() - before
    torch.ones(16 * 1024 * 1024)  # the heap settles at the second (measured: it faults in once more)
    before = faults()
    for _ in range(5):
        torch.ones(16 * 1024 * 1024)
    print(first, faults() - before)
""")


def _faults(mode: str, env: dict[str, str] | None = None) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))
    first, later = map(int, out.stdout.split())
    return first, later


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_configure_cpu_keeps_freed_memory_for_reuse():
    first, later = _faults("configure")
    assert first > 10_000  # 64 MB in 4 KB pages, faulted in once
    assert later < first, f"five reused blocks faulted in {later} pages, more than the first block ({first})"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("how", ["plain process", "RNNBENCH_MALLOC=default"])
def test_without_it_every_large_tensor_faults_in_fresh_pages(how):
    """The control: glibc's defaults map and unmap every 64 MB block, so each faults in again."""
    first, later = _faults("plain" if how == "plain process" else "configure",
                           {"RNNBENCH_MALLOC": "default"} if how != "plain process" else None)
    assert later > 5 * first * 0.9


def test_says_what_it_did(monkeypatch):
    from rnnbench import memory

    monkeypatch.setitem(memory._state, "done", None)
    monkeypatch.setenv("RNNBENCH_MALLOC", "default")
    assert memory.keep_freed_memory() == "glibc defaults (RNNBENCH_MALLOC=default)"
    monkeypatch.delenv("RNNBENCH_MALLOC")
    assert memory.keep_freed_memory() == "glibc defaults (RNNBENCH_MALLOC=default)"  # decided once per process


def test_a_bad_value_is_named_before_any_work(monkeypatch):
    from flows.compare_args import preflight

    monkeypatch.setenv("RNNBENCH_MALLOC", "huge")
    with pytest.raises(SystemExit) as exit_info:
        preflight(["--problems", "adding"])
    assert exit_info.value.code == 2
