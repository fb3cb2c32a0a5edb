"""Which implementation of the recurrence a run uses (the metrics' `kernel` column): predicted, and observed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnbench.archs.switch import fast_path_enabled

if TYPE_CHECKING:
    from torch import Tensor, nn

# fastpath: the C++ classic cells (rnnbench/archs/fastpath.py); nn: torch's nn.RNN/GRU/LSTM (cuDNN on a GPU);
# recurrent-compiled / recurrent-torch: the modern cells' time loop on the compiled operators / on torch's;
# parallel-scan: their log-space scan (rnnbench/archs/scan.py)
KERNELS = ("fastpath", "nn", "recurrent-compiled", "recurrent-torch", "parallel-scan")
CLASSIC = ("rnn_tanh", "rnn_relu", "gru", "lstm")
SCANNED = ("mingru", "minlstm", "lru")
LOOP_ONLY = ("indrnn",)  # its own loop of torch operators in either form


def expected_kernel(arch: str, device_type: str, proj_size: int = 0, compiled: bool | None = True) -> str | None:
    """The kernel a run of `arch` gets on a device of type `device_type` ("cpu", "cuda") in this process
    (RNNBENCH_FASTPATH read now), `compiled`: whether the C++ extension loads (None: not known yet, taken as
    yes). None for an arch this module does not know (a plugin's): nothing to compare."""
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device type {device_type!r}: allowed values are 'cpu', 'cuda'")
    cpu = device_type == "cpu"
    if arch in CLASSIC:
        usable = cpu and fast_path_enabled("classic") and not proj_size and compiled is not False
        return "fastpath" if usable else "nn"
    if arch in LOOP_ONLY:
        return "recurrent-torch"
    if arch in SCANNED:
        if not (cpu and fast_path_enabled("modern")):
            return "parallel-scan"
        return "recurrent-compiled" if compiled is not False else "recurrent-torch"
    return None


def kernel_of(core: nn.Module, x: Tensor) -> str | None:
    """The kernel `core` ran its last forward on (`x`: an input it was given); None for a core not known here."""
    from rnnbench.archs.classic import ClassicCore
    from rnnbench.archs.indrnn import IndRNN
    from rnnbench.archs.stacked import StackedCore

    if isinstance(core, ClassicCore):
        return "fastpath" if core.last_path == "fastpath" else "nn"
    if isinstance(core, IndRNN):
        return "recurrent-torch"
    if isinstance(core, StackedCore):
        if core._form(x, core.form) == "parallel":
            return "parallel-scan"
        from rnnbench.archs import fastpath, scan

        compiled = (x.device.type == "cpu" and fast_path_enabled("modern") and x.dtype in scan.COMPILED_DTYPES
                    and fastpath.ops() is not None)
        return "recurrent-compiled" if compiled else "recurrent-torch"
    return None


def prepare(arch: str, device_type: str) -> bool | None:
    """Build and load the C++ extension now if a run of `arch` on `device_type` would use it (so that its
    compilation, tens of seconds on a fresh machine, is never inside a run's timed training): whether it
    loaded, or None where the run does not use it."""
    if expected_kernel(arch, device_type) not in ("fastpath", "recurrent-compiled"):
        return None
    from rnnbench.archs import fastpath

    return fastpath.ops() is not None


__all__ = ["KERNELS", "expected_kernel", "kernel_of", "prepare"]
