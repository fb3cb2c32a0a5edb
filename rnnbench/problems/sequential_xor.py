"""sequential_xor: output x_t XOR x_{t-1} at every step of a random bit string."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import Problem


class SequentialXor(Problem):
    """Input (T, 1) bits x_t ~ Bernoulli(0.5); target per step y_t = x_t XOR x_{t-1} for t >= 1.

        x:  1 0 0 1 1
        y:  - 1 0 1 0     (step 0 has no target: stored as 0, excluded from loss and accuracy)

    Sigmoid + BCE. Baseline: chance accuracy 0.5. Solved: per-step test accuracy >= 0.99.
    """

    name = "sequential_xor"
    input_size = 1
    output_size = 1
    target_kind = "per_step"
    loss = "bce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 2

    def generate(self, n, seq_len, rng):
        bits = rng.integers(0, 2, size=(n, seq_len), dtype=np.int8)
        y = np.zeros((n, seq_len), dtype=np.float32)
        y[:, 1:] = bits[:, 1:] ^ bits[:, :-1]
        return bits.astype(np.float32)[:, :, None], y[:, :, None]

    def target_mask(self, seq_len):
        mask = np.ones(seq_len, dtype=bool)
        mask[0] = False
        return mask

    def semantic_checks(self, x, y, lengths=None):
        xb, yb = x[:, :, 0], y[:, :, 0]
        expected = (xb[:, 1:] != xb[:, :-1]).astype(np.float32)
        return {
            "inputs_are_bits": ("x", np.all((xb == 0) | (xb == 1), axis=1)),
            "target_is_xor_of_neighbours": ("y", np.all(yb[:, 1:] == expected, axis=1) & (yb[:, 0] == 0)),
        }

    def baseline(self, seq_len):
        return 0.5

    def solved(self, metric, seq_len):
        return bool(metric >= 0.99)

    def solved_rule(self):
        return "per-step test accuracy >= 0.99"
