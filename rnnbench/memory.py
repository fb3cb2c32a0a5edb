"""How a training process's C allocator treats freed memory: kept for reuse, so no step pays page faults."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# blocks under this size come from the heap, and the heap's free top is kept up to this size: about every tensor a
# training step allocates and frees (the largest of a sweep's jobs: a few hundred MB)
KEEP_BYTES = 1 << 30

MALLOC_VALUES = ("keep", "default")

_state: dict[str, str | None] = {"done": None}


def keep_freed_memory() -> str:
    """Make glibc keep freed memory for reuse instead of unmapping it (and mapping fresh pages, each one faulting
    in, at the next step). With glibc's defaults, a block over its mmap threshold is mapped at every allocation and
    unmapped at every free: nn.LSTM at T=1000 took ~79,000 page faults a training step here (308 ms; with memory
    kept 266 faults and 170 ms), minLSTM's step at T=200 37.4 against 29.2 ms (benchmarks/cell_speed.py
    --malloc-default against its default). The process's resident memory then stays at its peak: a worker's jobs
    use the same sizes step after step. Once per process; RNNBENCH_MALLOC=default leaves malloc alone. Returns
    what was done; a bad RNNBENCH_MALLOC raises ValueError naming the allowed values."""
    if _state["done"] is not None:
        return _state["done"]
    result = "glibc defaults (RNNBENCH_MALLOC=default)" if malloc_setting() == "default" else _mallopt()
    _state["done"] = result
    return result


def malloc_setting() -> str:
    """RNNBENCH_MALLOC: "keep" (the default: freed memory kept for reuse) or "default" (glibc's own settings)."""
    value = os.environ.get("RNNBENCH_MALLOC", "keep").strip().lower() or "keep"
    if value not in MALLOC_VALUES:
        raise ValueError(f"RNNBENCH_MALLOC={value!r}: allowed values are {', '.join(MALLOC_VALUES)}")
    return value


def _mallopt() -> str:
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return "left as it is (no glibc mallopt here)"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) != 1:
        return "left as it is (mallopt refused)"
    # some glibc versions cap the mmap threshold at 32 MiB (64-bit): then blocks up to that size are kept
    for limit in (KEEP_BYTES, 32 << 20):
        if mallopt(_M_MMAP_THRESHOLD, limit) == 1:
            return f"freed memory kept for reuse (glibc mallopt: no mmap under {limit >> 20} MiB, no trim under 1 GiB)"
    return "heap top kept, large blocks still mapped (mallopt refused the mmap threshold)"


__all__ = ["KEEP_BYTES", "MALLOC_VALUES", "keep_freed_memory", "malloc_setting"]
