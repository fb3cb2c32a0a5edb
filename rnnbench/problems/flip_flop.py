"""flip_flop: read back the last written bit through ignored noise (Liu et al. 2023, flip-flop language modelling)."""

from __future__ import annotations

import numpy as np

from rnnbench.problems.base import TOKENS, DefaultGrid, Problem, ProblemOption, decode_one_hot, one_hot

WRITE, IGNORE, READ, BIT0, BIT1 = range(5)  # the one-hot channels: instructions w, i, r, then bits 0, 1


class FlipFlop(Problem):
    """A sequence of T tokens (T even): T/2 instruction-bit pairs, one-hot over {w, i, r, 0, 1}. Instructions are
    drawn with probabilities (p_w, p_i, p_r) = ((1 - p_i)/2, p_i, (1 - p_i)/2); the first is always w and the
    last always r, so that every sequence has a read to score. After w and i comes a random bit; after r, the bit
    of the most recent w. Target, at each r step: that bit, the next token (2 logits; cross-entropy and accuracy
    at the r steps only, a mask that depends on the data: `mask_for(..., x=...)`).

    Option `p_i` (`--problem-option flip_flop.p_i=0.98`), default 0.8: FFL(0.8), p_w = p_r = 0.1. The source's
    held-out test sets at the same length are this problem at p_i = 0.98 (sparse) and p_i = 0.1 (dense)
    (`held_out`). Variable length (`--min-len`): even lengths L, each sequence's last instruction its r, then
    padding.

    Worked example, T = 10:

        x:   w 1 i 0 r 1 w 0 r 0
        y:   at step 4 (r): 1, the bit of the w at step 0 (the i at step 2 wrote nothing);
             at step 8 (r): 0, the bit of the w at step 6

    Baseline: a model without memory sees only r; the written bit is a fair coin: 0.5. Solved: no read error on
    the test split (accuracy 1.0).
    Source: Liu, Ash, Goel, Krishnamurthy & Zhang 2023, "Exposing Attention Glitches with Flip-Flop Language
    Modeling" (NeurIPS): sequences of 512 tokens, FFL(0.8) for training, p_i = 0.98 and 0.1 held out.
    """

    name = "flip_flop"
    storage = TOKENS
    problem_options = (
        ProblemOption("p_i", float, 0.8, "FFL(0.8), the source's training distribution (p_w = p_r = 0.1)",
                      low=0.0, high=1.0, high_open=True),
    )
    # the source's two held-out distributions at the training length: name -> this problem's options there
    held_out = {"sparse": {"p_i": 0.98}, "dense": {"p_i": 0.1}}
    input_size = 5
    output_size = 2
    target_kind = "per_step"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = 4  # w b r b: a write and a read
    y_range = (0.0, 1.0)
    baseline_value = 0.5
    threshold = 1.0
    rule_metric = "test accuracy at the reads"
    default_grid = DefaultGrid(seq_lens=(64,), hidden_size=32, steps=1000)
    full_lengths = (512,)  # the source's length

    def __init__(self, p_i: float = 0.8) -> None:
        if not 0.0 <= p_i < 1.0:
            raise ValueError(f"flip_flop.p_i={p_i!r}: expected a number in [0, 1) (p_w = p_r = (1 - p_i)/2 > 0)")
        self.p_i = p_i

    def check_seq_len(self, seq_len):
        super().check_seq_len(seq_len)
        if seq_len % 2:
            raise ValueError(f"{self.name}: seq_len={seq_len} is odd; T counts instruction and bit tokens, so it "
                             "must be even")

    def target_mask(self, seq_len):
        """The steps that can be read (every instruction step); `mask_for` keeps the reads among them."""
        mask = np.zeros(seq_len, dtype=bool)
        mask[0::2] = True
        return mask

    def mask_for(self, seq_len, lengths=None, x=None):
        """[n, T]: the r steps of each stored sequence (its inputs `x` say where they are)."""
        if x is None:
            raise ValueError("flip_flop scores its reads, which the data places: mask_for needs the split's x")
        return np.asarray(x)[:, :seq_len, READ] == 1

    supports_variable_length = True

    def _build(self, n: int, seq_len: int, lengths: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        pairs = seq_len // 2
        p_wr = (1.0 - self.p_i) / 2.0
        instructions = rng.choice(3, size=(n, pairs), p=[p_wr, self.p_i, p_wr])  # w, i, r
        instructions[:, 0] = WRITE
        np.put_along_axis(instructions, lengths[:, None] // 2 - 1, READ, axis=1)
        bits = rng.integers(0, 2, size=(n, pairs))
        # the index of the most recent w at or before each pair (the first pair is always a w)
        last_write = np.maximum.accumulate(np.where(instructions == WRITE, np.arange(pairs)[None, :], 0), axis=1)
        reads = instructions == READ
        bits = np.where(reads, np.take_along_axis(bits, last_write, axis=1), bits)
        real = np.arange(pairs)[None, :] < lengths[:, None] // 2
        ids = np.empty((n, seq_len), dtype=np.int64)
        ids[:, 0::2] = np.where(real, instructions, -1)
        ids[:, 1::2] = np.where(real, BIT0 + bits, -1)
        y = np.zeros((n, seq_len, 1), dtype=np.float32)
        y[:, 0::2, 0] = np.where(reads & real, bits, 0)
        return one_hot(ids, self.input_size), y

    def generate(self, n, seq_len, rng):
        return self._build(n, seq_len, np.full(n, seq_len), rng)

    def generate_variable(self, n, seq_len, min_len, rng):
        """Even lengths L ~ U{even numbers in [min_len, seq_len]}: each sequence's last instruction, at L - 2, is
        its r; padding after L."""
        self.check_min_len(min_len, seq_len)
        lengths = 2 * rng.integers((min_len + 1) // 2, seq_len // 2 + 1, size=n)
        x, y = self._build(n, seq_len, lengths, rng)
        return x, y, lengths.astype(np.int32)

    def semantic_checks(self, x, y, lengths=None):
        n, steps = x.shape[:2]
        variable = lengths is not None
        lengths = np.asarray(lengths, dtype=np.int64) if variable else np.full(n, steps)
        ids, valid, empty = decode_one_hot(x)
        real = np.arange(steps)[None, :] < lengths[:, None]
        instructions, bit_tokens = ids[:, 0::2], ids[:, 1::2]
        bits = bit_tokens - BIT0
        pairs = instructions.shape[1]
        real_pairs = real[:, 0::2]
        last_write = np.maximum.accumulate(np.where(instructions == WRITE, np.arange(pairs)[None, :], 0), axis=1)
        written = np.take_along_axis(bits, last_write, axis=1)
        reads = (instructions == READ) & real_pairs
        targets = y[:, 0::2, 0]
        last = np.take_along_axis(instructions, np.maximum(lengths[:, None] // 2 - 1, 0), axis=1)[:, 0]
        checks = {
            "tokens_one_hot": ("x", np.all(valid | ~real, axis=1)),
            "instruction_then_bit": ("x", np.all(((instructions <= READ) & (bit_tokens >= BIT0)) | ~real_pairs,
                                                 axis=1)),
            "first_instruction_is_w": ("x", instructions[:, 0] == WRITE),
            "last_instruction_is_r": ("x", (last == READ) & (lengths % 2 == 0)),
            "read_bit_is_last_written": ("x", np.all((bits == written) | ~reads, axis=1)),
            "target_is_read_bit": ("y", np.all(np.where(reads, targets == bits, targets == 0), axis=1)
                                   & np.all(y[:, 1::2, 0] == 0, axis=1)),
        }
        if variable:
            checks["padding_is_zero"] = ("x", np.all(empty | real, axis=1))
        return checks
