"""A CPU fast path for nn.RNN (tanh, relu), nn.GRU and nn.LSTM: the same parameters and mathematics, ~2.7-4x
less time per training step on one thread (benchmarks/cell_speed.py --fastpath-only prints it side by side with
nn.* and with each cell's measured floor).

Why: on one CPU thread a small recurrent model's step is mostly what surrounds the recurrent products: per-op
dispatch in the time loop, unfused gate arithmetic, and (nn.LSTM here) page faults on fresh workspaces.

How (fastpath.cpp), one autograd node per layer, both directions:
  * forward, per step: one product h W_hh^T (ATen's mm, i.e. MKL) and, per sequence, one fused loop that adds
    the input projection (formed in the loop for inputs of <= 16 features; as one product over all steps for
    wider ones), applies the gates and writes the new state, the output and what the backward needs;
  * backward (written by hand), per step: one fused loop for the gate derivatives and dh += dgates W_hh; the
    weight gradient dW_hh as one product per 8 steps, while those dgates are in cache; dW_ih, db, dx summed in
    the loop (small inputs) or as products at the end (wide ones);
  * what the backward reads is kept in one buffer per layer, from a pool reused between steps (no page faults).
Layers, dropout between layers (the same op on the same tensor as nn.*, so the same mask for a seed) and the
initial state are handled here. Variable-length batches are never packed: a sequence stops updating after its
last step and its outputs there are zero, which is what packing computes.

The C++ is compiled once per machine with the system's C++ compiler (`CXX`, else c++/g++/clang++) against this
torch's headers, into a cache (RNNBENCH_EXT_DIR, default ~/.cache/rnnbench/ext), under a file lock so that
concurrent processes build it once, with a time limit (RNNBENCH_EXT_BUILD_TIMEOUT, 600 s); its name hashes
the source, torch, the flags and the compiler, so a change builds anew and a cache shared by different machines
never hands one a library built for the other's vector units. A build failure is remembered there too, so
every later process falls back at once and the same way (results never flip between the two paths); after
fixing the compiler run `python -m rnnbench.archs.fastpath --rebuild`. `python -m rnnbench.archs.fastpath`
builds ahead of time (at install, or as a CI step) and prints what it did.

Falls back to nn.* (unsupported(...) says why; ClassicCore.last_path records it): CUDA or any non-CPU tensor
(cuDNN is faster there), dtypes other than float32/float64, LSTM with proj_size, unbatched (2-D) input,
lengths out of range (nn.* raises its error), RNNBENCH_FASTPATH=0, or no extension (no compiler, failed build).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from rnnbench.archs.switch import fast_path_enabled

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("fastpath.cpp")
CELL_CODES = {"rnn_tanh": 0, "rnn_relu": 1, "gru": 2, "lstm": 3}
DTYPES = (torch.float32, torch.float64)
BUILD_TIMEOUT_S = float(os.environ.get("RNNBENCH_EXT_BUILD_TIMEOUT", "600"))

_lock = threading.Lock()
_state: dict = {"ops": None, "tried": False, "reason": None, "library": None}


# ---------------------------------------------------------------------------------------------------------
# building and loading the extension


def cache_dir() -> Path:
    root = os.environ.get("RNNBENCH_EXT_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnbench" / "ext"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def compiler() -> str | None:
    """The C++ compiler a build would run: `CXX` where it names one on PATH (or a path), else c++, g++ or
    clang++; None when there is none."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _arch_flags() -> list[str]:
    # the widest vectors this CPU has (AVX-512 halves the gate arithmetic's time against AVX2 on the machine
    # measured); never -march=native, so a build in a cache shared by machines with the same vector units
    # runs on all of them (the flags are part of the library's name)
    flags = _cpu_flags()
    if {"avx512f", "avx512dq", "avx512vl", "avx512bw", "fma"} <= flags:
        return ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw",
                "-mprefer-vector-width=512"]
    if {"avx2", "fma"} <= flags:
        return ["-mavx2", "-mfma"]
    return []


def _build_flags() -> list[str]:
    # -fno-math-errno/-fno-trapping-math (as torch itself is built) let the activations vectorise; no
    # -ffast-math: no reassociation, NaNs and infinities keep their meaning
    abi = int(torch.compiled_with_cxx11_abi())
    return ["-O3", "-std=c++20", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
            f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *_arch_flags()]


def library_path() -> Path:
    """Where this source, torch and these flags build to: a new name whenever any of them changes."""
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(torch.__version__.encode())
    key.update(os.path.dirname(torch.__file__).encode())
    key.update(" ".join(_build_flags()).encode())
    key.update(str(compiler()).encode())
    return cache_dir() / f"rnnbench_fastpath_{key.hexdigest()[:16]}.so"


