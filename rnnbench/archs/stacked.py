"""The stacked-layer base of the modern cores: the layer loop, dropout between layers, the forms, the last step."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnbench.archs.scan import FORMS, pick_form

# where time runs in the tensors a layer receives in each form: the recurrent form is time-major, so that each
# step of its loop reads and writes contiguous memory
TIME_DIM = {"parallel": 1, "recurrent": 0}
# the recurrent form runs the whole stack on this many steps at a time, carrying each layer's state: one chunk's
# activations stay in the CPU cache through every layer, forward and backward
CHUNK = 64


def gather_last(outputs: Tensor, lengths: Tensor | None) -> Tensor:
    """outputs [B, T, H] at each sequence's true last step (T-1 without lengths) -> [B, H]."""
    if lengths is None:
        return outputs[:, -1]
    idx = lengths.to(device=outputs.device, dtype=torch.long) - 1
    idx = idx.view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, idx).squeeze(1)


class StackedCore(nn.Module):
    """`num_layers` layers of one recurrent cell, with dropout between them (not after the last, as nn.LSTM).

    A cell is one subclass. Its __init__ calls ``super().__init__(input_size, hidden_size, num_layers, dropout)``
    and then builds its parameters (layer ``i`` reads ``layer_input_size(i)`` features); it defines

    * ``layer(index, h, form, state) -> (out, state)``: layer ``index`` over whole sequences in the form ``form``.
      "parallel": ``h`` is [B, T, in], ``out`` [B, T, H], ``state`` is None in and out. "recurrent": ``h`` is a
      time-major chunk [T', B, in], ``out`` [T', B, H], and ``state`` the layer's state before the chunk (None:
      zero) in, after it out. A cell with one algorithm may run it in both forms (IndRNN).
    * ``step(index, h_t, state) -> (out_t, state)``: one time step of that layer, ``state=None`` standing for
      the zero initial state;
    * optionally ``embed(x)``: what layer 0 reads (default ``x`` itself; LRU: its linear encoder), per step.

    ``forward(x, lengths)`` returns ``(outputs [B, T, H], last [B, H])`` with ``last`` read at each sequence's
    true end. It runs in ``self.form``: "auto" (the default) picks per device and length
    (rnnbench.archs.scan.pick_form), "parallel" / "recurrent" force one. ``forward_sequential`` is the
    reference: the whole stack one time step at a time through ``step``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        self.dropout = nn.Dropout(dropout) if dropout > 0 and num_layers > 1 else None
        self.form = "auto"
        self.chunk = CHUNK

    def layer_input_size(self, index: int) -> int:
        return self.input_size if index == 0 else self.hidden_size

    def embed(self, x: Tensor) -> Tensor:
        return x

    def layer(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _between_layers(self, h: Tensor, index: int) -> Tensor:
        if self.dropout is not None and index < self.num_layers - 1:
            h = self.dropout(h)
        return h

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.forward_form(x, lengths, self.form)

    def forward_form(self, x: Tensor, lengths: Tensor | None = None, form: str = "auto") -> tuple[Tensor, Tensor]:
        """forward in a given form: "auto", "parallel" or "recurrent"."""
        if form == "auto":
            form = pick_form(x.device, x.shape[1])
        elif form not in FORMS:
            raise ValueError(f"unknown form {form!r}; choose auto, {', '.join(FORMS)}")
        if form == "parallel":
            h = self.embed(x)
            for index in range(self.num_layers):
                out, _ = self.layer(index, h, form, None)
                h = self._between_layers(out, index)
            return h, gather_last(h, lengths)
        states: list[Tensor | None] = [None] * self.num_layers
        chunks = []
        for chunk in x.transpose(0, 1).contiguous().split(self.chunk):
            h = self.embed(chunk)
            for index in range(self.num_layers):
                out, states[index] = self.layer(index, h, form, states[index])
                h = self._between_layers(out, index)
            chunks.append(h)
        h = (chunks[0] if len(chunks) == 1 else torch.cat(chunks)).transpose(0, 1)
        return h, gather_last(h, lengths)

    def forward_sequential(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reference form: every layer evaluated one time step at a time."""
        states: list[Tensor | None] = [None] * self.num_layers
        outputs = []
        for x_t in x.unbind(1):
            h = self.embed(x_t)
            for index in range(self.num_layers):
                out, states[index] = self.step(index, h, states[index])
                h = self._between_layers(out, index)
            outputs.append(h)
        out = torch.stack(outputs, dim=1)
        return out, gather_last(out, lengths)


__all__ = ["CHUNK", "TIME_DIM", "StackedCore", "gather_last"]
