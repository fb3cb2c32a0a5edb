"""IndRNN: independently recurrent network with a bounded elementwise recurrent weight."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _gather_last(outputs: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None:
        return outputs[:, -1]
    idx = lengths.to(device=outputs.device, dtype=torch.long) - 1
    idx = idx.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, idx).squeeze(1)


class IndRNN(nn.Module):
    r"""Stacked IndRNN with ReLU activation.

    Li, Li, Cook, Zhu & Gao (2018), "Independently Recurrent Neural Network
    (IndRNN): Building A Longer and Deeper RNN", CVPR 2018, arXiv:1803.04831.

    Each layer computes, per unit (``u`` is a vector, ``⊙`` elementwise)::

        h_t = relu(W x_t + u ⊙ h_{t-1} + b),      h_0 = 0
        |u| <= recurrent_max = 2 ** (1 / seq_len_hint)   (default)

    The paper bounds the recurrent weight by ``gamma ** (1 / T)`` so that the
    gradient through ``T`` steps, which scales like ``u ** T`` for an active
    ReLU unit, can neither explode beyond ``gamma`` nor be forced to vanish; the
    adding-problem experiments use ``gamma = 2``. ``forward`` applies the bound
    with ``clamp`` (gradients still flow for in-range weights) and
    :meth:`clip_recurrent_weights_` applies it to the stored parameter; call it
    after each optimizer step, as the paper does.

    Because ReLU sits inside the recurrence there is no parallel scan:
    ``forward`` projects all time steps at once and then runs a cheap
    elementwise loop, ``forward_sequential`` projects step by step.

    Constructor kwargs specific to IndRNN:

    * ``recurrent_max`` (float | None): bound on ``|u|``; ``None`` means
      ``2 ** (1 / seq_len_hint)``.
    * ``seq_len_hint`` (int, default 100): expected sequence length ``T``.
    * ``input_init_std`` (float | None, default None): if given, input weights
      are drawn from ``N(0, input_init_std)`` (the paper used 0.001 on the
      adding problem); ``None`` keeps PyTorch's ``nn.Linear`` init, which suits
      arbitrary input scales and deep stacks better. Recurrent weights are
      drawn uniform in ``[0, recurrent_max]`` as in the paper's adding setup.

    The paper's deep variants add batch norm / residual connections between
    layers; this module stacks plain layers so the benchmark compares the cell.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        recurrent_max: float | None = None,
        seq_len_hint: int = 100,
        input_init_std: float | None = None,
    ) -> None:
        super().__init__()
        if recurrent_max is None:
            recurrent_max = 2.0 ** (1.0 / seq_len_hint)
        if not recurrent_max > 0 or not math.isfinite(recurrent_max):
            raise ValueError(f"recurrent_max must be a positive finite number, got {recurrent_max}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        self.recurrent_max = float(recurrent_max)
        self.input_init_std = input_init_std
        self.input_proj = nn.ModuleList(
            nn.Linear(input_size if layer == 0 else hidden_size, hidden_size, bias=bias)
            for layer in range(num_layers)
        )
        self.recurrent_weight = nn.ParameterList(
            nn.Parameter(torch.empty(hidden_size)) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 and num_layers > 1 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for proj, u in zip(self.input_proj, self.recurrent_weight, strict=True):
            proj.reset_parameters()
            if self.input_init_std is not None:
                nn.init.normal_(proj.weight, std=self.input_init_std)
                if proj.bias is not None:
                    nn.init.zeros_(proj.bias)
            nn.init.uniform_(u, 0.0, self.recurrent_max)

    @torch.no_grad()
    def clip_recurrent_weights_(self) -> None:
        for u in self.recurrent_weight:
            u.clamp_(-self.recurrent_max, self.recurrent_max)

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        if self.dropout is not None and layer < self.num_layers - 1:
            h = self.dropout(h)
        return h

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h_seq = x
        for layer, (proj, u) in enumerate(zip(self.input_proj, self.recurrent_weight, strict=True)):
            u = u.clamp(-self.recurrent_max, self.recurrent_max)
            pre = proj(h_seq)
            h = pre.new_zeros(pre.shape[0], self.hidden_size)
            steps = []
            # unbind (not pre[:, t]) so backward does not build a full-size zero
            # gradient per step, which made long sequences quadratic in T.
            for pre_t in pre.unbind(1):
                h = torch.relu(pre_t + u * h)
                steps.append(h)
            h_seq = self._between_layers(torch.stack(steps, dim=1), layer)
        return h_seq, _gather_last(h_seq, lengths)

    def forward_sequential(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reference form: every layer and projection evaluated one step at a time."""
        batch = x.shape[0]
        us = [u.clamp(-self.recurrent_max, self.recurrent_max) for u in self.recurrent_weight]
        hs = [x.new_zeros(batch, self.hidden_size) for _ in range(self.num_layers)]
        outputs = []
        for inp in x.unbind(1):
            for layer in range(self.num_layers):
                hs[layer] = torch.relu(self.input_proj[layer](inp) + us[layer] * hs[layer])
                inp = self._between_layers(hs[layer], layer)
            outputs.append(inp)
        out = torch.stack(outputs, dim=1)
        return out, _gather_last(out, lengths)
