"""sequential_xor: output x_t XOR x_{t-1} at every step of a random bit string."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import DefaultGrid, Problem, StorageLayout


class SequentialXor(Problem):
    """Input (T, 1) bits x_t ~ Bernoulli(0.5); target per step y_t = x_t XOR x_{t-1} for t >= 1.

        x:  1 0 0 1 1
        y:  - 1 0 1 0     (step 0 has no target: stored as 0, excluded from loss and accuracy)

    Sigmoid + BCE. Baseline: chance accuracy 0.5. Solved: per-step test accuracy >= 0.99.
    Variable length (`--min-len`): L ~ U{min_len..T}; bits and targets on steps 0..L-1, zeros after.
    """

    name = "sequential_xor"
    storage = StorageLayout(x="int", y="int")  # bits in and out
    input_size = 1
    output_size = 1
    target_kind = "per_step"
    loss = "bce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 2
    baseline_value = 0.5
    threshold = 0.99
    rule_metric = "per-step test accuracy"
    default_grid = DefaultGrid(seq_lens=(20,), hidden_size=32, steps=500)  # the notebook's

    def generate(self, n, seq_len, rng):
        bits = rng.integers(0, 2, size=(n, seq_len), dtype=np.int8)
        y = np.zeros((n, seq_len), dtype=np.float32)
        y[:, 1:] = bits[:, 1:] ^ bits[:, :-1]
        return bits.astype(np.float32)[:, :, None], y[:, :, None]

    def target_mask(self, seq_len):
        mask = np.ones(seq_len, dtype=bool)
        mask[0] = False
        return mask

    supports_variable_length = True

    def generate_variable(self, n, seq_len, min_len, rng):
        """Lengths L ~ U{min_len..seq_len}: bits and targets on steps 0..L-1, zeros after (outside the mask)."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        x, y = self.generate(n, seq_len, rng)
        padding = np.arange(seq_len)[None, :] >= lengths[:, None]
        x[padding], y[padding] = 0.0, 0.0
        return x, y, lengths.astype(np.int32)

    def variable_target_mask(self, seq_len, lengths):
        """Steps 1..L-1 of each sequence (step 0 has no target, as at fixed length)."""
        return super().variable_target_mask(seq_len, lengths) & self.target_mask(seq_len)[None, :]

    def semantic_checks(self, x, y, lengths=None):
        xb, yb = x[:, :, 0], y[:, :, 0]
        n, steps = xb.shape
        real = np.ones((n, steps), dtype=bool) if lengths is None else \
            np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
        expected = (xb[:, 1:] != xb[:, :-1]).astype(np.float32)
        checks = {
            "inputs_are_bits": ("x", np.all((xb == 0) | (xb == 1), axis=1)),
            "target_is_xor_of_neighbours": ("y", np.all((yb[:, 1:] == expected) | ~real[:, 1:], axis=1)
                                            & (yb[:, 0] == 0)),
        }
        if lengths is not None:
            # a padded 0 bit looks like a real one: the stored lengths say which is which; padding holds zeros
            checks["padding_is_zero"] = ("x", np.all((xb == 0) | real, axis=1))
            checks["target_zero_in_padding"] = ("y", np.all((yb == 0) | real, axis=1))
        return checks
