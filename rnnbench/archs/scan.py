"""Linear recurrences h_t = a_t h_{t-1} + b_t in two forms: the log-space parallel scan and a time loop for the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from rnnbench.archs.switch import fast_path_enabled

FORMS = ("parallel", "recurrent")


def pick_form(device: torch.device | str, seq_len: int) -> str:
    """The faster form of a scan-based core for this device and sequence length.

    CPU: "recurrent" at every length. Measured on one thread, batch 64, hidden 64, a whole training step
    (forward, backward, Adam): the recurrent form beat the parallel one at every T tried, by 1.2x (LRU) to 3.5x
    (minGRU) at T=10, ~3x at T=100 and 3.5-5.4x at T=1000-5000 (`benchmarks/cell_speed.py --forms` prints
    T=100 and T=1000). logcumsumexp and the Hillis-Steele scan cost many full-size passes over [B, T, H]
    (logcumsumexp alone ~70 elementwise ops' worth), while the loop's T steps cost a few microseconds each.
    Anything else (CUDA): "parallel", whose few large kernels suit a GPU, where a loop of T small launches
    would not (not measured here: no GPU). `seq_len` is there for a length threshold should a device show one.
    With RNNBENCH_FASTPATH=0 or classic (the modern cells' CPU form off), "parallel" everywhere.
    """
    del seq_len  # no crossover on the CPU between T=10 and T=5000 (see the docstring)
    return "recurrent" if torch.device(device).type == "cpu" and fast_path_enabled("modern") else "parallel"


# ---- the positive candidate of minGRU/minLSTM ------------------------------------------------------------------
def g_reference(x: Tensor) -> Tensor:
    """g(x) = x + 1/2 for x >= 0, sigmoid(x) below (Feng et al. 2024): continuous, positive, linear growth."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x), for the log-space scan."""
    # relu() keeps the untaken branch finite so torch.where's gradient has no nan.
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class _G(torch.autograd.Function):
    """g without torch.where, whose CPU kernel costs ~10x an elementwise op: sigmoid(min(x, 0)) + max(x, 0) is
    g bit for bit; the derivative is written out so that g'(0) = 1, as for g_reference (autograd through the
    clamps would give 1.25 at exactly 0, which a zero input with bias=False produces)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> Tensor:
        s = torch.sigmoid(x.clamp(max=0))
        ctx.save_for_backward(x, s)
        return s + x.clamp(min=0)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        x, s = ctx.saved_tensors
        slope = (s - s * s).masked_fill_(x >= 0, 1.0)
        return grad * slope


def g(x: Tensor) -> Tensor:
    return _G.apply(x)


def split_linear(linear: nn.Linear, x: Tensor, parts: int) -> list[Tensor]:
    """linear(x).chunk(parts, -1) as `parts` matmuls on row blocks of its weight: the same values, but backward
    adds the parts' input gradients instead of concatenating full-size output gradients."""
    weights = linear.weight.chunk(parts, dim=0)
    biases = linear.bias.chunk(parts, dim=0) if linear.bias is not None else [None] * parts
    return [F.linear(x, w, b) for w, b in zip(weights, biases, strict=True)]


# ---- the parallel form -----------------------------------------------------------------------------------------
def parallel_scan_log(log_coeffs: Tensor, log_values: Tensor) -> Tensor:
    """Solve h_t = a_t h_{t-1} + b_t (h_0 = 0, all b_t > 0) along dim 1 in log space.

    With A_t = prod_{k<=t} a_k, h_t = A_t * sum_{k<=t} b_k / A_k, so
    log h_t = a*_t + logcumsumexp_k(log b_k - a*_k) with a*_t = cumsum log a
    (Heinsen 2023, arXiv:2311.06281). Working in log space keeps the very small
    A_t of long sequences representable.
    """
    a_star = torch.cumsum(log_coeffs, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_values - a_star, dim=1))


# ---- the recurrent form ----------------------------------------------------------------------------------------
COMPILED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _ops():
    from rnnbench.archs import fastpath  # imported on first use: it may build the extension

    return fastpath.ops()


def _compiled(a: Tensor, b: Tensor, dim: int, h0: Tensor | None):
    """The compiled operators when they run this recurrence (CPU, time-major, one of their dtypes, the modern
    fast path on, the extension built), else None: the loop of torch operators below runs it, with the same
    arithmetic (measured: LRU's training step at T=100, B=64, H=64 spent ~4 ms of ~27 in the loop's per-step
    complex addcmuls and ~3 ms more in its backward's products and copies)."""
    if (dim != 0 or b.device.type != "cpu" or b.dtype not in COMPILED_DTYPES or a.dtype != b.dtype
            or (h0 is not None and h0.dtype != b.dtype) or not fast_path_enabled("modern")):
        return None
    return _ops()


class _LinearRecurrence(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + b_t along `dim` from h_{-1} = h0 (zero when None), as one autograd node: a loop of
    one fused multiply-add per step forward, and the reverse recurrence G_t = dL/dh_t + conj(a_{t+1}) G_{t+1}
    backward, so that dL/db = G, dL/da_t = G_t conj(h_{t-1}) and dL/dh0 = conj(a_0) G_0 (PyTorch's convention
    for complex gradients). Its second output is the last state (a copy): the next chunk's h0, whose gradient
    joins G at the last step without a full-size zero gradient for a slice of h."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, dim: int, h0: Tensor | None) -> tuple[Tensor, Tensor]:
        b = b.contiguous()
        ops = _compiled(a, b, dim, h0)
        ctx.compiled = ops is not None
        if ops is not None:
            a, h0 = a.resolve_conj().contiguous(), None if h0 is None else h0.resolve_conj().contiguous()
            h = ops.linrec_forward(a, b, h0)
            ctx.save_for_backward(a, h, h0)
            ctx.dim = dim
            return h, h[-1].clone()
        h = torch.empty_like(b)
        hs, bs = h.unbind(dim), b.unbind(dim)
        varying = a.dim() == b.dim()
        steps = a.unbind(dim) if varying else [a] * len(bs)
        if h0 is None:
            hs[0].copy_(bs[0])
        else:
            torch.addcmul(bs[0], steps[0], h0, out=hs[0])
        for t in range(1, len(hs)):
            torch.addcmul(bs[t], steps[t], hs[t - 1], out=hs[t])
        ctx.save_for_backward(a, h, h0)
        ctx.dim = dim
        return h, hs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_h: Tensor, grad_last: Tensor) -> tuple[Tensor | None, Tensor, None,
                                                                              Tensor | None]:
        a, h, h0 = ctx.saved_tensors
        if ctx.compiled:
            grad_a, grad_b, grad_h0 = _ops().linrec_backward(a, h, h0, grad_h, grad_last, ctx.needs_input_grad[0],
                                                             h0 is not None and ctx.needs_input_grad[3])
            return (grad_a if ctx.needs_input_grad[0] else None, grad_b, None,
                    grad_h0 if h0 is not None and ctx.needs_input_grad[3] else None)
        dim, varying = ctx.dim, a.dim() == h.dim()
        if a.is_complex():
            a = a.conj() if varying else a.conj().resolve_conj()
        grad_b = torch.empty_like(h)
        gs, grads = grad_b.unbind(dim), grad_h.unbind(dim)
        steps = a.unbind(dim) if varying else [a] * len(gs)
        last = len(gs) - 1
        torch.add(grads[last], grad_last, out=gs[last])
        for t in range(last - 1, -1, -1):
            torch.addcmul(grads[t], steps[t + 1], gs[t + 1], out=gs[t])
        grad_a = grad_h0 = None
        if ctx.needs_input_grad[0]:
            h_prev = h.narrow(dim, 0, last)
            h_prev = h_prev.conj() if h.is_complex() else h_prev
            h0_conj = None if h0 is None else (h0.conj() if h0.is_complex() else h0)
            if varying:
                grad_a = torch.empty_like(grad_b)
                if h0_conj is None:
                    grad_a.narrow(dim, 0, 1).zero_()  # a at step 0 multiplies h_{-1} = 0
                else:
                    torch.mul(gs[0], h0_conj, out=grad_a.select(dim, 0))
                torch.mul(grad_b.narrow(dim, 1, last), h_prev, out=grad_a.narrow(dim, 1, last))
            else:
                grad_a = (grad_b.narrow(dim, 1, last) * h_prev).sum_to_size(a.shape)
                if h0_conj is not None:
                    grad_a += (gs[0] * h0_conj).sum_to_size(a.shape)
        if h0 is not None and ctx.needs_input_grad[3]:
            grad_h0 = steps[0] * gs[0]
        return grad_a, grad_b, None, grad_h0


def linear_recurrence(a: Tensor, b: Tensor, dim: int = 1, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(h, h at the last step) for h_t = a_t * h_{t-1} + b_t along time dimension `dim`, from the state h0 before
    the first step (None: zero, so h at step 0 is b at step 0); real or complex.

    `a` has the shape of `b` (a coefficient per step) or of one step's trailing dims, e.g. [N] for a diagonal
    recurrence that does not change over time (LRU); `h0` has the shape of one step of `b`. Stable in linear space
    for |a| <= 1. Each step reads one slice along `dim`, so `dim=0` (time-major, every slice contiguous) runs
    about twice as fast on a CPU as `dim=1` once the tensors outgrow the cache.
    """
    if a.dim() != b.dim() and a.shape != b.shape[b.dim() - a.dim():]:
        raise ValueError(f"a must have b's shape {tuple(b.shape)} or its trailing per-step shape, "
                         f"got {tuple(a.shape)}")
    return _LinearRecurrence.apply(a, b, dim, h0)


__all__ = ["FORMS", "g", "g_reference", "linear_recurrence", "log_g", "parallel_scan_log", "pick_form",
           "split_linear"]
