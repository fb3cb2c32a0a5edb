"""minGRU: gate-only-on-input GRU trained with a log-space parallel scan."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _gather_last(outputs: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None:
        return outputs[:, -1]
    idx = lengths.to(device=outputs.device, dtype=torch.long) - 1
    idx = idx.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, idx).squeeze(1)


def _g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _log_g(x: Tensor) -> Tensor:
    # relu() keeps the untaken branch finite so torch.where's gradient has no nan.
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def _parallel_scan_log(log_coeffs: Tensor, log_values: Tensor) -> Tensor:
    """Solve h_t = a_t h_{t-1} + b_t (h_0 = 0, all b_t > 0) along dim 1 in log space.

    With A_t = prod_{k<=t} a_k, h_t = A_t * sum_{k<=t} b_k / A_k, so
    log h_t = a*_t + logcumsumexp_k(log b_k - a*_k) with a*_t = cumsum log a
    (Heinsen 2023, arXiv:2311.06281). Working in log space keeps the very small
    A_t of long sequences representable.
    """
    a_star = torch.cumsum(log_coeffs, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_values - a_star, dim=1))


class MinGRU(nn.Module):
    r"""Stacked minGRU.

    Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs All We
    Needed?", arXiv:2410.01201.

    Each layer computes (``g`` keeps candidates positive so the log-space scan
    is defined)::

        z_t  = sigmoid(Linear_z(x_t))
        h~_t = g(Linear_h(x_t)),   g(v) = v + 0.5 if v >= 0 else sigmoid(v)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t,      h_0 = 0

    The gates do not depend on ``h_{t-1}``, so the recurrence is linear in
    ``h`` and ``forward`` evaluates it for all ``t`` at once with the
    log-space parallel scan (paper, Appendix; Heinsen 2023)::

        log h_t = a*_t + logcumsumexp_{k<=t}(log z_k + log g(Linear_h(x_k)) - a*_k)
        a*_t    = sum_{k<=t} log(1 - z_k)

    ``forward_sequential`` runs the same recurrence step by step in linear
    space. No model-specific constructor kwargs.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        # Gate and candidate share one fused Linear so each step costs a single matmul.
        self.proj = nn.ModuleList(
            nn.Linear(input_size if layer == 0 else hidden_size, 2 * hidden_size, bias=bias)
            for layer in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 and num_layers > 1 else None

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        if self.dropout is not None and layer < self.num_layers - 1:
            h = self.dropout(h)
        return h

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x
        for layer, proj in enumerate(self.proj):
            k, v = proj(h).chunk(2, dim=-1)
            log_z = -F.softplus(-k)
            log_one_minus_z = -F.softplus(k)
            h = _parallel_scan_log(log_one_minus_z, log_z + _log_g(v))
            h = self._between_layers(h, layer)
        return h, _gather_last(h, lengths)

    def forward_sequential(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reference form: every layer evaluated one step at a time in linear space."""
        batch = x.shape[0]
        hs = [x.new_zeros(batch, self.hidden_size) for _ in range(self.num_layers)]
        outputs = []
        for inp in x.unbind(1):
            for layer, proj in enumerate(self.proj):
                k, v = proj(inp).chunk(2, dim=-1)
                z = torch.sigmoid(k)
                hs[layer] = (1 - z) * hs[layer] + z * _g(v)
                inp = self._between_layers(hs[layer], layer)
            outputs.append(inp)
        out = torch.stack(outputs, dim=1)
        return out, _gather_last(out, lengths)
