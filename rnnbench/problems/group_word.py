"""group_word: state tracking, the running product of a word over a finite group (Merrill, Petty & Sabharwal 2024)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems import groups
from rnnbench.problems.base import TOKENS, DefaultGrid, Problem, ProblemOption, decode_one_hot, one_hot


class GroupWord(Problem):
    """Input (T, |G|): elements g_1..g_T of a finite group G drawn uniformly, one-hot. Target at every step t: the
    index of the running product g_1·g_2·…·g_t (left to right), a class among |G| (cross-entropy over every step).
    Scored: per-step accuracy over steps t >= 2 (index 1 on); at t = 1 the answer is the input itself.

    Option `group` (`--problem-option group_word.group=a5`): z2, z60, s3 (default), a5 or s5; the tables are
    built in rnnbench/problems/groups.py, element 0 the identity, a·b meaning "a, then b".

    Worked example on s3, whose elements in lexicographic one-line notation are 0 = 012 (identity),
    1 = 021, 2 = 102, 3 = 120, 4 = 201, 5 = 210:

        x (g_t):   1  2  3  5
        y (g_1..t): 1  3  4  1     scored: 3 4 1 (steps t >= 2)

    1·2: 021 then 102 sends 0 -> 0 -> 1, 1 -> 2 -> 2, 2 -> 1 -> 0, which is 120 = 3; 3·3 = 201 = 4; 4·5 = 021 = 1.
    The order matters: 2·1 = 4, not 3. A model without memory sees only g_t, and for t >= 2 the running product
    is uniform over G and independent of g_t: baseline 1/|G| (1/6 on s3). Solved: per-step accuracy >= 0.99.
    Variable length (`--min-len`): L ~ U{min_len..T}, one-hot zeros and target 0 after L.
    Sources: Merrill, Petty & Sabharwal 2024, "The Illusion of State in State-Space Models" (jopetty/word-problem);
    Liu et al. 2023, "Transformers Learn Shortcuts to Automata".
    """

    name = "group_word"
    storage = TOKENS
    problem_options = (
        ProblemOption("group", str, "s3", "s3: the smallest non-abelian group, so a run tells tracking an order "
                      "from counting; z2 and a5/s5 carry theory's predictions (docs/PROBLEMS.md)",
                      choices=groups.GROUP_NAMES),
    )
    target_kind = "per_step"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 2
    threshold = 0.99
    rule_metric = "per-step test accuracy from step 2 on"
    supports_variable_length = True
    default_grid = DefaultGrid(seq_lens=(16,), hidden_size=32, steps=2000)
    # Merrill et al.'s word files run to length 20; longer words test whether tracking holds, which is the claim
    full_lengths = (20, 50, 100, 200)

    def __init__(self, group: str = "s3") -> None:
        if group not in groups.GROUP_NAMES:
            raise ValueError(f"group_word.group={group!r}: expected one of {', '.join(groups.GROUP_NAMES)}")
        self.group = group
        self.algebra = groups.group(group)
        self.input_size = self.output_size = self.algebra.order
        self.y_range = (0.0, float(self.algebra.order - 1))
        self.baseline_value = 1.0 / self.algebra.order

    def target_mask(self, seq_len):
        mask = np.ones(seq_len, dtype=bool)
        mask[0] = False
        return mask

    def variable_target_mask(self, seq_len, lengths):
        """Steps 1..L-1 of each sequence (step 0 is the input itself, as at fixed length)."""
        return super().variable_target_mask(seq_len, lengths) & self.target_mask(seq_len)[None, :]

    def _build(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        products = self.algebra.running_products(ids)
        y = np.maximum(products, 0).astype(np.float32)[:, :, None]  # padding's target: 0
        return one_hot(ids, self.input_size), y

    def generate(self, n, seq_len, rng):
        return self._build(rng.integers(0, self.algebra.order, size=(n, seq_len)))

    def generate_variable(self, n, seq_len, min_len, rng):
        """Lengths L ~ U{min_len..seq_len}: elements and products on steps 0..L-1, zeros after."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        ids = rng.integers(0, self.algebra.order, size=(n, seq_len))
        ids[np.arange(seq_len)[None, :] >= lengths[:, None]] = -1
        x, y = self._build(ids)
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        ids, valid, empty = decode_one_hot(x)
        real = np.ones((n, steps), dtype=bool) if lengths is None else \
            np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
        # the product recomputed from the inputs as stored (a step that is not one-hot counts as padding here;
        # inputs_one_hot names it)
        products = self.algebra.running_products(np.where(real & valid, ids, -1))
        yc = y[:, :, 0]
        checks = {
            "inputs_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "target_is_running_product": ("y", np.all((yc == products) | ~real, axis=1)),
        }
        if lengths is not None:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
            checks["target_zero_in_padding"] = ("y", np.all((yc == 0) | real, axis=1))
        return checks
