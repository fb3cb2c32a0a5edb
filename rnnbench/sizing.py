"""Sizes known before any work: bytes of a dataset file, the default training-set size, one job's memory."""

from __future__ import annotations

import math
import os
import shutil

from rnnbench.problems import get_problem

# A run that reads its training set more than this many times may fail for want of data, not of memory: the
# default training set is never smaller than steps x batch_size / MAX_EPOCHS sequences (docs/PROBLEMS.md)
MAX_EPOCHS = 10
# fresh sequences for every update (the notebook's way) while the file stays this small; past it, MAX_EPOCHS
# epochs of a smaller set: 256 MB keeps short lengths, whose every update could be fresh, from filling the disk
FRESH_FILE_BYTES = 256 * 2**20
# one training file at most this big: a job holds it whole in host memory, as stored (token ids, not one-hot
# floats; never copied whole onto a GPU). The largest default file of any preset is full's copy_memory at
# T = 1000 (10 float32 values a step, 40 KB a row; 128,000 rows for 10 epochs of 20,000 x 64): 4.8 GiB, which
# bounds a job's data memory and fits beside a few dozen jobs on a 128 GB machine; 6 GiB leaves room for a
# preset's larger batches (tests/test_sizing.py checks every preset cell against it)
TRAIN_FILE_BYTES = 6 * 2**30
# what the datasets of any preset may take on disk: full, the largest, needs ~111 GiB (3 data seeds x every
# problem x T up to 1000, each train file 1/10 of 20,000 x 64 updates; half of it copy_memory's float32 values;
# `--dry-run` prints the figure), the others under 3 GiB; tests/test_sizing.py checks every preset against it
SWEEP_DATA_BYTES = 128 * 2**30
FLOAT = 4


def row_bytes(problem_name: str, seq_len: int, variable: bool = False, options=None) -> int:
    """Bytes one stored sequence takes in a dataset file (id, x, y in the problem's declared encodings, and its
    length when variable), of the problem with its settings (`options`)."""
    problem = get_problem(problem_name, options)
    codecs = problem.codecs()
    x = problem.input_steps(seq_len) * codecs["x"].step_bytes()
    y = problem.target_steps(seq_len) * codecs["y"].step_bytes()
    return 8 + x + y + (4 if variable else 0)


def auto_n_train(problem_name: str, seq_len: int, steps: int, batch_size: int, variable: bool = False,
                 options=None) -> int:
    """The default number of distinct training sequences: every update sees fresh ones (as in the notebook) while
    that fits in FRESH_FILE_BYTES; past that, enough for at most MAX_EPOCHS epochs, so long as that fits in one
    TRAIN_FILE_BYTES file (else the largest that does: its runs read more epochs and are recorded as such).
    Never fewer than one batch."""
    updates = steps * batch_size
    row = row_bytes(problem_name, seq_len, variable, options)
    fresh = min(updates, FRESH_FILE_BYTES // row)
    enough = math.ceil(updates / MAX_EPOCHS)
    return max(batch_size, min(max(fresh, enough), TRAIN_FILE_BYTES // row))


def epochs(steps: int, batch_size: int, n_train: int) -> float:
    """How many times a run reads its training set: steps x batch_size / n_train."""
    return steps * batch_size / n_train


def data_limited(epochs_read: float | None) -> bool:
    """Whether a run read its training set more than MAX_EPOCHS times (a failure may be data scarcity)."""
    return epochs_read is not None and epochs_read > MAX_EPOCHS


def job_memory_bytes(problem_name: str, seq_len: int, n_rows: int, batch_size: int, hidden_size: int,
                     num_layers: int, variable: bool = False, options=None) -> int:
    """A generous estimate of one training job's peak memory: its datasets in host memory as stored (token ids,
    not one-hot floats; read once, plus one copy while decoding), one batch expanded to float32, the activations
    autograd keeps for a batch (about 8 hidden-sized tensors per step and layer, the LSTM's count), and ~400 MB of
    interpreter, torch and Ray worker."""
    problem = get_problem(problem_name, options)
    data = 2 * n_rows * row_bytes(problem_name, seq_len, variable, options)
    batch = FLOAT * batch_size * (problem.input_steps(seq_len) * problem.input_size
                                  + problem.target_steps(seq_len) * problem.target_width)
    activations = 8 * FLOAT * batch_size * problem.input_steps(seq_len) * hidden_size * num_layers
    return data + batch + activations + 400 * 2**20


def run_memory_bytes(run) -> int:
    """job_memory_bytes of a RunSpec: what its Ray task asks for (`memory=`) and what check_fits compares."""
    return job_memory_bytes(run.problem, run.seq_len, run.n_train + run.n_val + run.n_test, run.batch_size,
                            run.hidden_size, run.model.num_layers, run.min_len > 0, run.problem_options)


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


def size_text(n: float) -> str:
    """Bytes as '4.77 GiB'."""
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
        raise ValueError(f"the datasets of this sweep need about {size_text(need)} on disk and "
                         f"{config.dataset_root!r} has {size_text(free)} free; use fewer or shorter --seq-lens, a "
                         "smaller --n-train/--n-test, or another --data-root")
    limit = machine_memory_bytes()
    for run in config.runs():
        mem = run_memory_bytes(run)
        if mem > limit:
            raise ValueError(f"one job ({run.problem}, T={run.seq_len}, {run.arch}) needs about {size_text(mem)} "
                             f"of memory and this machine has {size_text(limit)}; use a shorter --seq-lens, a smaller "
                             "--batch-size or --hidden-size, or a smaller --n-train")
