"""The stacked-layer base of the modern cores: the layer loop, dropout between layers, the forms, the last step."""

from __future__ import annotations

from typing import ClassVar

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
    * optionally, instead of ``layer``, its two halves: ``layer_state(index, h, form, state) -> (carry, state)``,
      the recurrence over every step (``carry``: a tuple of per-step tensors laid out as ``h``), and
      ``layer_output(index, h, carry) -> out``, what each step makes of it, step by step (any leading shape).
      Then ``forward_last`` runs the top layer's output at each sequence's last step only (LRU: its readout,
      GELU, GLU and residual; the model of a problem read at the last step needs no more).

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
        if not self.splits_layers():
            raise NotImplementedError
        carry, state = self.layer_state(index, h, form, state)
        return self.layer_output(index, h, carry), state

    def layer_state(self, index: int, h: Tensor, form: str, state: Tensor | None) -> tuple[tuple, Tensor | None]:
        raise NotImplementedError

    def layer_output(self, index: int, h: Tensor, carry: tuple) -> Tensor:
        raise NotImplementedError

    def splits_layers(self) -> bool:
        return type(self).layer_output is not StackedCore.layer_output

    def step(self, index: int, h_t: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _between_layers(self, h: Tensor, index: int) -> Tensor:
        if self.dropout is not None and index < self.num_layers - 1:
            h = self.dropout(h)
        return h

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.forward_form(x, lengths, self.form)

    def _layers(self, h: Tensor, form: str, states: list[Tensor | None], count: int | None = None) -> Tensor:
        """Layers 0..count-1 (default: all) over `h` in `form`, with dropout between them; each layer's state is
        read from and written back to `states` (the recurrent form's chunks carry it)."""
        for index in range(self.num_layers if count is None else count):
            out, states[index] = self.layer(index, h, form, states[index])
            h = self._between_layers(out, index)
        return h

    def _form(self, x: Tensor, form: str) -> str:
        if form == "auto":
            return pick_form(x.device, x.shape[1])
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}; choose auto, {', '.join(FORMS)}")
        return form

    def forward_last(self, x: Tensor, lengths: Tensor | None = None, form: str | None = None) -> Tensor:
        """`last` of forward (each sequence's output at its true last step) without the other steps' outputs of
        the top layer, for a cell that splits its layer (else forward's). Same values, less work: LRU at T=100
        computes its top block's readout, GELU, GLU and residual at one step per sequence instead of 100."""
        form = self._form(x, self.form if form is None else form)
        if not self.splits_layers():
            return self.forward_form(x, lengths, form)[1]
        top = self.num_layers - 1
        ends = (torch.full((x.shape[0],), x.shape[1] - 1, device=x.device, dtype=torch.long) if lengths is None
                else lengths.to(device=x.device, dtype=torch.long) - 1)
        if form == "parallel":
            h = self._layers(self.embed(x), form, [None] * self.num_layers, top)
            carry, _ = self.layer_state(top, h, form, None)
            rows = torch.arange(x.shape[0], device=x.device)
            return self.layer_output(top, h[rows, ends], tuple(c[rows, ends] for c in carry))
        states: list[Tensor | None] = [None] * self.num_layers
        rows_done, outs = [], []
        start, final = 0, int(ends.max())
        for chunk in x.transpose(0, 1).contiguous().split(self.chunk):
            h = self._layers(self.embed(chunk), form, states, top)
            carry, states[top] = self.layer_state(top, h, form, states[top])
            rows = torch.nonzero((ends >= start) & (ends < start + chunk.shape[0])).squeeze(1)
            if len(rows):
                steps = ends[rows] - start
                outs.append(self.layer_output(top, h[steps, rows], tuple(c[steps, rows] for c in carry)))
                rows_done.append(rows)
            start += chunk.shape[0]
            if start > final:  # every sequence has ended: later steps change no `last`
                break
        out, rows = (outs[0], rows_done[0]) if len(outs) == 1 else (torch.cat(outs), torch.cat(rows_done))
        return out[torch.argsort(rows)]

    def forward_form(self, x: Tensor, lengths: Tensor | None = None, form: str = "auto") -> tuple[Tensor, Tensor]:
        """forward in a given form: "auto", "parallel" or "recurrent"."""
        form = self._form(x, form)
        if form == "parallel":
            h = self._layers(self.embed(x), form, [None] * self.num_layers)
            return h, gather_last(h, lengths)
        states: list[Tensor | None] = [None] * self.num_layers
        chunks = [self._layers(self.embed(chunk), form, states)
                  for chunk in x.transpose(0, 1).contiguous().split(self.chunk)]
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


class InputGatedCore(StackedCore):
    """A core whose gates and candidate read the layer's input only, never h_{t-1} (minGRU, minLSTM): the
    recurrence is linear in h, and one fused Linear per layer makes all `parts` pre-activations, so a step costs a
    single matmul."""

    parts: ClassVar[int]  # pre-activations per unit: the gates and the candidate

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout)
        self.proj = nn.ModuleList(
            nn.Linear(self.layer_input_size(layer), self.parts * hidden_size, bias=bias) for layer in range(num_layers)
        )


__all__ = ["CHUNK", "TIME_DIM", "InputGatedCore", "StackedCore", "gather_last"]
