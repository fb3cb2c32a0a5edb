"""IndRNN: independently recurrent network with a bounded elementwise recurrent weight."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnbench.archs.stacked import TIME_DIM, StackedCore


class IndRNN(StackedCore):
    r"""Stacked IndRNN with ReLU activation.

    Li, Li, Cook, Zhu & Gao (2018), "Independently Recurrent Neural Network
    (IndRNN): Building A Longer and Deeper RNN", CVPR 2018, arXiv:1803.04831.

    Each layer computes, per unit (``u`` is a vector, ``⊙`` elementwise)::

        h_t = relu(W x_t + u ⊙ h_{t-1} + b),      h_0 = 0
        |u| <= recurrent_max = 2 ** (1 / T)               (default, T the training length)

    The paper bounds the recurrent weight by ``gamma ** (1 / T)`` so that the
    gradient through ``T`` steps, which scales like ``u ** T`` for an active
    ReLU unit, can neither explode beyond ``gamma`` nor be forced to vanish; the
    adding-problem experiments use ``gamma = 2``. ``forward`` applies the bound
    with ``clamp`` (gradients still flow for in-range weights) and
    :meth:`clip_recurrent_weights_` applies it to the stored parameter; call it
    after each optimizer step, as the paper does.

    Because ReLU sits inside the recurrence there is no parallel scan:
    ``forward`` projects all time steps at once and then runs a cheap
    elementwise loop (its only form), ``forward_sequential`` projects step by
    step.

    Constructor kwargs specific to IndRNN:

    * ``recurrent_max`` (float | None): bound on ``|u|``; ``None`` means
      ``2 ** (1 / seq_len_hint)``. The pipeline always passes it: the option
      ``indrnn.recurrent_max``, by default ``2 ** (1 / seq_len)`` of the run
      (rnnbench/archs/__init__.py), so the recorded bound is the one used.
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
        super().__init__(input_size, hidden_size, num_layers, dropout)
        if recurrent_max is None:
            recurrent_max = 2.0 ** (1.0 / seq_len_hint)
        if not recurrent_max > 0 or not math.isfinite(recurrent_max):
            raise ValueError(f"recurrent_max must be a positive finite number, got {recurrent_max}")
        self.recurrent_max = float(recurrent_max)
        self.input_init_std = input_init_std
        self.input_proj = nn.ModuleList(
            nn.Linear(self.layer_input_size(layer), hidden_size, bias=bias) for layer in range(num_layers)
        )
        self.recurrent_weight = nn.ParameterList(
            nn.Parameter(torch.empty(hidden_size)) for _ in range(num_layers)
        )
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

    def layer(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        u = self.recurrent_weight[index].clamp(-self.recurrent_max, self.recurrent_max)
        pre = self.input_proj[index](h)
        time_dim = TIME_DIM[form]
        if state is None:
            state = pre.new_zeros(pre.shape[1 - time_dim], self.hidden_size)
        steps = []
        # unbind (not pre[:, t]) so backward does not build a full-size zero
        # gradient per step, which made long sequences quadratic in T.
        for pre_t in pre.unbind(time_dim):
            state = torch.relu(pre_t + u * state)
            steps.append(state)
        return torch.stack(steps, dim=time_dim), state

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = h_t.new_zeros(h_t.shape[0], self.hidden_size)
        u = self.recurrent_weight[index].clamp(-self.recurrent_max, self.recurrent_max)
        state = torch.relu(self.input_proj[index](h_t) + u * state)
        return state, state
