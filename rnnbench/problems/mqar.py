"""mqar: multi-query associative recall, the values of keys seen earlier in a sequence (Arora et al. 2023, Zoology)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import TOKENS, DefaultGrid, Problem, ProblemOption, decode_one_hot, one_hot


class MQAR(Problem):
    """Vocabulary of V symbols, one-hot input (T, V): 0 = blank, keys 1..V/2-1, values V/2..V-1 (Zoology's split
    of its vocabulary). Steps 0..2N-1 hold N key-value pairs, key, value, key, value, ..., keys distinct and values
    distinct within a sequence; blanks follow; the last 2Q steps hold the Q queries: Q of the N keys in random
    order, each followed by a blank answer step whose target is that key's value. Only the answer steps carry a
    target (V logits; cross-entropy and accuracy there). T >= 2N + 2Q.

    Options (`--problem-option mqar.KEY=VALUE`): vocab V (even, default 64), pairs N (default 8), queries Q
    (default: one per pair). Variable length (`--min-len`): each sequence has its own L, its queries in its last
    2Q steps, then padding.

    Worked example with V = 8 (keys 1..3, values 4..7), N = 2, Q = 2, T = 10:

        step:  0 1 2 3 4 5 6 7 8 9
        x:     3 6 1 4 _ _ 1 _ 3 _        (_ blank)
        y:     (only the answer steps 7 and 9 are scored)  step 7: 4 (key 1's value), step 9: 6 (key 3's)

    Baseline: at an answer step a model without memory sees a blank; the value is uniform over the V/2 values:
    2/V (1/32 at V = 64). Solved: accuracy at the answer steps >= 0.99.
    Zoology draws V = 8,192 tokens through an embedding; here the input is one-hot, so the defaults are smaller,
    and its queries sit at random gaps (a power law) where here they follow one delay at fixed steps.
    Source: Arora et al. 2023, "Zoology: Measuring and Improving Recall in Efficient Language Models",
    HazyResearch/zoology `zoology/data/multiquery_ar.py`.
    """

    name = "mqar"
    storage = TOKENS
    problem_options = (
        ProblemOption("vocab", int, 64, "one-hot input, so far below Zoology's 8,192; even: half keys, half values",
                      low=4, high=1024),
        ProblemOption("pairs", int, 8, "Zoology's default num_kv_pairs (Figure 2 varies it from 4 to 64)", low=1),
        ProblemOption("queries", int, None, "None: one query per pair, as Zoology", low=1),
    )
    target_kind = "per_step"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    threshold = 0.99
    rule_metric = "test accuracy at the answer steps"
    default_grid = DefaultGrid(seq_lens=(64,), hidden_size=64, steps=2000)
    # Zoology's Figure 2 lengths
    full_lengths = (64, 128, 256, 512)

    def __init__(self, vocab: int = 64, pairs: int = 8, queries: int | None = None) -> None:
        queries = pairs if queries is None else queries
        if vocab % 2:
            raise ValueError(f"mqar.vocab={vocab}: must be even (half keys with the blank, half values)")
        if pairs > vocab // 2 - 1:
            raise ValueError(f"mqar.pairs={pairs}: keys must be distinct, and vocab={vocab} has {vocab // 2 - 1} "
                             f"keys; at most {vocab // 2 - 1} pairs (or a larger mqar.vocab)")
        if queries > pairs:
            raise ValueError(f"mqar.queries={queries}: each query asks a distinct key of the {pairs} pairs; at most "
                             f"{pairs}")
        self.vocab, self.pairs, self.queries = vocab, pairs, queries
        self.input_size = self.output_size = vocab
        self.first_value = vocab // 2
        self.y_range = (0.0, float(vocab - 1))
        self.baseline_value = 1.0 / (vocab - self.first_value)
        self.min_seq_len = 2 * pairs + 2 * queries

    def check_seq_len(self, seq_len):
        try:
            super().check_seq_len(seq_len)
        except ValueError as exc:
            raise ValueError(f"{exc} (2 x pairs + 2 x queries, with mqar.pairs={self.pairs} and "
                             f"mqar.queries={self.queries})") from None

    def answer_steps(self, seq_len):
        """The answer steps of a sequence of length seq_len (an int: (Q,); an array of lengths: (n, Q))."""
        last = np.asarray(seq_len)[..., None] if np.ndim(seq_len) else seq_len
        return last - 2 * self.queries + 1 + 2 * np.arange(self.queries)

    def target_mask(self, seq_len):
        mask = np.zeros(seq_len, dtype=bool)
        mask[self.answer_steps(seq_len)] = True
        return mask

    supports_variable_length = True

    def variable_target_mask(self, seq_len, lengths):
        """The Q answer steps at the end of each sequence's own length L."""
        mask = np.zeros((len(lengths), seq_len), dtype=bool)
        np.put_along_axis(mask, self.answer_steps(lengths), True, axis=1)
        return mask

    def memoryless_class(self):
        return self.first_value  # the values are equally likely; blanks and keys are never targets

    def _build(self, n: int, seq_len: int, lengths: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        keys_available, values_available = self.first_value - 1, self.vocab - self.first_value
        # distinct draws per row: the ranks of iid uniforms are a uniformly random permutation
        keys = 1 + np.argsort(rng.random((n, keys_available)), axis=1)[:, : self.pairs]
        values = self.first_value + np.argsort(rng.random((n, values_available)), axis=1)[:, : self.pairs]
        asked = np.argsort(rng.random((n, self.pairs)), axis=1)[:, : self.queries]  # which pairs, in which order
        ids = np.where(np.arange(seq_len)[None, :] < lengths[:, None], 0, -1)  # blanks, then padding
        ids[:, 0 : 2 * self.pairs : 2], ids[:, 1 : 2 * self.pairs : 2] = keys, values
        answers = self.answer_steps(lengths)
        np.put_along_axis(ids, answers - 1, np.take_along_axis(keys, asked, axis=1), axis=1)
        y = np.zeros((n, seq_len), dtype=np.float32)
        np.put_along_axis(y, answers, np.take_along_axis(values, asked, axis=1).astype(np.float32), axis=1)
        return one_hot(ids, self.input_size), y[:, :, None]

    def generate(self, n, seq_len, rng):
        return self._build(n, seq_len, np.full(n, seq_len), rng)

    def generate_variable(self, n, seq_len, min_len, rng):
        """Lengths L ~ U{min_len..seq_len} (min_len >= 2N + 2Q): the pairs first, the queries in the last 2Q steps
        of each L, then padding."""
        self.check_min_len(min_len, seq_len)
        lengths = rng.integers(min_len, seq_len + 1, size=n)
        x, y = self._build(n, seq_len, lengths, rng)
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        variable = lengths is not None
        lengths = np.asarray(lengths, dtype=np.int64) if variable else np.full(n, steps)
        ids, valid, empty = decode_one_hot(x)
        real = np.arange(steps)[None, :] < lengths[:, None]
        keys, values = ids[:, 0 : 2 * self.pairs : 2], ids[:, 1 : 2 * self.pairs : 2]
        answers = self.answer_steps(lengths)
        asked = np.take_along_axis(ids, answers - 1, axis=1)
        # match[r, j, q]: pair j's key is query q's; exactly one match per query means it asks a key of the pairs
        match = keys[:, :, None] == asked[:, None, :]
        expected = np.where(match, values[:, :, None], 0).sum(axis=1)
        blank = real.copy()  # every real step past the pairs is blank but the query keys
        blank[:, : 2 * self.pairs] = False
        np.put_along_axis(blank, answers - 1, False, axis=1)
        scored = self.variable_target_mask(steps, lengths)
        yc = y[:, :, 0]
        key_range = (keys >= 1) & (keys < self.first_value)
        ordered, asked_ordered = np.sort(keys, axis=1), np.sort(asked, axis=1)
        checks = {
            "inputs_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "keys_distinct": ("x", key_range.all(axis=1) & np.all(ordered[:, 1:] != ordered[:, :-1], axis=1)),
            "values_in_value_range": ("x", np.all(values >= self.first_value, axis=1)),
            "blanks_between_and_at_answers": ("x", np.all((ids == 0) | ~blank, axis=1)),
            "queries_ask_distinct_pair_keys": ("x", np.all(match.sum(axis=1) == 1, axis=1)
                                               & np.all(asked_ordered[:, 1:] != asked_ordered[:, :-1], axis=1)),
            "answer_is_keys_value": ("y", np.all(np.take_along_axis(yc, answers, axis=1) == expected, axis=1)),
            "target_zero_off_answers": ("y", np.all((yc == 0) | scored, axis=1)),
        }
        if variable:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
        return checks
