"""The Problem interface: sizes, seeded generator, loss, analytic baseline and solved rule of a memory problem."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:
    from rnnbench.archs.spec import ArchOption, Value
    from rnnbench.encoding import Codec


@dataclass(frozen=True)
class ProblemOption:
    """One setting of a problem (`--problem-option PROBLEM.KEY=VALUE`): its constructor keyword, type, default
    (with its source) and range or choices. The fields and rules of an architecture's option, whose coercion and
    messages it uses (rnnbench.archs.spec.ArchOption); imported when first used, not with this module, because
    loading the architecture registry loads plugins, which may import this package while it is still loading."""

    name: str
    type: type
    default: Value | None
    source: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def as_arch_option(self) -> ArchOption:
        from rnnbench.archs.spec import ArchOption

        return ArchOption(self.name, self.type, self.default, self.source, self.low, self.high, self.low_open,
                          self.high_open, self.choices)

    def column(self, problem: str) -> str:
        """Its metrics column: opt_<problem>_<name>."""
        return f"opt_{problem}_{self.name}"

    def allowed(self) -> str:
        return self.as_arch_option().allowed()

    def coerce(self, problem: str, raw: object) -> Value:
        """`raw` (a typed value, or the text of a flag) as this option's type; ValueError naming the value."""
        return self.as_arch_option().coerce(problem, raw)


TargetKind = Literal["last", "per_step"]
# ce: softmax cross-entropy over `output_size` classes; y stores each step's class index (one float32 column)
LossKind = Literal["mse", "bce", "ce"]
# how the solved rule's sentence names each primary metric
METRIC_WORDS = {"accuracy": "test accuracy", "mse": "test MSE", "cross_entropy": "test cross-entropy"}


@dataclass(frozen=True)
class DefaultGrid:
    """A problem's own grid: what `--problems NAME` runs where the preset has none for it, and what `full` widens to
    every length of 50..1000 the problem is defined at. n_val, n_test: its validation and test rows (None: the
    sweep's; a problem with a fixed pool of examples holds fewer)."""

    seq_lens: tuple[int, ...]
    hidden_size: int
    steps: int
    n_val: int | None = None
    n_test: int | None = None
    # a problem pre-registered with variable-length training and scoring at longer lengths (parity): the shortest
    # training length (0: fixed length) and the lengths it is scored at ('4x': 4 times the training T)
    min_len: int = 0
    eval_lens: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageLayout:
    """How a dataset file stores a problem's x and y (rnnbench.encoding): "float32" (as generated; the default, so
    a problem that declares nothing, a plugin's, keeps float32 storage), "one_hot" (each step's hot index, -1 for
    an all-zero step) or "int" (integer values within `x_range` / `y_range`: class indices, bits). Decoding gives
    back the generated float32 arrays exactly (tests/test_datasets.py checks every registered problem)."""

    x: str = "float32"
    y: str = "float32"


# the layout of a token problem: one-hot inputs, class-index targets
TOKENS = StorageLayout(x="one_hot", y="int")


def one_hot(ids: np.ndarray, k: int) -> np.ndarray:
    """Integer ids (any shape) -> float32 one-hot with a trailing axis of k; an id of -1 (padding) stays all zero."""
    out = np.zeros((*ids.shape, k), dtype=np.float32)
    flat, cells = out.reshape(-1, k), ids.reshape(-1)
    # a scatter into calloc'ed zeros: one write per step, not k comparisons per step
    real = np.flatnonzero(cells >= 0)
    flat[real, cells[real]] = 1.0
    return out


def decode_one_hot(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, one_hot, empty) per step of x (n, steps, k): the hot index, whether the step is a valid one-hot
    vector (only 0s and 1s, exactly one 1) and whether it is all zeros (padding)."""
    binary = np.all((x == 0) | (x == 1), axis=-1)
    ones = x.sum(axis=-1, dtype=np.float32)
    return x.argmax(axis=-1), binary & (ones == 1), binary & (ones == 0)


def per_sequence_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each sequence's kept steps, shape (n,): values [n, steps, ...] (trailing axes averaged too) and a
    mask [steps] (every sequence alike) or [n, steps] (variable-length sequences, each with its own steps)."""
    n = len(values)
    if mask.ndim == 1:
        return values[:, mask].reshape(n, -1).mean(axis=1, dtype=np.float64)
    per_step = values.reshape(n, mask.shape[1], -1).mean(axis=2, dtype=np.float64)
    return np.where(mask, per_step, 0.0).sum(axis=1) / mask.sum(axis=1)


