"""Sizes known before any work: bytes of a dataset file, the default training-set size, one job's memory."""

from __future__ import annotations

import os
import shutil

from rnnbench.problems import get_problem

# one training file at most this big: it is read whole into host memory by every job that trains on it (never
# copied whole onto a GPU), so this bounds a job's data memory, and 256 MB keeps sweeps of many lengths on disk
TRAIN_FILE_BYTES = 256 * 2**20
FLOAT = 4


def row_bytes(problem_name: str, seq_len: int, variable: bool = False, options=None) -> int:
    """Bytes one stored sequence takes in a dataset file (id, x, y, and its length when variable), of the problem
    with its settings (`options`)."""
    problem = get_problem(problem_name, options)
    x = problem.input_steps(seq_len) * problem.input_size
    y = problem.target_steps(seq_len) * problem.target_width
    return 8 + FLOAT * (x + y) + (4 if variable else 0)


def auto_n_train(problem_name: str, seq_len: int, steps: int, batch_size: int, variable: bool = False,
                 options=None) -> int:
    """The default number of distinct training sequences: every update sees fresh ones (as in the notebook)
    while that fits in one TRAIN_FILE_BYTES file; past that, the largest set that fits, read in shuffled
    epochs. Never fewer than one batch."""
    fits = TRAIN_FILE_BYTES // row_bytes(problem_name, seq_len, variable, options)
    return max(batch_size, min(steps * batch_size, fits))


def job_memory_bytes(problem_name: str, seq_len: int, n_rows: int, batch_size: int, hidden_size: int,
                     num_layers: int, variable: bool = False, options=None) -> int:
    """A generous estimate of one training job's peak memory: its datasets in host memory (read once, plus
    one copy while decoding), the activations autograd keeps for a batch (about 8 hidden-sized tensors per
    step and layer, the LSTM's count), and ~400 MB of interpreter, torch and Ray worker."""
    problem = get_problem(problem_name, options)
    data = 2 * n_rows * row_bytes(problem_name, seq_len, variable, options)
    activations = 8 * FLOAT * batch_size * problem.input_steps(seq_len) * hidden_size * num_layers
    return data + activations + 400 * 2**20


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_disk_bytes(location: str) -> int | None:
    """Free bytes where `location` (a local path) would be written; None for remote URIs (not knowable here)."""
    if "://" in location and not location.startswith("file://"):
        return None
    path = os.path.abspath(location.removeprefix("file://"))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def check_fits(config) -> None:
    """Refuse, before anything is written, a sweep whose dataset files would not fit on the disk or one of whose
    jobs would need more memory than the machine has; the message gives the estimate and the limit."""
    need = sum(d.n_rows * row_bytes(d.problem, d.seq_len, d.variable, dict(d.options)) for d in config.datasets())
    free = free_disk_bytes(config.dataset_root)
    if free is not None and need > free:
        raise ValueError(f"the datasets of this sweep need about {_size(need)} on disk and {config.dataset_root!r} "
                         f"has {_size(free)} free; use fewer or shorter --seq-lens, a smaller --n-train/--n-test, or "
                         "another --data-root")
    limit = machine_memory_bytes()
    for run in config.runs():
        rows = run.n_train + run.n_val + run.n_test
        mem = job_memory_bytes(run.problem, run.seq_len, rows, run.batch_size, run.hidden_size,
                               run.model.num_layers, run.min_len > 0, run.problem_options)
        if mem > limit:
            raise ValueError(f"one job ({run.problem}, T={run.seq_len}, {run.arch}) needs about {_size(mem)} of "
                             f"memory and this machine has {_size(limit)}; use a shorter --seq-lens, a smaller "
                             "--batch-size or --hidden-size, or a smaller --n-train")
