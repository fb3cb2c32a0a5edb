"""The Problem interface: sizes, seeded generator, loss, analytic baseline and solved rule of a memory problem."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

TargetKind = Literal["last", "per_step"]
LossKind = Literal["mse", "bce"]


class Problem:
    """A synthetic memory problem, defined exactly as in docs/PROBLEMS.md.

    Subclasses set the class attributes and implement `generate`, `baseline` and `semantic_checks`.
    Arrays are float32: x has shape (n, T, input_size), y has shape (n, target_steps, output_size)
    where target_steps is 1 for "last" problems and T for "per_step" ones.
    """

    name: ClassVar[str]
    input_size: ClassVar[int]
    output_size: ClassVar[int]
    target_kind: ClassVar[TargetKind]
    loss: ClassVar[LossKind]
    metric_name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    min_seq_len: ClassVar[int] = 2
    # bump when the generator's output for a given seed changes; stored in every file's metadata
    generator_version: ClassVar[int] = 1
    x_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    y_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    # ---- sizes -------------------------------------------------------------------------------
    def target_steps(self, seq_len: int) -> int:
        return seq_len if self.target_kind == "per_step" else 1

    def check_seq_len(self, seq_len: int) -> None:
        """Raise ValueError naming the bad value and what is allowed."""
        if isinstance(seq_len, bool) or not isinstance(seq_len, int | np.integer):
            raise ValueError(f"{self.name}: seq_len must be an integer, got {seq_len!r}")
        if seq_len < self.min_seq_len:
            raise ValueError(
                f"{self.name}: seq_len={seq_len} is too short; this problem needs seq_len >= {self.min_seq_len}"
            )

    def target_mask(self, seq_len: int) -> np.ndarray:
        """Which target steps count in loss and metric (bool, shape (target_steps,))."""
        return np.ones(self.target_steps(seq_len), dtype=bool)

    # ---- data --------------------------------------------------------------------------------
    def generate(self, n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def check_min_len(self, min_len: int, seq_len: int) -> None:
        """Raise ValueError naming the bad value when lengths cannot be drawn from [min_len, seq_len]."""
        if not self.supports_variable_length:
            raise ValueError(f"min_len={min_len}: problem {self.name!r} has no variable-length form; "
                             "problems with one: adding")
        if not self.min_seq_len <= min_len <= seq_len:
            raise ValueError(f"min_len={min_len} must lie in [{self.min_seq_len}, seq_len={seq_len}]")

    def generate_variable(self, n: int, seq_len: int, min_len: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sequences whose lengths are drawn uniformly from [min_len, seq_len], zero-padded to seq_len.
        Returns (x, y, lengths)."""
        self.check_min_len(min_len, seq_len)
        raise NotImplementedError

    supports_variable_length: ClassVar[bool] = False

    def semantic_checks(self, x: np.ndarray, y: np.ndarray,
                        lengths: np.ndarray | None = None) -> dict[str, tuple[str, np.ndarray]]:
        """Meaning of the data: check name -> (column it is about, per-row bool array, True = ok)."""
        raise NotImplementedError

    # ---- evaluation --------------------------------------------------------------------------
    def baseline(self, seq_len: int) -> float:
        """The metric a model with no memory scores (analytic)."""
        raise NotImplementedError

    def metrics(self, pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        """Primary metric (key `metric_name`) plus extras, from raw model outputs `pred` (same shape as y)."""
        m = mask[None, :, None]
        if self.loss == "bce":
            correct = ((pred > 0) == (y > 0.5)) & m
            acc = correct.sum() / (m.sum() * y.shape[0] * y.shape[2])
            return {self.metric_name: float(acc)}
        err = (pred - y)[:, mask, :]
        return {self.metric_name: float(np.mean(err.astype(np.float64) ** 2))}

    def score(self, metric: float, seq_len: int) -> float:
        """Normalised score: 0 = baseline, 1 = perfect (PROBLEMS.md)."""
        base = self.baseline(seq_len)
        if self.higher_is_better:
            return (metric - base) / (1.0 - base)
        return 1.0 - metric / base

    def solved(self, metric: float, seq_len: int) -> bool:
        raise NotImplementedError

    def solved_rule(self) -> str:
        """The pre-registered rule, as a sentence for the report."""
        raise NotImplementedError
