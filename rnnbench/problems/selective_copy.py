"""selective_copy: recall, in order, 16 tokens scattered at random steps among filler (Gu & Dao 2023)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import Problem, decode_one_hot, one_hot


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

    T is the context length, as `sequence_length` in the minRNNs repo (so T >= 16). Baseline (no memory: at a
    query step only the marker is visible): chance 1/14 per token. Solved: per-token accuracy at the query
    steps >= 0.99.
    Source: Gu & Dao 2023, "Mamba", sec. 3.1 (selective copying); BorealisAI/minRNNs `data/selective_copy.py`
    (which uses 15 as filler and 0 as marker; PROBLEMS.md swaps them so that 0 is the empty token everywhere).
    """

    name = "selective_copy"
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

    def input_steps(self, seq_len):
        return seq_len + self.n_tokens

    def target_mask(self, seq_len):
        mask = np.zeros(self.input_steps(seq_len), dtype=bool)
        mask[seq_len:] = True
        return mask

    def generate(self, n, seq_len, rng):
        tokens = rng.integers(1, self.data_classes + 1, size=(n, self.n_tokens))
        # the 16 smallest of T iid keys sit at a uniformly random 16-subset of positions; argpartition is O(T)
        keys = rng.random((n, seq_len))
        positions = np.sort(np.argpartition(keys, self.n_tokens - 1, axis=1)[:, : self.n_tokens], axis=1)
        ids = np.zeros((n, self.input_steps(seq_len)), dtype=np.int64)
        np.put_along_axis(ids, positions, tokens, axis=1)
        ids[:, seq_len:] = self.marker
        y = np.zeros((n, self.input_steps(seq_len), 1), dtype=np.float32)
        y[:, seq_len:, 0] = tokens
        return one_hot(ids, self.input_size), y

    def semantic_checks(self, x, y, lengths=None):
        n, seq_len = len(x), x.shape[1] - self.n_tokens
        ids, valid, _ = decode_one_hot(x)
        context = ids[:, :seq_len]
        present = context != self.filler
        # the context's tokens in order: each token goes to its rank among the row's tokens (the first 16 kept)
        rank = np.cumsum(present, axis=1) - 1
        rows, steps = np.nonzero(present & (rank < self.n_tokens))
        found = np.zeros((n, self.n_tokens), dtype=np.int64)
        found[rows, rank[rows, steps]] = context[rows, steps]
        yc = y[:, :, 0]
        return {
            "inputs_one_hot": ("x", valid.all(axis=1)),
            "context_has_16_tokens_in_1_to_14": ("x", (present.sum(axis=1) == self.n_tokens)
                                                 & np.all(context <= self.data_classes, axis=1)),
            "queries_are_markers": ("x", np.all(ids[:, seq_len:] == self.marker, axis=1)),
            "target_is_tokens_in_order": ("y", np.all(yc[:, seq_len:] == found, axis=1)),
            "target_zero_before_queries": ("y", np.all(yc[:, :seq_len] == 0, axis=1)),
        }

    def baseline(self, seq_len):
        return 1.0 / self.data_classes

    def memoryless_class(self):
        return 1  # the tokens 1..14 are equally likely; 0 and 15 are never targets

    def solved(self, metric, seq_len):
        return bool(metric >= 0.99)

    def solved_rule(self):
        return "per-token test accuracy at the 16 query steps >= 0.99"
