"""temporal_order: classify the order of two marked symbols hidden among distractors (Hochreiter & Schmidhuber 1997)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import TOKENS, DefaultGrid, Problem, decode_one_hot, one_hot

SYMBOLS = ("a", "b", "c", "d", "B", "E", "X", "Y")  # one-hot index = position here
A, B, E, X, Y = 0, 4, 5, 6, 7


def windows(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[lo, hi) of t1 (0.1 L <= t1 < 0.2 L) and of t2 (0.5 L <= t2 < 0.6 L) for integer lengths L, in exact
    integer arithmetic: the integers t with q L <= t < r L are ceil(q L) <= t < ceil(r L)."""
    return -(-lengths // 10), -(-lengths // 5), -(-lengths // 2), -(-3 * lengths // 5)


class TemporalOrder(Problem):
    """One-hot input (T, 8) over {a, b, c, d, B, E, X, Y}: step 0 is B, step T-1 is E, every other step a
    distractor from {a, b, c, d}, except t1 in [0.1T, 0.2T) and t2 in [0.5T, 0.6T), which hold X or Y.
    Target: the class of the ordered pair, XX = 0, XY = 1, YX = 2, YY = 3, read at the last step (4 logits,
    cross-entropy).

        step:  0   1 .. t1 .. 0.2T .. 0.5T .. t2 .. 0.6T .. T-1
        x:     B   d .. X  ......................  Y ........ E
        y:                                                  class(X, Y) = 1

    Worked example, T = 10 (then t1 = 1 and t2 = 5): B X a b c Y d a b E -> (X, Y) -> class 1.

    Baseline (no memory: the last step is always E): chance 0.25. Solved: test accuracy >= 0.99.
    Variable length: a sequence of true length L has its windows at [0.1L, 0.2L) and [0.5L, 0.6L) and E at
    L-1, zeros after.
    Source: Hochreiter & Schmidhuber 1997, "Long short-term memory", experiment 6a (there T = 100..110,
    t1 in [10, 20], t2 in [50, 60]); here scaled to T.
    """

    name = "temporal_order"
    storage = TOKENS
    input_size = len(SYMBOLS)
    output_size = 4
    target_kind = "last"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 10  # the shortest length whose t1 window starts after B: T = 10 gives t1 = 1, t2 = 5
    y_range = (0.0, 3.0)
    supports_variable_length = True
    baseline_value = 0.25
    threshold = 0.99
    default_grid = DefaultGrid(seq_lens=(50,), hidden_size=32, steps=1000)

    def _build(self, n: int, seq_len: int, lengths: np.ndarray, rng: np.random.Generator):
        lo1, hi1, lo2, hi2 = windows(lengths)
        ids = rng.integers(A, A + 4, size=(n, seq_len))
        t1, t2 = rng.integers(lo1, hi1), rng.integers(lo2, hi2)
        second = rng.integers(0, 2, size=(n, 2))  # 0 = X, 1 = Y, for t1 and t2
        rows = np.arange(n)
        ids[:, 0] = B
        ids[rows, lengths - 1] = E
        ids[rows, t1] = X + second[:, 0]
        ids[rows, t2] = X + second[:, 1]
        ids[np.arange(seq_len)[None, :] >= lengths[:, None]] = -1  # padding: all-zero steps
        y = (2 * second[:, 0] + second[:, 1]).astype(np.float32).reshape(n, 1, 1)
        return one_hot(ids, self.input_size), y

    def generate(self, n, seq_len, rng):
        return self._build(n, seq_len, np.full(n, seq_len), rng)

    def generate_variable(self, n, seq_len, min_len, rng):
        """Lengths L ~ U{min_len..seq_len}; each sequence is laid out for its own L; steps >= L are zero."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        x, y = self._build(n, seq_len, lengths, rng)
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, seq_len = x.shape[:2]
        variable = lengths is not None
        lengths = np.asarray(lengths, dtype=np.int64) if variable else np.full(n, seq_len)
        ids, valid, empty = decode_one_hot(x)
        pos = np.arange(seq_len)[None, :]
        real = pos < lengths[:, None]
        lo1, hi1, lo2, hi2 = (w[:, None] for w in windows(lengths))
        in1, in2 = (pos >= lo1) & (pos < hi1), (pos >= lo2) & (pos < hi2)
        marked = real & ((ids == X) | (ids == Y))
        is_y = real & (ids == Y)
        rows = np.arange(n)
        checks = {
            "inputs_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "B_first_E_last_only": ("x", (ids[:, 0] == B) & (ids[rows, lengths - 1] == E)
                                    & (np.sum(real & ((ids == B) | (ids == E)), axis=1) == 2)),
            "one_X_or_Y_in_each_window": ("x", (np.sum(marked & in1, axis=1) == 1)
                                          & (np.sum(marked & in2, axis=1) == 1) & (marked.sum(axis=1) == 2)),
            "target_is_class_of_pair": ("y", y[:, 0, 0] == 2 * np.sum(is_y & in1, axis=1)
                                        + np.sum(is_y & in2, axis=1)),
        }
        if variable:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
        return checks
