"""RNNBENCH_FASTPATH: which CPU fast paths run (read without importing torch, so the CLI can check it first)."""

from __future__ import annotations

import os

# unset, 1 or on: both; 0 or off: neither; classic: the C++ path of rnn_tanh/rnn_relu/gru/lstm
# (rnnbench/archs/fastpath.py); modern: the recurrent form of the modern cells on a CPU
# (rnnbench/archs/scan.pick_form). Both are on by default; the others exist so that a benchmark can time what
# each one gains (benchmarks/preset_time.py --fastpath).
BOTH = ("classic", "modern")
FASTPATH_VALUES = {"1": BOTH, "on": BOTH, "true": BOTH, "yes": BOTH, "0": (), "off": (), "false": (), "no": (),
                   "classic": ("classic",), "modern": ("modern",)}


def fast_path_enabled(kind: str) -> bool:
    """Whether the CPU fast path `kind` ("classic" or "modern") is on by RNNBENCH_FASTPATH (default: both)."""
    value = os.environ.get("RNNBENCH_FASTPATH", "1").strip().lower()
    if value not in FASTPATH_VALUES:
        raise ValueError(f"RNNBENCH_FASTPATH={value!r}: allowed values are {', '.join(FASTPATH_VALUES)}")
    return kind in FASTPATH_VALUES[value]


__all__ = ["FASTPATH_VALUES", "fast_path_enabled"]
