"""LRU: linear recurrent unit (complex diagonal recurrence) stacked in residual GLU blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnbench.archs.mix import glu_residual
from rnnbench.archs.scan import linear_recurrence
from rnnbench.archs.stacked import TIME_DIM, StackedCore


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

    def states_parallel(self, u: Tensor) -> Tensor:
        """The complex states of every step (parallel form): a Hillis-Steele scan over time, log2(T) vectorised
        steps.

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
        return h

    def states_recurrent(self, u: Tensor, dim: int = 1, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The complex states of every step (recurrent form): one time loop along `dim` from state `h0` (None:
        zero), by rnnbench.archs.scan.linear_recurrence; returns (states, state after the last step).

        B_re/B_im (scaled by gamma) stack into one [2N, H] weight, one real matmul on interleaved (re, im) pairs,
        viewed as complex without a copy."""
        n = self.B_re.shape[0]
        gamma = torch.exp(self.gamma_log).unsqueeze(1)
        w_in = torch.stack((self.B_re * gamma, self.B_im * gamma), dim=1).reshape(2 * n, -1)
        b = torch.view_as_complex(F.linear(u, w_in).unflatten(-1, (n, 2)))
        return linear_recurrence(torch.exp(self.log_lambda()), b, dim=dim, h0=h0)

    def readout(self, h: Tensor, u: Tensor) -> Tensor:
        """y = Re(C h) + D u for states h and inputs u of any leading shape, as one real matmul:
        Re(C h) = [C_re, -C_im] [h_re; h_im] on the interleaved pairs."""
        n = self.C_re.shape[1]
        w_out = torch.stack((self.C_re, -self.C_im), dim=-1).reshape(self.C_re.shape[0], 2 * n)
        return torch.addcmul(F.linear(torch.view_as_real(h).flatten(-2), w_out), self.D, u)

    def step(self, u_t: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """One time step; ``h=None`` stands for the zero initial state."""
        b = self.project_in(u_t)
        h = b if h is None else torch.exp(self.log_lambda()) * h + b
        return self.project_out(h, u_t), h


class LRU(StackedCore):
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

    Each LRU runs in one of two forms (StackedCore picks per device):
    "parallel", an associative (Hillis-Steele) scan over time, or "recurrent",
    one time loop as a single autograd node; ``forward_sequential`` steps
    through time with the same params.

    Constructor kwargs specific to LRU (the defaults are the registry's, see
    rnnbench/archs/__init__.py):

    * ``state_size`` (int | None): complex state size ``N``; ``None`` means
      ``hidden_size``.
    * ``r_min`` (float, default 0.9), ``r_max`` (float, default 0.999): ring
      init for ``|lambda|``; ``max_phase`` (float, default pi/10): phase init
      range ``[0, max_phase]``. These are the paper's settings for long-range
      memory (section 3.3: eigenvalues started close to the unit circle, and a
      small phase, as for its longest task, PathX); its reference code's
      generic defaults are ``r_min=0, r_max=1, max_phase=6.28``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        state_size: int | None = None,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = math.pi / 10,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout)
        # the recurrent form's chunk: one LRU block's steps between products are cheap (the recurrence is a
        # compiled loop), so larger chunks pay; measured (B=64, H=64, one thread): T=100 24.7 ms at 64 steps,
        # 22.7 at 256; T=1000 244 and 231 ms (minGRU/minLSTM: no gain past 64)
        self.chunk = 256
        self.state_size = hidden_size if state_size is None else state_size
        self.encoder = nn.Linear(input_size, hidden_size, bias=bias)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size, bias=bias) for _ in range(num_layers))
        self.lrus = nn.ModuleList(
            _LRULayer(hidden_size, self.state_size, r_min, r_max, max_phase) for _ in range(num_layers)
        )
        self.glus = nn.ModuleList(
            nn.Linear(hidden_size, 2 * hidden_size, bias=bias) for _ in range(num_layers)
        )

    def _mixed(self, h: Tensor, v: Tensor, index: int) -> Tensor:
        # h + GLU(W GELU(v) + b): on a CPU one node of compiled loops (rnnbench/archs/mix.py)
        return glu_residual(v, h, self.glus[index])

    def embed(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def layer_state(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[tuple, Tensor | None]:
        u = self.norms[index](h)
        if form == "parallel":
            return (self.lrus[index].states_parallel(u), u), None
        states, state = self.lrus[index].states_recurrent(u, TIME_DIM[form], state)
        return (states, u), state

    def layer_output(self, index: int, h: Tensor, carry: tuple) -> Tensor:
        states, u = carry
        return self._mixed(h, self.lrus[index].readout(states, u), index)

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        v, state = self.lrus[index].step(self.norms[index](h_t), state)
        return self._mixed(h_t, v, index), state
