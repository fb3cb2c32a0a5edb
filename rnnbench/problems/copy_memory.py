"""copy_memory: remember a vector shown at step 0 through T-1 steps of noise (the notebook's regression variant)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import DefaultGrid, Problem


class CopyMemory(Problem):
    """Input (T, 10): step 0 holds v ~ U[0,1]^10, steps 1..T-1 noise U[0, 0.1]^10. Target v, read at the last step.

        step:   0          1           ...  T-1
        x:      v          noise<=0.1  ...  noise<=0.1
        y:                                  v        (MSE)

    Baseline: predicting 0.5 gives MSE = Var(U[0,1]) = 1/12. Solved: test MSE <= 0.1 x baseline.
    Variable length (`--min-len`): L ~ U{min_len..T}, noise on steps 1..L-1, zeros after, read at step L-1.
    """

    name = "copy_memory"
    dim = 10
    noise_max = 0.1
    input_size = dim
    output_size = dim
    target_kind = "last"
    loss = "mse"
    metric_name = "mse"
    higher_is_better = False
    min_seq_len = 2
    baseline_value = 1.0 / 12.0  # predicting 0.5: Var(U[0, 1])
    threshold = 0.1 * baseline_value
    default_grid = DefaultGrid(seq_lens=(50,), hidden_size=64, steps=1000)  # the notebook's

    def generate(self, n, seq_len, rng):
        x = rng.random((n, seq_len, self.dim), dtype=np.float32)
        x[:, 1:, :] *= np.float32(self.noise_max)
        y = x[:, :1, :].copy()
        return x, y

    supports_variable_length = True

    def generate_variable(self, n, seq_len, min_len, rng):
        """Lengths L ~ U{min_len..seq_len}: v at step 0, noise on steps 1..L-1, zeros after; read at step L-1."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        x, y = self.generate(n, seq_len, rng)
        x[np.arange(seq_len)[None, :] >= lengths[:, None]] = 0.0
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        real = np.ones((n, steps), dtype=bool) if lengths is None else \
            np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
        noise = x[:, 1:, :]
        in_range = ((noise >= 0) & (noise <= self.noise_max)).all(axis=2) | ~real[:, 1:]
        checks = {
            "target_equals_step0": ("y", np.all(y[:, 0, :] == x[:, 0, :], axis=1)),
            "noise_in_0_to_0.1": ("x", np.all(in_range, axis=1)),
        }
        if lengths is not None:
            checks["padding_is_zero"] = ("x", ~np.any((x != 0) & ~real[:, :, None], axis=(1, 2)))
        return checks

    def solved_rule(self):
        return "test MSE <= 0.1 x baseline (1/12)"
