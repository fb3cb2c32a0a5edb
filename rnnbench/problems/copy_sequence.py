"""copy_sequence: recall 10 symbols after a delay of T steps (the copying problem of Arjovsky et al. 2016)."""

from __future__ import annotations

import math

import numpy as np

from rnnbench.problems.base import (
    TOKENS,
    DefaultGrid,
    Problem,
    decode_one_hot,
    one_hot,
    per_sequence_mean,
    sequence_cross_entropy,
)


class CopySequence(Problem):
    """Alphabet 0 = blank, 1..8 data, 9 = delimiter, one-hot input (T + 20, 10). The input holds 10 data
    symbols, T-1 blanks, the delimiter and 10 blanks; the target is blank for the first T+10 steps, then the
    10 data symbols. Output: 9 logits (blank, 1..8) at every step; cross-entropy over all T+20 steps.

        step:  0 ........ 9   10 ... T+8   T+9   T+10 ....... T+19
        x:     s1 ...... s10  _  ...  _     :    _  .......... _        (_ blank, : delimiter)
        y:     _  ....... _   _  ...  _     _    s1 ......... s10

    Worked example, T = 2 (22 steps): x = 3 1 4 1 5 2 6 5 3 5 _ : _ _ _ _ _ _ _ _ _ _ ->
    y = _ _ _ _ _ _ _ _ _ _ _ _ 3 1 4 1 5 2 6 5 3 5.

    Baseline (no memory: blank until the delimiter, then uniform over 1..8): 10 ln 8 / (T + 20) nats per
    step. Variable length (`--min-len`): each sequence has its own delay L ~ U{min_len..T} and L + 20 real
    steps, then all-zero padding outside the target mask; the baseline is the mean of 10 ln 8 / (L + 20).
    Solved: accuracy on the 10 recalled symbols >= 0.99 (`recall_accuracy`; the primary metric, cross-entropy,
    is reported but the rule does not read it).
    Source: Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", sec. 4.1 (after Hochreiter & Schmidhuber
    1997); amarshah/complex_RNN.
    """

    name = "copy_sequence"
    storage = TOKENS
    blank, delimiter = 0, 9
    n_symbols = 10  # symbols to recall
    data_classes = 8  # data symbols 1..8
    input_size = 10
    output_size = 9  # blank and the 8 data symbols: the delimiter is never a target
    target_kind = "per_step"
    loss = "ce"
    metric_name = "cross_entropy"
    higher_is_better = False
    min_seq_len = 2  # T = 1 would be well defined too; 2 as everywhere (the metrics schema wants seq_len >= 2)
    y_range = (0.0, 8.0)
    recall_solved = 0.99  # its rule reads recall accuracy, not the primary metric: no `threshold`
    default_grid = DefaultGrid(seq_lens=(10,), hidden_size=64, steps=1000)

    def input_steps(self, seq_len):
        return seq_len + 2 * self.n_symbols

    supports_variable_length = True

    def _build(self, data: np.ndarray, lengths: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """ids and y for data symbols [n, 10] laid out at each sequence's own delay L (lengths), padded (id -1:
        an all-zero input; target 0) to T + 20 steps."""
        pos = np.arange(self.input_steps(seq_len))[None, :]
        ids = np.where(pos < self.input_steps(lengths)[:, None], self.blank, -1)
        ids[:, : self.n_symbols] = data
        np.put_along_axis(ids, (lengths + self.n_symbols - 1)[:, None], self.delimiter, axis=1)
        y = np.zeros((len(data), self.input_steps(seq_len), 1), dtype=np.float32)
        recall = (lengths + self.n_symbols)[:, None] + np.arange(self.n_symbols)[None, :]
        np.put_along_axis(y[:, :, 0], recall, data.astype(np.float32), axis=1)
        return ids, y

    def generate(self, n, seq_len, rng):
        data = rng.integers(1, self.data_classes + 1, size=(n, self.n_symbols))
        ids, y = self._build(data, np.full(n, seq_len), seq_len)
        return one_hot(ids, self.input_size), y

    def generate_variable(self, n, seq_len, min_len, rng):
        """Delays L ~ U{min_len..seq_len}: each sequence is laid out for its own L (L + 20 real steps, the
        recall at its end); the steps after are all-zero inputs with target 0, outside the target mask."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        data = rng.integers(1, self.data_classes + 1, size=(n, self.n_symbols))
        ids, y = self._build(data, lengths, seq_len)
        return one_hot(ids, self.input_size), y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        seq_len = steps - 2 * self.n_symbols
        variable = lengths is not None
        lengths = np.asarray(lengths, dtype=np.int64) if variable else np.full(n, seq_len)
        ids, valid, empty = decode_one_hot(x)
        data = ids[:, : self.n_symbols]
        layout, _ = self._build(data, lengths, seq_len)  # where each blank and the delimiter must be
        real = np.arange(steps)[None, :] < self.input_steps(lengths)[:, None]
        recall = self._recall_steps(real)
        yc = y[:, :, 0]
        checks = {
            "inputs_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "data_symbols_in_1_to_8": ("x", np.all((data >= 1) & (data <= self.data_classes), axis=1)),
            "blanks_and_delimiter_in_place": ("x", np.all((ids == layout) | ~real, axis=1)),
            "target_blank_until_recall": ("y", np.all((yc == self.blank) | recall | ~real, axis=1)),
            # every row has exactly 10 recall steps (its last 10 real ones)
            "target_recalls_data_symbols": ("y", np.all(yc[recall].reshape(n, self.n_symbols) == data, axis=1)),
        }
        if variable:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
            checks["target_zero_in_padding"] = ("y", np.all((yc == 0) | real, axis=1))
        return checks

    def _recall_steps(self, mask: np.ndarray) -> np.ndarray:
        """[n or 1, steps]: the 10 recall steps, which are the last 10 kept steps of each sequence (every real
        step is kept: the target mask is [steps] all true, or [n, steps] true before each sequence's end)."""
        m = np.atleast_2d(mask)
        kept = m.sum(axis=1, keepdims=True)
        pos = np.arange(m.shape[1])[None, :]
        return (pos >= kept - self.n_symbols) & (pos < kept)

    def baseline(self, seq_len):
        return self.n_symbols * math.log(self.data_classes) / self.input_steps(seq_len)

    def sequence_metric(self, pred, y, mask):
        return sequence_cross_entropy(pred, y, mask)

    def metrics(self, pred, y, mask):
        out = super().metrics(pred, y, mask)
        recall = np.broadcast_to(self._recall_steps(mask), y.shape[:2])
        per = per_sequence_mean(pred.argmax(axis=-1) == y[..., 0], recall)
        out["recall_accuracy"] = float(per.mean())
        out["recall_se"] = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float("nan")
        return out

    def memoryless_sequence_metric(self, y, mask, lengths=None):
        """Blank with probability 1 before the recall steps, uniform over 1..8 on them: per step 0 or ln 8
        nats where the stored target fits that layout, infinite where it does not."""
        recall = self._recall_steps(mask)
        yc = y[:, :, 0]
        fits = np.where(recall, (yc >= 1) & (yc <= self.data_classes), yc == self.blank)
        per_step = np.where(fits, np.where(recall, math.log(self.data_classes), 0.0), np.inf)
        return per_sequence_mean(per_step, mask)

    def solved_from(self, scores, seq_len):
        return bool(scores["recall_accuracy"] >= self.recall_solved)

    def solved_by_margin(self, scores, seq_len, factor):
        # the rule reads recall accuracy (higher is better), so the margin is its own standard error's
        se = scores.get("recall_se", math.nan)
        return math.isfinite(se) and bool(scores["recall_accuracy"] - factor * se >= self.recall_solved)

    def solved_rule(self):
        return "test accuracy on the 10 recalled symbols >= 0.99"
