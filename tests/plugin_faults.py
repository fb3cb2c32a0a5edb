"""A test plugin (RNNBENCH_PLUGINS=tests.plugin_faults): architectures whose jobs the test controls.

`gated_gru` is a GRU whose job, when it builds its model, drops a marker `started-<pid>-<n>` in the folder
named by RNNBENCH_TEST_GATE and then waits until the test creates `release` there: a test kills or
interrupts it at a moment it chose, never on a timer. `raising_gru` raises while `fail` exists there.
Both train exactly as `gru` once let through (they draw nothing from the random streams before it).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from rnnbench.archs import ARCHS as BUILTIN
from rnnbench.archs import Arch

_count = itertools.count()


def _gate() -> Path:
    return Path(os.environ["RNNBENCH_TEST_GATE"])


def _gated(input_size, hidden_size, **options):
    gate = _gate()
    (gate / f"started-{os.getpid()}-{next(_count)}").touch()
    while not (gate / "release").exists():
        time.sleep(0.02)
    return BUILTIN["gru"].build(input_size, hidden_size, **options)


def _raising(input_size, hidden_size, **options):
    if (_gate() / "fail").exists():
        raise RuntimeError("injected fault (tests/plugin_faults.py)")
    return BUILTIN["gru"].build(input_size, hidden_size, **options)


_gru = BUILTIN["gru"]
ARCHS = {
    "gated_gru": Arch("gated_gru", _gated, "test plugin: gru behind a gate", _gru.options, _gru.recurrent_inits),
    "raising_gru": Arch("raising_gru", _raising, "test plugin: gru that raises on demand", _gru.options,
                        _gru.recurrent_inits),
}
