"""copy_sequence: recall 10 symbols after a delay of T steps (the copying problem of Arjovsky et al. 2016)."""

from __future__ import annotations

import math

import numpy as np

from rnnbench.problems.base import Problem, decode_one_hot, one_hot, sequence_cross_entropy


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
    step. Solved: accuracy on the 10 recalled symbols >= 0.99 (`recall_accuracy`; the primary metric,
    cross-entropy, is reported but the rule does not read it).
    Source: Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", sec. 4.1 (after Hochreiter & Schmidhuber
    1997); amarshah/complex_RNN.
    """

    name = "copy_sequence"
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
    recall_solved = 0.99

    def input_steps(self, seq_len):
        return seq_len + 2 * self.n_symbols

    def _recall(self, seq_len: int) -> slice:
        return slice(seq_len + self.n_symbols, seq_len + 2 * self.n_symbols)

    def generate(self, n, seq_len, rng):
        data = rng.integers(1, self.data_classes + 1, size=(n, self.n_symbols))
        ids = np.zeros((n, self.input_steps(seq_len)), dtype=np.int64)
        ids[:, : self.n_symbols] = data
        ids[:, seq_len + self.n_symbols - 1] = self.delimiter
        y = np.zeros((n, self.input_steps(seq_len), 1), dtype=np.float32)
        y[:, self._recall(seq_len), 0] = data
        return one_hot(ids, self.input_size), y

    def semantic_checks(self, x, y, lengths=None):
        seq_len = x.shape[1] - 2 * self.n_symbols
        ids, valid, _ = decode_one_hot(x)
        data = ids[:, : self.n_symbols]
        layout = np.zeros_like(ids)  # what every step but the first 10 must hold
        layout[:, seq_len + self.n_symbols - 1] = self.delimiter
        yc = y[:, :, 0]
        recall = self._recall(seq_len)
        return {
            "inputs_one_hot": ("x", valid.all(axis=1)),
            "data_symbols_in_1_to_8": ("x", np.all((data >= 1) & (data <= self.data_classes), axis=1)),
            "blanks_and_delimiter_in_place": ("x", np.all(ids[:, self.n_symbols:] == layout[:, self.n_symbols:],
                                                          axis=1)),
            "target_blank_until_recall": ("y", np.all(yc[:, : recall.start] == self.blank, axis=1)),
            "target_recalls_data_symbols": ("y", np.all(yc[:, recall] == data, axis=1)),
        }

    def baseline(self, seq_len):
        return self.n_symbols * math.log(self.data_classes) / self.input_steps(seq_len)

    def sequence_metric(self, pred, y, mask):
        return sequence_cross_entropy(pred, y, mask)

    def metrics(self, pred, y, mask):
        out = super().metrics(pred, y, mask)
        recall = self._recall(y.shape[1] - 2 * self.n_symbols)
        out["recall_accuracy"] = float(np.mean(pred[:, recall].argmax(axis=-1) == y[:, recall, 0]))
        return out

    def memoryless_sequence_metric(self, y, mask, lengths=None):
        """Blank with probability 1 before the recall steps, uniform over 1..8 on them: per step 0 or ln 8
        nats where the stored target fits that layout, infinite where it does not."""
        recall = np.zeros(y.shape[1], dtype=bool)
        recall[self._recall(y.shape[1] - 2 * self.n_symbols)] = True
        yc = y[:, :, 0]
        fits = np.where(recall, (yc >= 1) & (yc <= self.data_classes), yc == self.blank)
        per_step = np.where(fits, np.where(recall, math.log(self.data_classes), 0.0), np.inf)
        return per_step[:, mask].mean(axis=1)

    def solved(self, metric, seq_len):
        raise ValueError("copy_sequence's solved rule reads recall accuracy, not cross-entropy: "
                         "call solved_from(metrics(...), seq_len)")

    def solved_from(self, scores, seq_len):
        return bool(scores["recall_accuracy"] >= self.recall_solved)

    def solved_rule(self):
        return "test accuracy on the 10 recalled symbols >= 0.99"
