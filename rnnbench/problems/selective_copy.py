"""selective_copy: recall, in order, 16 tokens scattered at random steps among filler (Gu & Dao 2023)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import TOKENS, DefaultGrid, Problem, decode_one_hot, one_hot


class SelectiveCopy(Problem):
    """Vocabulary 0 = filler, 1..14 data tokens, 15 = query marker; one-hot input (T + 16, 16). The first T
    steps (the context) hold 16 tokens drawn from 1..14 at sorted random positions, filler elsewhere; then 16
    query markers. Target: the 16 tokens in order, one per query step (16 logits; cross-entropy and accuracy
    at the query steps only, the target mask).

        step:  0 ......................... T-1   T ........ T+15
        x:     . a . . b . c . . . ....... p .   ? ........ ?        (. filler, ? query marker)
        y:     (not scored) ..................   a b c ...... p

    Worked example with 2 tokens instead of 16 (the code always uses 16): context . 7 . . 3 ., queries ? ? ->
    targets 7 3.

    T is the context length, as `sequence_length` in the minRNNs repo (so T >= 16). Variable length
    (`--min-len`): each sequence has its own context length L ~ U{min_len..T}, its 16 queries right after it
    (the target mask follows them), then all-zero padding. Baseline (no memory: at a
    query step only the marker is visible): chance 1/14 per token. Solved: per-token accuracy at the query
    steps >= 0.99.
    Source: Gu & Dao 2023, "Mamba", sec. 3.1 (selective copying); BorealisAI/minRNNs `data/selective_copy.py`
    (which uses 15 as filler and 0 as marker; PROBLEMS.md swaps them so that 0 is the empty token everywhere).
    """

    name = "selective_copy"
    storage = TOKENS
    filler, marker = 0, 15
    n_tokens = 16  # tokens to recall
    data_classes = 14  # tokens 1..14
    input_size = 16
    output_size = 16  # the whole vocabulary: the model is not told which ids can be targets
    target_kind = "per_step"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = n_tokens  # the context must have room for every token
    y_range = (0.0, 14.0)
    baseline_value = 1.0 / data_classes
    threshold = 0.99
    rule_metric = f"per-token test accuracy at the {n_tokens} query steps"
    # a context at least 4x the tokens (>= 64), so that most of it is filler to skip: at T = 16 the tokens fill it
    # and the problem is a plain delayed copy; full runs the lengths of 50..1000 that have such filler
    filler_factor = 4
    default_grid = DefaultGrid(seq_lens=(64,), hidden_size=64, steps=1000)
    full_lengths = (100, 200, 500, 1000)

    def input_steps(self, seq_len):
        return seq_len + self.n_tokens

    def target_mask(self, seq_len):
        mask = np.zeros(self.input_steps(seq_len), dtype=bool)
        mask[seq_len:] = True
        return mask

    supports_variable_length = True

    def variable_target_mask(self, seq_len, lengths):
        """The 16 query steps of each sequence: [L, L + 16) for its own context length L."""
        pos = np.arange(self.input_steps(seq_len))[None, :]
        return (pos >= lengths[:, None]) & (pos < self.input_steps(lengths)[:, None])

    def _build(self, n: int, seq_len: int, lengths: np.ndarray | None,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """x and y with each sequence's context of length L (lengths; None: every L is T); the steps after its
        16 queries are padding (all-zero input, target 0)."""
        tokens = rng.integers(1, self.data_classes + 1, size=(n, self.n_tokens))
        # the 16 smallest of T iid keys sit at a uniformly random 16-subset of positions; argpartition is O(T)
        keys = rng.random((n, seq_len))
        if lengths is not None:
            keys[np.arange(seq_len)[None, :] >= lengths[:, None]] = np.inf  # only inside each context
        positions = np.sort(np.argpartition(keys, self.n_tokens - 1, axis=1)[:, : self.n_tokens], axis=1)
        lengths = np.full(n, seq_len) if lengths is None else lengths
        pos = np.arange(self.input_steps(seq_len))[None, :]
        ids = np.where(pos < lengths[:, None], self.filler,
                       np.where(pos < self.input_steps(lengths)[:, None], self.marker, -1))
        np.put_along_axis(ids, positions, tokens, axis=1)
        y = np.zeros((n, self.input_steps(seq_len), 1), dtype=np.float32)
        queries = lengths[:, None] + np.arange(self.n_tokens)[None, :]
        np.put_along_axis(y[:, :, 0], queries, tokens.astype(np.float32), axis=1)
        return one_hot(ids, self.input_size), y

    def generate(self, n, seq_len, rng):
        return self._build(n, seq_len, None, rng)

    def generate_variable(self, n, seq_len, min_len, rng):
        """Context lengths L ~ U{min_len..seq_len} (min_len >= 16): the 16 tokens inside each context, the 16
        queries right after it, then padding."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        x, y = self._build(n, seq_len, lengths, rng)
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        seq_len = steps - self.n_tokens
        variable = lengths is not None
        lengths = np.asarray(lengths, dtype=np.int64) if variable else np.full(n, seq_len)
        ids, valid, empty = decode_one_hot(x)
        pos = np.arange(steps)[None, :]
        context = pos < lengths[:, None]
        real = pos < self.input_steps(lengths)[:, None]
        queries = real & ~context
        present = context & (ids != self.filler)
        # the context's tokens in order: each token goes to its rank among the row's tokens (the first 16 kept)
        rank = np.cumsum(present, axis=1) - 1
        rows, at = np.nonzero(present & (rank < self.n_tokens))
        found = np.zeros((n, self.n_tokens), dtype=np.int64)
        found[rows, rank[rows, at]] = ids[rows, at]
        yc = y[:, :, 0]
        asked = np.take_along_axis(yc, lengths[:, None] + np.arange(self.n_tokens)[None, :], axis=1)
        checks = {
            "inputs_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "context_has_16_tokens_in_1_to_14": ("x", (present.sum(axis=1) == self.n_tokens)
                                                 & np.all((ids <= self.data_classes) | ~context, axis=1)),
            "queries_are_markers": ("x", np.all((ids == self.marker) | ~queries, axis=1)),
            "target_is_tokens_in_order": ("y", np.all(asked == found, axis=1)),
            "target_zero_before_queries": ("y", np.all((yc == 0) | ~context, axis=1)),
        }
        if variable:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
            checks["target_zero_in_padding"] = ("y", np.all((yc == 0) | real, axis=1))
        return checks

    def memoryless_class(self):
        return 1  # the tokens 1..14 are equally likely; 0 and 15 are never targets