def sequence_cross_entropy(pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean softmax cross-entropy (nats) of each sequence over the masked steps ([steps] or [n, steps]); pred
    holds logits [n, steps, K], y class indices [n, steps, 1]."""
    if mask.ndim == 1:  # only the kept steps, in float64
        pred, y, mask = pred[:, mask], y[:, mask], np.ones(int(mask.sum()), dtype=bool)
    logits = pred.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(logits, y.astype(np.int64), axis=-1)[..., 0]
    return per_sequence_mean(log_norm - picked, mask)


class Problem:
    """A synthetic memory problem, defined exactly as in docs/PROBLEMS.md.

    Subclasses set the class attributes (`default_grid`, and `baseline_value` and `threshold` where the baseline and
    the solved rule's threshold do not depend on T) and implement `generate` and `semantic_checks`.
    Arrays are float32: x has shape (n, input_steps, input_size), y has shape (n, target_steps, target_width)
    where input_steps is T unless a problem adds fixed steps around its T (copy_sequence: T + 20),
    target_steps is 1 for "last" problems and input_steps for "per_step" ones, and target_width is
    output_size, or 1 for "ce" problems (the class index; the model still outputs output_size logits).
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
    default_grid: ClassVar[DefaultGrid]
    # the analytic baseline where it does not depend on T (else override `baseline`)
    baseline_value: ClassVar[float | None] = None
    # the pre-registered solved rule: the primary metric at least this where higher is better, else at most this;
    # None where the rule reads another metric (then override `solved_from` and `solved_rule`)
    threshold: ClassVar[float | None] = None
    # the metric as the rule's sentence names it; None: METRIC_WORDS of the primary metric
    rule_metric: ClassVar[str | None] = None
    # the lengths `full` runs, where the problem's sources use others than full's 50..1000 (None: those)
    full_lengths: ClassVar[tuple[int, ...] | None] = None
    # which scored length a run's outcome and its cell's verdict read: "trained" (the training T, on the run's own
    # test set) or "longest" (the longest length it was scored at: parity, pre-registered as length generalisation)
    verdict_at: ClassVar[Literal["trained", "longest"]] = "trained"
    # how its dataset files store x and y (StorageLayout: float32 unless declared)
    storage: ClassVar[StorageLayout] = StorageLayout()
    # the problem's own settings (`--problem-option PROBLEM.KEY=VALUE`), each a keyword of its constructor with the
    # source's default; the registry holds the instance with every default
    problem_options: ClassVar[tuple[ProblemOption, ...]] = ()
    # test sets the source holds out at the training length under other settings (flip_flop's sparse and dense):
    # name -> this problem's options there
    held_out: ClassVar[dict[str, dict[str, Value]]] = {}

    # ---- options -----------------------------------------------------------------------------
    def option_values(self) -> dict[str, Value]:
        """This instance's own settings by name, every one resolved (what a run records, and its data's key)."""
        return {option.name: getattr(self, option.name) for option in self.problem_options}

    def configured(self, given: Mapping[str, object] | None) -> Problem:
        """This problem with the `given` settings (name -> typed value or flag text), the others at their declared
        defaults (one instance per setting and process); ValueError naming an unknown name or a bad value and what
        is allowed, or a combination the problem refuses."""
        given = given or {}
        known = {option.name: option for option in self.problem_options}
        if not known and not given:
            return self
        for name in given:
            if name not in known:
                allowed = f"its options: {', '.join(known)}" if known else "it takes no options"
                raise ValueError(f"problem option {self.name}.{name}: problem {self.name!r} has no option "
                                 f"{name!r}; {allowed}")
        # from the declared defaults, not this instance's resolved values: a default derived from another option
        # (mqar's one query per pair) follows that option when only it is given
        values = {name: option.default for name, option in known.items()}
        values.update({name: known[name].coerce(self.name, raw) for name, raw in given.items()})
        return _configured(type(self), tuple(sorted(values.items())))

    # ---- sizes -------------------------------------------------------------------------------
    def input_steps(self, seq_len: int) -> int:
        """Steps of x for problem length `seq_len` (the T of PROBLEMS.md); also takes an array of lengths (a
        variable-length split stores each sequence's T; the model is fed `input_steps(T)` real steps)."""
        return seq_len

    def target_steps(self, seq_len: int) -> int:
        return self.input_steps(seq_len) if self.target_kind == "per_step" else 1

    @property
    def target_width(self) -> int:
        """Columns of y per target step: output_size, or 1 for "ce" (the class index)."""
        return 1 if self.loss == "ce" else self.output_size

    def codecs(self) -> dict[str, Codec]:
        """The x and y columns' encodings as its files store them (the declared `storage`)."""
        from rnnbench.encoding import Codec

        return {"x": Codec(self.storage.x, self.input_size, *self.x_range),
                "y": Codec(self.storage.y, self.target_width, *self.y_range)}

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

    def mask_for(self, seq_len: int, lengths: np.ndarray | None = None, x: np.ndarray | None = None) -> np.ndarray:
        """The target mask of a stored split: `target_mask(seq_len)` ([target_steps], alike for every sequence),
        or for variable-length sequences of a "per_step" problem, one row per sequence ([n, target_steps]) from
        `variable_target_mask`. A "last" problem's one target step is read at each sequence's true end. `x`: the
        split's inputs, read only by a problem whose scored steps depend on the data (flip_flop's reads)."""
        if lengths is None or self.target_kind == "last":
            return self.target_mask(seq_len)
        return self.variable_target_mask(seq_len, np.asarray(lengths, dtype=np.int64))

    def variable_target_mask(self, seq_len: int, lengths: np.ndarray) -> np.ndarray:
        """[n, target_steps]: which steps count for sequences of lengths L (the problem's T of each); by
        default every real step, those before `input_steps(L)`."""
        return np.arange(self.input_steps(seq_len))[None, :] < self.input_steps(lengths)[:, None]

    def baseline_for(self, seq_len: int, min_len: int = 0) -> float:
        """The analytic baseline of a split: `baseline(seq_len)`, or for lengths L ~ U{min_len..seq_len} the
        mean of `baseline(L)` (the run's metric is a mean over sequences, each scored at its own length)."""
        if not min_len:
            return self.baseline(seq_len)
        return float(np.mean([self.baseline(length) for length in range(min_len, seq_len + 1)]))

    # ---- data --------------------------------------------------------------------------------
    def generate(self, n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def generate_split(self, n: int, seq_len: int, split: str,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`generate` for one split of a dataset. Synthetic problems draw every split from the same
        distribution (the split only changes the seed stream); a problem built on a fixed pool of examples
        (sequential_digits) maps each split to its own disjoint part of the pool."""
        return self.generate(n, seq_len, rng)

    def check_rows(self, n_rows: int, split: str) -> None:
        """Raise ValueError when a split cannot hold `n_rows` rows (only problems with a fixed pool limit it)."""

    # whether the answer is defined at any length, so a model trained at T can be scored at other lengths
    length_generalises: ClassVar[bool] = True

    def check_eval_lens(self, eval_lens: list[int], seq_len: int) -> None:
        """Raise ValueError when this problem cannot be scored at other lengths, or at one of these (the registry's
        `check_eval_lens` also names the problems that can)."""
        if not self.length_generalises:
            raise ValueError(f"--eval-lens: problem {self.name!r} is defined at one length only")
        for length in eval_lens:
            self.check_seq_len(length)

    def check_min_len(self, min_len: int, seq_len: int) -> None:
        """Raise ValueError naming the bad value when lengths cannot be drawn from [min_len, seq_len] (the
        registry's `check_min_len` also names the problems with a variable-length form)."""
        if not self.supports_variable_length:
            raise ValueError(f"min_len={min_len}: problem {self.name!r} has no variable-length form")
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
        """The metric a model with no memory scores (analytic): `baseline_value` unless a problem's depends on T."""
        if self.baseline_value is None:
            raise NotImplementedError(f"{self.name}: declare baseline_value, or override baseline(seq_len)")
        return self.baseline_value

    def sequence_metric(self, pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The primary metric of each test sequence, shape (n,), over its kept steps (`mask`: [steps] or
        [n, steps]); the run's metric is their mean, and their spread gives the run's own uncertainty
        (`metrics()["se"]`)."""
        if self.loss == "ce":
            # accuracy: the arg-max logit is the stored class
            return per_sequence_mean(pred.argmax(axis=-1) == y[..., 0], mask)
        if self.loss == "bce":
            return per_sequence_mean((pred > 0) == (y > 0.5), mask)
        return per_sequence_mean((pred - y).astype(np.float64) ** 2, mask)

    def metrics(self, pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        """Primary metric (key `metric_name`), its standard error over test sequences (key `se`), plus extras,
        from raw model outputs `pred` ([n, target_steps, output_size]: the shape of y, or logits for "ce")."""
        per = self.sequence_metric(pred, y, mask)
        se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float("nan")
        return {self.metric_name: float(per.mean()), "se": se}

    def memoryless_constant(self) -> float:
        """The constant an "mse" memoryless predictor outputs: the centre of y_range, which is the target's mean
        for targets symmetric on their range (adding: 1.0; copy_memory: 0.5). Override for other targets."""
        lo, hi = self.y_range
        return (lo + hi) / 2.0

    def memoryless_class(self) -> int:
        """For "ce": the class a predictor with no memory always outputs, the most likely target class under the
        problem's class prior (ties to the lowest target class; where every class is equally likely, any class
        scores chance in expectation)."""
        return 0

    def memoryless_sequence_metric(self, y: np.ndarray, mask: np.ndarray,
                                   lengths: np.ndarray | None = None) -> np.ndarray:
        """The primary metric of each stored sequence, shape (n,), for the predictor with no memory:
        - "mse": the constant `memoryless_constant()`;
        - "bce": a fair coin, whose expected accuracy is exactly 0.5 on every sequence (sequential_xor's
          target is independent of the current input, so no memoryless predictor does better);
        - "ce": always `memoryless_class()`, the class prior's most likely class. That class is fixed by the
          problem, not picked on this split: the split's own majority class would score above chance by one to
          two standard errors even for balanced classes (the largest of K frequencies, picked to fit this very
          data), so it could not check the data against the analytic chance level.
        Its mean is `empirical_baseline`; its spread, that estimate's standard error."""
        if self.loss == "bce":
            return np.full(len(y), 0.5)
        if self.loss == "ce":
            return per_sequence_mean(y[..., 0] == self.memoryless_class(), mask)
        return self.sequence_metric(np.full_like(y, self.memoryless_constant()), y, mask)

    def memoryless_se(self, y: np.ndarray, mask: np.ndarray, lengths: np.ndarray | None = None) -> float:
        """Standard error of the memoryless predictor's metric on this split: how far a model with no memory
        lands from the analytic baseline by the draw of these test sequences alone. For "bce" the fair coin's
        per-step variance 1/4 over every kept step (its per-sequence values above are expectations)."""
        n = len(y)
        if self.loss == "bce":
            kept = int(mask.sum()) * (n if mask.ndim == 1 else 1)
            return float(np.sqrt(0.25 / (kept * self.target_width)))
        per = self.memoryless_sequence_metric(y, mask, lengths)
        return float(per.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0

    def empirical_baseline(self, y: np.ndarray, mask: np.ndarray, lengths: np.ndarray | None = None) -> float:
        """The memoryless predictor's metric measured on a stored split (y, target mask, true lengths), to show
        next to the analytic `baseline`: a gap of more than a few standard errors means the data is not what
        the analytic number assumes."""
        return float(self.memoryless_sequence_metric(y, mask, lengths).mean())

    def score(self, metric: float, seq_len: int, min_len: int = 0) -> float:
        """Normalised score: 0 = baseline, 1 = perfect (PROBLEMS.md); `min_len`: lengths drawn from
        [min_len, seq_len] (`baseline_for`)."""
        base = self.baseline_for(seq_len, min_len)
        if self.higher_is_better:
            return (metric - base) / (1.0 - base)
        return 1.0 - metric / base

    def solved_threshold(self, seq_len: int) -> float | None:
        """Where the solved rule flips on the primary metric (the report draws it): the declared `threshold`."""
        return self.threshold

    def solved(self, metric: float, seq_len: int) -> bool:
        """The primary metric meets the declared threshold (reached counts)."""
        threshold = self.solved_threshold(seq_len)
        if threshold is None:
            raise ValueError(f"{self.name}'s solved rule reads another metric than {self.metric_name}: "
                             "call solved_from(metrics(...), seq_len)")
        return bool(metric >= threshold if self.higher_is_better else metric <= threshold)

    def solved_from(self, scores: dict[str, float], seq_len: int) -> bool:
        """The solved rule applied to everything `metrics()` returned (a rule may read a metric other than the
        primary one, e.g. copy_sequence's recall accuracy beside its cross-entropy)."""
        return self.solved(scores[self.metric_name], seq_len)

    def solved_by_margin(self, scores: dict[str, float], seq_len: int, factor: float) -> bool:
        """The solved rule met by the metric it reads moved `factor` of its standard errors (`se`) against
        the rule: e.g. adding's MSE + factor·se <= 0.01. No standard error (one sequence): False. Early
        stopping reads it (rnnbench.train)."""
        se = scores.get("se", math.nan)
        if not math.isfinite(se):
            return False
        shift = -factor * se if self.higher_is_better else factor * se
        return self.solved_from({**scores, self.metric_name: scores[self.metric_name] + shift}, seq_len)

    def solved_rule(self) -> str:
        """The pre-registered rule, as a sentence for the report, e.g. 'test accuracy >= 0.99'."""
        if self.threshold is None:
            raise NotImplementedError(f"{self.name}: declare threshold, or override solved_rule()")
        words = self.rule_metric or METRIC_WORDS[self.metric_name]
        return f"{words} {'>=' if self.higher_is_better else '<='} {self.threshold:g}"


@cache
def _configured(cls: type[Problem], values: tuple[tuple[str, Value], ...]) -> Problem:
    # one instance per setting and process: group tables and the like are built once
    return cls(**dict(values))
