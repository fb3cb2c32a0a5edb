"""minGRU: gate-only-on-input GRU; a log-space parallel scan (GPU) or one fused time loop (CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnbench.archs.scan import g, g_reference, linear_recurrence, log_g, parallel_scan_log, split_linear
from rnnbench.archs.stacked import TIME_DIM, InputGatedCore


class MinGRU(InputGatedCore):
    r"""Stacked minGRU.

    Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs All We
    Needed?", arXiv:2410.01201.

    Each layer computes (``g`` keeps candidates positive so the log-space scan
    is defined)::

        z_t  = sigmoid(Linear_z(x_t))
        h~_t = g(Linear_h(x_t)),   g(v) = v + 0.5 if v >= 0 else sigmoid(v)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t,      h_0 = 0

    The gates do not depend on ``h_{t-1}``, so the recurrence is linear in
    ``h`` and is evaluated for all ``t`` at once, in one of two forms
    (StackedCore picks per device): "parallel", the log-space parallel scan
    (paper, Appendix; Heinsen 2023)::

        log h_t = a*_t + logcumsumexp_{k<=t}(log z_k + log g(Linear_h(x_k)) - a*_k)
        a*_t    = sum_{k<=t} log(1 - z_k)

    or "recurrent", the same recurrence in linear space as one autograd node
    (rnnbench.archs.scan.linear_recurrence). ``forward_sequential`` runs it
    step by step. No model-specific constructor kwargs.
    """

    parts = 2  # gate and candidate

    def layer(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if form == "parallel":
            k, v = self.proj[index](h).chunk(2, dim=-1)
            return parallel_scan_log(-F.softplus(k), -F.softplus(-k) + log_g(v)), None
        # two matmuls on the fused weight's rows: no [T, B, 2H] concatenation of gradients in backward
        k, v = split_linear(self.proj[index], h, 2)
        z = torch.sigmoid(k)
        return linear_recurrence(1 - z, z * g(v), dim=TIME_DIM[form], h0=state)

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = h_t.new_zeros(h_t.shape[0], self.hidden_size)
        k, v = self.proj[index](h_t).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        state = (1 - z) * state + z * g_reference(v)
        return state, state