def _compile(target: Path) -> None:
    from torch.utils import cpp_extension  # only when building: it imports setuptools

    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (looked for $CXX, c++, g++, clang++: set CXX, or install g++)")
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    libdirs = cpp_extension.library_paths()
    tmp = target.with_suffix(f".{os.getpid()}.tmp.so")
    cmd = [cxx, *_build_flags(), *includes, str(SOURCE), "-o", str(tmp),
           *[f"-L{p}" for p in libdirs], *[f"-Wl,-rpath,{p}" for p in libdirs], "-lc10", "-ltorch_cpu"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{cxx} took more than {BUILD_TIMEOUT_S:.0f} s to compile {SOURCE.name}") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        error = _Interrupted if proc.returncode < 0 else RuntimeError  # a signal (e.g. the OOM killer): try again
        # the compiler's path leads the message: the one line the fallback's warning and status() show
        raise error(f"{cxx} failed to compile {SOURCE.name} (exit status {proc.returncode}):\n{proc.stderr[-3000:]}")
    os.replace(tmp, target)


class _Interrupted(RuntimeError):
    """A build stopped from outside: not remembered as a failure."""


def build(rebuild: bool = False) -> Path:
    """Compile the extension unless it is built (or its build failed before; then raise that failure)."""
    from filelock import FileLock

    target = library_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    failed = target.with_suffix(".failed")
    with FileLock(str(target.with_suffix(".lock")), timeout=BUILD_TIMEOUT_S + 120):
        if rebuild:
            target.unlink(missing_ok=True)
            failed.unlink(missing_ok=True)
        if target.exists():
            return target
        if failed.exists():
            raise RuntimeError(f"an earlier build failed ({failed}): {failed.read_text()[:2000]}")
        start = time.perf_counter()
        try:
            _compile(target)
        except _Interrupted:
            raise
        except Exception as exc:
            failed.write_text(str(exc))
            raise
        log.info("built %s in %.1f s", target, time.perf_counter() - start)
        return target


def ops():
    """The loaded operators (torch.ops.rnnbench_fastpath), or None if they cannot be had on this machine."""
    if _state["tried"]:
        return _state["ops"]
    with _lock:
        if not _state["tried"]:
            try:
                path = build()
                torch.ops.load_library(str(path))
                _state["ops"], _state["library"] = torch.ops.rnnbench_fastpath, str(path)
            except Exception as exc:  # noqa: BLE001 - any failure means: use nn.* instead
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                _state["reason"] = f"C++ fast path unavailable, using nn.*: {first}"
                log.warning("C++ fast path unavailable, using nn.*: %s", exc)
            _state["tried"] = True
    return _state["ops"]


def status() -> dict:
    """Whether the fast path is in use in this process, from which library, or why not."""
    ops()
    return {"available": _state["ops"] is not None, "library": _state["library"], "reason": _state["reason"],
            "enabled": enabled()}


def enabled() -> bool:
    """RNNBENCH_FASTPATH leaves this path on: unset, 1 or classic (0, off or modern turn it off)."""
    return fast_path_enabled("classic")


# ---------------------------------------------------------------------------------------------------------
# when it applies


def cell_of(rnn: nn.Module) -> str | None:
    if isinstance(rnn, nn.LSTM):
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN):
        return f"rnn_{rnn.nonlinearity}"
    return None


def unsupported(rnn: nn.Module, x: Tensor, lengths: Tensor | None = None) -> str | None:
    """None when the fast path runs this call; else why nn.* runs it."""
    if not enabled():
        return f"RNNBENCH_FASTPATH={os.environ.get('RNNBENCH_FASTPATH', '').strip()}"
    if cell_of(rnn) is None:
        return f"not nn.RNN/GRU/LSTM: {type(rnn).__name__}"
    if x.device.type != "cpu":
        return f"device {x.device.type} (the fast path is CPU only; cuDNN is faster there)"
    if x.dtype not in DTYPES:
        return f"dtype {x.dtype}"
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        return f"input shape {tuple(x.shape)} (needs a batch of at least one step)"
    if getattr(rnn, "proj_size", 0):
        return "LSTM proj_size"
    if any(p.device.type != "cpu" or p.dtype != x.dtype for p in rnn.parameters()):
        return "parameters on another device or of another dtype than the input"
    if lengths is not None:
        steps = x.shape[1] if rnn.batch_first else x.shape[0]
        if lengths.dim() != 1 or len(lengths) != x.shape[0 if rnn.batch_first else 1] \
                or int(lengths.min()) < 1 or int(lengths.max()) > steps:
            return "lengths out of range (nn.* raises the error)"
    if ops() is None:
        return _state["reason"]
    return None


# ---------------------------------------------------------------------------------------------------------
# one autograd node per layer (both directions)


def _empty_like_none(t: Tensor | None, like: Tensor) -> Tensor:
    return like.new_empty(0) if t is None else t


