"""Floating-point settings every training job runs under: chosen once, applied to every arch alike, recorded per run."""

from __future__ import annotations

import torch

# TF32 off: matmuls and cuDNN stay full fp32 on Ampere and later, so a GPU run's numbers (and verdicts near a rule)
# are those of the fp32 model the CPU runs, for every arch alike; the speed TF32 buys is not worth a second numeric
TF32 = False
# cuDNN picks deterministic algorithms and never benchmarks (benchmarking may choose a different one per run): a seed
# gives the same run, as it does on CPU. Not torch.use_deterministic_algorithms: it raises on ops without a
# deterministic CUDA kernel and needs CUBLAS_WORKSPACE_CONFIG set before cuBLAS starts
CUDNN_DETERMINISTIC = True


def apply() -> str:
    """Set this process's settings (global in torch: every job in a reused worker gets the same) and return them as
    recorded in the metrics' `numerics` column."""
    torch.backends.cuda.matmul.allow_tf32 = TF32
    torch.backends.cudnn.allow_tf32 = TF32
    torch.backends.cudnn.deterministic = CUDNN_DETERMINISTIC
    torch.backends.cudnn.benchmark = False
    return current()


def current() -> str:
    """The settings in effect now, read back from torch (what a run actually had, not what was asked for)."""
    on = {True: "on", False: "off"}
    return (f"matmul.tf32={on[torch.backends.cuda.matmul.allow_tf32]} cudnn.tf32={on[torch.backends.cudnn.allow_tf32]} "
            f"cudnn.deterministic={on[torch.backends.cudnn.deterministic]} "
            f"cudnn.benchmark={on[torch.backends.cudnn.benchmark]}")
