"""LRU: linear recurrent unit (complex diagonal recurrence) stacked in residual GLU blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _gather_last(outputs: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None:
        return outputs[:, -1]
    idx = lengths.to(device=outputs.device, dtype=torch.long) - 1
    idx = idx.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, idx).squeeze(1)


class _LRULayer(nn.Module):
    """One LRU: maps [B, T, H] -> [B, T, H] through an N-dimensional complex diagonal state."""

    def __init__(self, dim: int, state_size: int, r_min: float, r_max: float, max_phase: float) -> None:
        super().__init__()
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        # Ring init (paper, Lemma 3.2 / Appendix A): |lambda| uniform on the ring
        # area between r_min and r_max, phase uniform in [0, max_phase]. The
        # clamps only guard against rand() returning exactly 0 (log(0) = -inf).
        u1 = torch.rand(state_size)
        u2 = torch.rand(state_size)
        r_sq = (u1 * (r_max**2 - r_min**2) + r_min**2).clamp_min(1e-12)
        nu_log = torch.log(-0.5 * torch.log(r_sq))
        theta_log = torch.log((max_phase * u2).clamp_min(1e-8))
        # gamma = sqrt(1 - |lambda|^2) keeps the state's variance independent of
        # how close |lambda| is to 1 for white-noise inputs.
        gamma_log = 0.5 * torch.log1p(-torch.exp(-2.0 * torch.exp(nu_log)))
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(theta_log)
        self.gamma_log = nn.Parameter(gamma_log)
        self.B_re = nn.Parameter(torch.randn(state_size, dim) / math.sqrt(2 * dim))
        self.B_im = nn.Parameter(torch.randn(state_size, dim) / math.sqrt(2 * dim))
        self.C_re = nn.Parameter(torch.randn(dim, state_size) / math.sqrt(state_size))
        self.C_im = nn.Parameter(torch.randn(dim, state_size) / math.sqrt(state_size))
        self.D = nn.Parameter(torch.randn(dim))

    def log_lambda(self) -> Tensor:
        return torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log))

    def project_in(self, u: Tensor) -> Tensor:
        gamma = torch.exp(self.gamma_log)
        return torch.complex(F.linear(u, self.B_re) * gamma, F.linear(u, self.B_im) * gamma)

    def project_out(self, h: Tensor, u: Tensor) -> Tensor:
        return F.linear(h.real, self.C_re) - F.linear(h.imag, self.C_im) + self.D * u

    def forward(self, u: Tensor) -> Tensor:
        """Parallel form: Hillis-Steele scan over time, log2(T) vectorised steps.

        After the step with offset d, h[t] = sum_{k=t-2d+1..t} lambda^(t-k) b_k.
        lambda^d is taken as exp(d log lambda) rather than by repeated products,
        and |lambda| < 1, so the powers only shrink. Each position reads only
        earlier positions, so padding after a sequence's end cannot leak back.
        """
        log_lam = self.log_lambda()
        h = self.project_in(u)
        steps = h.shape[1]
        d = 1
        while d < steps:
            shifted = torch.cat([torch.zeros_like(h[:, :d]), h[:, :-d]], dim=1)
            h = h + torch.exp(d * log_lam) * shifted
            d *= 2
        return self.project_out(h, u)

    def step(self, u_t: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """One time step; ``h=None`` stands for the zero initial state."""
        b = self.project_in(u_t)
        h = b if h is None else torch.exp(self.log_lambda()) * h + b
        return self.project_out(h, u_t), h


class LRU(nn.Module):
    r"""Linear Recurrent Unit network: encoder + residual LRU/GLU blocks.

    Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De (2023), "Resurrecting
    Recurrent Neural Networks for Long Sequences", ICML 2023, arXiv:2303.06349.

    Each LRU layer (state size ``N``, complex diagonal ``lambda``)::

        lambda = exp(-exp(nu_log) + i exp(theta_log))
        gamma  = exp(gamma_log)                 (init sqrt(1 - |lambda|^2))
        h_t    = lambda ⊙ h_{t-1} + gamma ⊙ (B x_t),    B complex, h_0 = 0
        y_t    = Re(C h_t) + D ⊙ x_t

    The network is ``u = Linear(x)`` followed by ``num_layers`` blocks
    (pre-norm residual, as in the paper's Figure 1 / Appendix D)::

        v = LRU(LayerNorm(u)) ; v = GELU(v) ; v = W_a v ⊙ sigmoid(W_b v)   (GLU)
        u = u + v

    and the hidden stream ``u`` is the output. ``dropout`` is applied to ``u``
    between blocks (same convention as ``nn.LSTM``), not inside them.

    ``forward`` runs each LRU as a parallel (associative, Hillis-Steele) scan
    over time; ``forward_sequential`` steps through time with the same params.

    Constructor kwargs specific to LRU:

    * ``state_size`` (int | None): complex state size ``N``; ``None`` means
      ``hidden_size``.
    * ``r_min`` (float, default 0.0), ``r_max`` (float, default 0.99): ring
      init for ``|lambda|``. The paper's reference code defaults to
      ``[0, 1]`` and its long-range experiments tune ``r_min`` in ``[0, 0.9]``
      with ``r_max`` 0.99 or 0.999; 0.99 keeps memory long without starting
      on the edge of stability.
    * ``max_phase`` (float, default 6.28): phase init range ``[0, max_phase]``
      (the paper's default ``2 pi``; it shrinks it for long-range tasks).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        state_size: int | None = None,
        r_min: float = 0.0,
        r_max: float = 0.99,
        max_phase: float = 6.28,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        self.state_size = hidden_size if state_size is None else state_size
        self.encoder = nn.Linear(input_size, hidden_size, bias=bias)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size, bias=bias) for _ in range(num_layers))
        self.lrus = nn.ModuleList(
            _LRULayer(hidden_size, self.state_size, r_min, r_max, max_phase) for _ in range(num_layers)
        )
        self.glus = nn.ModuleList(
            nn.Linear(hidden_size, 2 * hidden_size, bias=bias) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 and num_layers > 1 else None

    def _mix(self, v: Tensor, layer: int) -> Tensor:
        a, b = self.glus[layer](F.gelu(v)).chunk(2, dim=-1)
        return a * torch.sigmoid(b)

    def _between_layers(self, u: Tensor, layer: int) -> Tensor:
        if self.dropout is not None and layer < self.num_layers - 1:
            u = self.dropout(u)
        return u

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        u = self.encoder(x)
        for layer in range(self.num_layers):
            v = self.lrus[layer](self.norms[layer](u))
            u = self._between_layers(u + self._mix(v, layer), layer)
        return u, _gather_last(u, lengths)

    def forward_sequential(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reference form: every block evaluated one step at a time."""
        hs: list[Tensor | None] = [None] * self.num_layers
        outputs = []
        for x_t in x.unbind(1):
            u = self.encoder(x_t)
            for layer in range(self.num_layers):
                v, hs[layer] = self.lrus[layer].step(self.norms[layer](u), hs[layer])
                u = self._between_layers(u + self._mix(v, layer), layer)
            outputs.append(u)
        out = torch.stack(outputs, dim=1)
        return out, _gather_last(out, lengths)