class _Layer(torch.autograd.Function):
    """(x, h0 [dirs,B,H], c0, per direction w_ih, w_hh, b_ih, b_hh) -> (out, h_n [dirs,B,H], c_n)."""

    @staticmethod
    def forward(ctx, cell: int, x_batch_major: bool, out_batch_major: bool, lengths, x, h0, c0, *weights):
        has_bias = weights[2] is not None
        flat = [_empty_like_none(w, x) for w in weights]
        out, hn, cn, saved = ops().layer_forward(cell, x, x_batch_major, flat, has_bias, h0, c0, lengths,
                                                 out_batch_major, True)
        ctx.save_for_backward(x, h0, c0, lengths, saved, *flat)
        ctx.cell, ctx.has_bias, ctx.layout = cell, has_bias, (x_batch_major, out_batch_major)
        ctx.set_materialize_grads(False)
        if c0 is None:
            ctx.mark_non_differentiable(cn)
        return out, hn, cn

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn, grad_cn):
        x, h0, c0, lengths, saved, *flat = ctx.saved_tensors
        x_batch_major, out_batch_major = ctx.layout
        need_dx = ctx.needs_input_grad[4]
        dx, dh0, dc0, *dw = ops().layer_backward(ctx.cell, x, x_batch_major, flat, ctx.has_bias, h0, c0, lengths,
                                                 out_batch_major, saved, grad_out, grad_hn, grad_cn, need_dx)
        if not ctx.has_bias:
            dw = [g if i % 4 < 2 else None for i, g in enumerate(dw)]
        return (None, None, None, None, dx if need_dx else None, dh0, dc0 if c0 is not None else None, *dw)


def run(rnn: nn.RNNBase, x: Tensor, lengths: Tensor | None = None,
        hx: Tensor | tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
    """What `rnn(x, hx)` returns, or with `lengths`, what the packed call returns once the outputs are padded
    back to x's length (zeros past each sequence's end): (outputs, h_n) or (outputs, (h_n, c_n)).

    Check `unsupported(rnn, x, lengths)` first."""
    arch = cell_of(rnn)
    cell, lstm = CELL_CODES[arch], arch == "lstm"
    ext = ops()
    batch_major = rnn.batch_first
    batch = x.shape[0 if batch_major else 1]
    H, L, dirs = rnn.hidden_size, rnn.num_layers, 2 if rnn.bidirectional else 1
    lens = None if lengths is None else lengths.to(device="cpu", dtype=torch.int64)
    if hx is None:
        h0s = x.new_zeros(L * dirs, batch, H)
        c0s = h0s if lstm else None
    elif lstm:
        h0s, c0s = hx
    else:
        h0s, c0s = hx, None
    grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in rnn.parameters())
        or (hx is not None and any(h.requires_grad for h in (hx if lstm else (hx,)))))
    layer_in, in_batch_major, h_n, c_n = x, batch_major, [], []
    for layer in range(L):
        weights = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            weights += [getattr(rnn, f"weight_ih{sfx}"), getattr(rnn, f"weight_hh{sfx}")]
            weights += [getattr(rnn, f"bias_ih{sfx}"), getattr(rnn, f"bias_hh{sfx}")] if rnn.bias else [None, None]
        rows = slice(layer * dirs, (layer + 1) * dirs)
        h0, c0 = h0s[rows], (c0s[rows] if lstm else None)
        # upper layers run time-major (the layout a product over all steps wants); the last writes the caller's
        out_batch_major = batch_major and layer == L - 1
        if grad:
            out, hn, cn = _Layer.apply(cell, in_batch_major, out_batch_major, lens, layer_in, h0, c0, *weights)
        else:
            flat = [_empty_like_none(w, x) for w in weights]
            out, hn, cn = ext.layer_forward(cell, layer_in, in_batch_major, flat, rnn.bias, h0, c0, lens,
                                            out_batch_major, False)[:3]
        h_n.append(hn)
        c_n.append(cn)
        layer_in, in_batch_major = out, out_batch_major
        if rnn.dropout and rnn.training and layer < L - 1:
            # as nn.* does: the same op on the same [T,B,dirs*H] tensor, so the same mask for a seed
            layer_in = F.dropout(layer_in, rnn.dropout, True)
    hn_all = torch.cat(h_n) if L > 1 else h_n[0]
    if lstm:
        return layer_in, (hn_all, torch.cat(c_n) if L > 1 else c_n[0])
    return layer_in, hn_all


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rnnbench.archs.fastpath",
                                     description="Build the C++ fast path now (it is otherwise built at first use).")
    parser.add_argument("--rebuild", action="store_true", help="forget an earlier build or failed build first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:
        path = build(rebuild=args.rebuild)
    except Exception as exc:  # noqa: BLE001
        print(f"fast path NOT built: {exc}\nclassic cells will run on nn.*", file=sys.stderr)
        return 1
    torch.ops.load_library(str(path))
    print(f"fast path ready: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
