"""minLSTM: normalised-gate LSTM without hidden-state gates; a log-space parallel scan (GPU) or a time loop (CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnbench.archs.scan import g, g_reference, linear_recurrence, log_g, parallel_scan_log, split_linear
from rnnbench.archs.stacked import TIME_DIM, InputGatedCore


class MinLSTM(InputGatedCore):
    r"""Stacked minLSTM (length-independent-scaling variant).

    Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs All We
    Needed?", arXiv:2410.01201.

    Each layer computes::

        f_t  = sigmoid(Linear_f(x_t)),   i_t = sigmoid(Linear_i(x_t))
        f'_t = f_t / (f_t + i_t),        i'_t = i_t / (f_t + i_t)
        h~_t = g(Linear_h(x_t)),         g(v) = v + 0.5 if v >= 0 else sigmoid(v)
        h_t  = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t,        h_0 = 0

    The gates do not depend on ``h_{t-1}``, so the linear recurrence is
    evaluated for all ``t`` at once. The normalised gates are formed from the
    difference of the two pre-activations, which avoids dividing two tiny
    sigmoids::

        d    = softplus(-Linear_f(x_t)) - softplus(-Linear_i(x_t))
        f'_t = sigmoid(-d),   i'_t = sigmoid(d)      (log f'_t = -softplus(d), log i'_t = -softplus(-d))

    Two forms (StackedCore picks per device): "parallel", the log-space
    parallel scan (paper, Appendix; Heinsen 2023), and "recurrent", the linear
    recurrence as one autograd node (rnnbench.archs.scan.linear_recurrence).
    ``forward_sequential`` runs it step by step in linear space.
    No model-specific constructor kwargs.
    """

    parts = 3  # forget gate, input gate and candidate

    def layer(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if form == "parallel":
            k_f, k_i, v = self.proj[index](h).chunk(3, dim=-1)
            diff = F.softplus(-k_f) - F.softplus(-k_i)
            return parallel_scan_log(-F.softplus(diff), -F.softplus(-diff) + log_g(v)), None
        # three matmuls on the fused weight's rows: no [T, B, 3H] concatenation of gradients in backward
        k_f, k_i, v = split_linear(self.proj[index], h, 3)
        i = torch.sigmoid(F.logsigmoid(k_i) - F.logsigmoid(k_f))  # = diff above, with fewer passes
        return linear_recurrence(1 - i, i * g(v), dim=TIME_DIM[form], h0=state)

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = h_t.new_zeros(h_t.shape[0], self.hidden_size)
        k_f, k_i, v = self.proj[index](h_t).chunk(3, dim=-1)
        f = torch.sigmoid(k_f)
        i = torch.sigmoid(k_i)
        state = (f * state + i * g_reference(v)) / (f + i)
        return state, state
