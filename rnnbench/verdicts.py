"""Each run's outcome, cell verdicts from outcome counts, seed-level arch comparisons, and the sentences they allow."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

import numpy as np
import polars as pl

OUTCOMES = ("solved", "beats_baseline", "at_baseline", "worse", "diverged", "failed")
VERDICTS = ("solved", "split", "beats baseline", "at baseline", "worse than baseline", "diverged", "no result")
# the level of every test the report states (docs/PROBLEMS.md, statistical rules)
ALPHA = 0.05
# one-sided 5% normal quantile: the run-against-memoryless test is one-sided (beats, or trails, the predictor
# with no memory), on the mean of ~1,000 per-sequence differences, where the normal approximation holds
Z_ONE_SIDED = 1.644854
# an interval for the median is made at least this likely to cover it where the number of seeds allows
INTERVAL_LEVEL = 0.95
# pre-registered (PROBLEMS.md): a cell is solved when at least this share of its seeds solved it
SOLVED_SHARE = 2 / 3
# what makes a cell: a verdict is over seeds only, every other setting that can be swept stays apart
SETTINGS = ("lr", "hidden_size", "min_len", "num_layers", "bidirectional", "dropout", "bias", "proj_size",
            "forget_bias", "recurrent_init", "steps", "batch_size", "clip_norm")
CELL = ("problem", "seq_len", "arch", *SETTINGS)
# each arch's own options (--arch-option) are recorded in opt_<arch>_<key> columns, null on other archs' rows;
# runs that differ in one are different cells too
OPTION_PREFIX = "opt_"
# a (problem, T, arch) may have several cells (swept settings): one is chosen on validation, and archs are
# compared at their chosen cells
CHOICE = ("problem", "seq_len", "arch")
PAIRING = ("problem", "seq_len")
# what `summarize` computes for each cell, after the cell's own columns (typed as in the metrics): declared, so that
# a column that is all null, or a summary without rows, keeps its type; schemas/summary.py checks the values
SUMMARY_COLUMNS = {
    "metric_name": pl.String, "higher_is_better": pl.Boolean, "n_seeds": pl.Int64, "n_ok": pl.Int64,
    "n_diverged": pl.Int64, "n_failed": pl.Int64, "n_solved": pl.Int64, "n_beats_baseline": pl.Int64,
    "n_at_baseline": pl.Int64, "n_worse": pl.Int64, "median": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
    "ci_level": pl.Float64,
    "baseline": pl.Float64, "score": pl.Float64, "verdict": pl.String, "verdict_text": pl.String,
    "median_steps_to_solve": pl.Float64, "median_steps_done": pl.Float64, "params": pl.Int64,
    "state_size": pl.Int64, "median_train_seconds": pl.Float64, "solved_rule": pl.String, "val_median": pl.Float64,
    "chosen": pl.Boolean, "max_epochs": pl.Float64,
}
ORDERS = ("above", "below", "not distinguishable")
# what `compare_archs` computes for each pair, after the pair's own columns; schemas/comparisons.py checks them
COMPARISON_COLUMNS = {
    "arch_a": pl.String, "arch_b": pl.String, "n_shared": pl.Int64, "a_better": pl.Int64, "b_better": pl.Int64,
    "a_over_b": pl.Float64, "p_value": pl.Float64, "p_holm": pl.Float64, "order": pl.String,
}

RULES = (
    "Each run first gets its own outcome: *solved* when its test metric meets the problem's pre-registered rule; "
    "else *beats baseline* / *worse* when, on the same test sequences, it is better / worse than the predictor "
    "with no memory: a one-sided test at 5% on the mean of the per-sequence differences (run minus memoryless "
    f"predictor), i.e. beyond {Z_ONE_SIDED:.3f} standard errors of that difference; else *at baseline*; "
    "*diverged* when training produced a non-finite loss; *failed* when the job itself failed (infrastructure). "
    "A cell (problem, length, arch and every swept setting, the arch's own options included) is **solved** when "
    "at least 2/3 of its seeds solved it, **split** when some but fewer did; otherwise it beats the baseline, is "
    "worse, or diverged when at least 2/3 of its seeds did so, else it is at baseline. Diverged runs count in a "
    "cell's n as not solved; failed runs are left out of n and listed apart; counts are facts and are printed "
    "with every verdict. Medians are over the runs with a test metric, with the order-statistic interval for the "
    "median over seeds: from the k-th smallest to the k-th largest value, k as large as keeps its probability of "
    "covering the median at least 0.95 (exact, from the binomial), else the whole range; every interval states "
    "its own probability (the range over 3 seeds covers the median with probability 0.75, over 5 seeds 0.94). "
    "Two archs are ordered within a (problem, length) only by a test whose unit is the seed: an exact two-sided "
    "rank test (Wilcoxon-Mann-Whitney, by permutation) on their runs' test metrics over the seeds both ran (a "
    "diverged run counts as the worst value), rejecting at 5% after Holm's correction over all pairs of that "
    "(problem, length); otherwise they are *not distinguishable* with that many seeds. With several learning "
    "rates (--lrs), a tuning stage on seeds of its own picks each (problem, length, arch)'s rate by the best "
    "median validation metric (a diverged run counts as the worst value), and the reported seeds run at that "
    "rate only: no tuning run is reported. Where other settings were swept, each (problem, length, arch) is "
    "represented by the setting with the best median validation metric over its seeds, and archs are compared "
    "at those settings. The test metric is the best-on-validation checkpoint's; every choice reads the "
    "validation split only. A run stops early only once validation beats the solved rule by 1.645 standard "
    "deviations of the gap between its validation and test metrics."
)


# ---- one run ----------------------------------------------------------------------------------------------
def run_outcome(status: str, solved: bool, metric: float | None, baseline: float, higher_is_better: bool,
                diff_se: float | None, memoryless: float | None = None) -> str:
    """The run's own outcome (OUTCOMES), judged against the predictor with no memory on the same test sequences:
    a paired test on the per-sequence differences (run minus memoryless), one-sided at ALPHA each way.
    `memoryless`: that predictor's metric on those sequences (the analytic `baseline` where a row lacks it);
    `diff_se`: the standard error of the mean per-sequence difference. Pairing removes the draw of the test set,
    which both share; without a finite `diff_se` (a single test sequence) nothing is claimed: at baseline."""
    if status == "failed":
        return "failed"
    if status == "diverged" or metric is None or not math.isfinite(metric):
        return "diverged"
    if solved:
        return "solved"
    reference = memoryless if memoryless is not None and math.isfinite(memoryless) else baseline
    gain = (metric - reference) if higher_is_better else (reference - metric)
    if diff_se is None or not math.isfinite(diff_se):
        return "at_baseline"
    margin = Z_ONE_SIDED * diff_se
    if gain > margin:
        return "beats_baseline"
    if gain < -margin:
        return "worse"
    return "at_baseline"


def reported(metrics: pl.DataFrame) -> pl.DataFrame:
    """The reported runs' rows: without the tuning stage of a --lrs sweep, which only chose each cell's rate
    (verdicts, intervals and rankings read these only). Rows from before roles existed are all reported."""
    return metrics.filter(pl.col("role").fill_null("report") == "report") if "role" in metrics.columns else metrics


def in_distribution(metrics: pl.DataFrame) -> pl.DataFrame:
    """The rows scored at the training length on the run's own test set (one per run): verdicts are about these;
    rows at other lengths (--eval-lens) are length generalisation, and rows on a held-out split (test_split other
    than "test") distribution shift, both reported beside them."""
    own = pl.col("eval_len") == pl.col("seq_len")
    if "test_split" in metrics.columns:
        own = own & (pl.col("test_split") == "test")
    return metrics.filter(own)


def verdict_rows(metrics: pl.DataFrame) -> pl.DataFrame:
    """The row each run's verdict reads (one per run): at the training length (in_distribution), except for a
    problem whose verdict reads the longest length it was scored at (`Problem.verdict_at` "longest": parity,
    pre-registered as length generalisation), where it is the run's own test set at its longest eval_len."""
    from rnnbench.problems import PROBLEMS  # the registry as it is now (plugins included)

    longest = [name for name, problem in PROBLEMS.items() if problem.verdict_at == "longest"]
    own = in_distribution(metrics)
    if not longest or metrics.filter(pl.col("problem").is_in(longest)).is_empty():
        return own
    scored = metrics.filter(pl.col("problem").is_in(longest))
    if "test_split" in scored.columns:
        scored = scored.filter(pl.col("test_split") == "test")
    at_longest = scored.filter(pl.col("eval_len") == pl.col("eval_len").max().over("run_id"))
    return pl.concat([own.filter(~pl.col("problem").is_in(longest)), at_longest], how="vertical_relaxed")


# ---- exact binomial arithmetic (no scipy: a few lines with integers) -------------------------------------------
def binomial_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exact (integer sums, one rounding)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2**n


def interval_coverage(n: int, k: int) -> float:
    """Probability that [x_(k), x_(n+1-k)] (k-th smallest to k-th largest of n values drawn independently from
    one distribution) covers that distribution's median: 1 - 2 P(Binomial(n, 1/2) <= k - 1). Exact for a
    continuous distribution; with ties (a discrete metric) the closed interval covers at least this often."""
    if not 1 <= k <= (n + 1) // 2:
        raise ValueError(f"order-statistic rank k={k} must lie in 1..{(n + 1) // 2} for n={n} values")
    return 1.0 - 2.0 * binomial_half_cdf(k - 1, n)


def order_statistic_rank(n: int, level: float = INTERVAL_LEVEL) -> tuple[int, float]:
    """(k, coverage): the narrowest symmetric order-statistic interval for the median of n values whose coverage
    is at least `level`, or, where n is too small for that, the whole range (k = 1) with its real coverage
    (0.75 at n = 3, 0.9375 at n = 5, 0 for a single value)."""
    if n < 1:
        raise ValueError(f"an interval needs at least 1 value, got n={n}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    best = 1
    for k in range(2, (n + 1) // 2 + 1):  # coverage falls as k grows: stop at the first k below the level
        if interval_coverage(n, k) < level:
            break
        best = k
    return best, interval_coverage(n, best)


class Interval(NamedTuple):
    median: float
    low: float
    high: float
    level: float  # the probability that [low, high] covers the median over seeds (see interval_coverage)


def median_interval(values: Sequence[float], level: float = INTERVAL_LEVEL) -> Interval:
    """The sample median of the values (one per seed) and the order-statistic interval for the median over
    seeds (order_statistic_rank), with its real coverage. Its ends are values of the runs themselves, so it
    stays inside the metric's feasible range and contains the sample median."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        raise ValueError("no values")
    if not np.isfinite(data).all():
        raise ValueError(f"values must be finite, got {values!r}")
    k, coverage = order_statistic_rank(int(data.size), level)
    return Interval(float(np.median(data)), float(data[k - 1]), float(data[data.size - k]), coverage)


@cache
def _rank_sum_counts(doubled_ranks: tuple[int, ...], size: int) -> np.ndarray:
    """How many of the C(N, size) ways to pick `size` of the N items give each sum of (doubled) ranks: the exact
    permutation distribution of the rank sum, by dynamic programming over items (counts[k, s]: subsets of k
    items with sum s). Integer counts while they fit in int64, else float (relative error ~1e-16)."""
    total = sum(doubled_ranks)
    exact = math.comb(len(doubled_ranks), size) < 2**62
    counts = np.zeros((size + 1, total + 1), dtype=np.int64 if exact else np.float64)
    counts[0, 0] = 1
    for r in doubled_ranks:
        counts[1:, r:] = counts[1:, r:] + counts[:-1, :total + 1 - r]
    return counts[size]


def _doubled_midranks(keys: Sequence[float]) -> list[int]:
    """Twice each value's mid-rank (1 = lowest; tied values share the mean of their ranks): integers."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    out = [0] * len(keys)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and keys[order[end + 1]] == keys[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            out[i] = (start + 1) + (end + 1)
        start = end + 1
    return out


def rank_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(p, share): the exact two-sided Wilcoxon-Mann-Whitney permutation test of 'a and b come from one
    distribution', and the share of (a, b) pairs of values in which a's is the larger (ties count 1/2).

    Values are oriented so that larger is better (a diverged run: -inf, the worst value). Every way of
    splitting the pooled values into groups of len(a) and len(b) is equally likely under the null, so p is
    the share of splits whose rank sum lies at least as far from its mean as the observed one: exact for any
    distribution and for ties (mid-ranks), with no normal approximation. Its smallest value, for two groups of
    n that do not overlap at all, is 2 / C(2n, n)."""
    if not a or not b:
        return 1.0, 0.5
    pooled = [*a, *b]
    if any(math.isnan(v) for v in pooled):
        raise ValueError(f"values must not be NaN (a diverged run is -inf): {pooled!r}")
    ranks = _doubled_midranks(pooled)
    observed = sum(ranks[:len(a)])
    counts = _rank_sum_counts(tuple(sorted(ranks)), len(a))
    mean2 = len(a) * sum(ranks)  # twice the sum's mean, times N: keeps every comparison in integers
    sums = np.arange(counts.size)
    far = np.abs(sums * len(pooled) - mean2) >= abs(observed * len(pooled) - mean2)
    p = float(counts[far].sum() / counts.sum())
    share = (observed / 2 - len(a) * (len(a) + 1) / 2) / (len(a) * len(b))
    return min(1.0, p), float(share)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at most the level for any dependence), in the
    input's order: the i-th smallest is multiplied by (m - i + 1), made monotone, capped at 1."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def seeds_needed(pairs: int, alpha: float = ALPHA) -> int:
    """The fewest seeds per arch at which even a clean separation (every run of one arch better than every run
    of the other: the smallest p the rank test can give, 2 / C(2n, n)) passes `alpha` after Holm's correction
    over `pairs` pairs (its first step: pairs x p)."""
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    n = 1
    while pairs * 2 / math.comb(2 * n, n) > alpha:
        n += 1
    return n


# ---- one cell ---------------------------------------------------------------------------------------------
def cell_verdict(n: int, n_solved: int, n_beats: int, n_worse: int, n_diverged: int) -> str:
    """The cell's verdict from its outcome counts over n seeds (failed runs are not in n)."""
    if n == 0:
        return "no result"
    if n_solved >= SOLVED_SHARE * n - 1e-9:
        return "solved"
    if n_solved > 0:
        return "split"
    for count, verdict in ((n_beats, "beats baseline"), (n_diverged, "diverged"), (n_worse, "worse than baseline")):
        if count >= SOLVED_SHARE * n - 1e-9:
            return verdict
    return "at baseline"


def verdict_text(verdict: str, n: int, n_solved: int, n_beats: int, n_failed: int, n_worse: int = 0,
                 n_diverged: int = 0) -> str:
    """The verdict with the counts behind it, the count that decided it first: e.g. 'split (1 of 3 solved)',
    'worse than baseline (worse in 2 of 3)', 'at baseline (beats baseline in 0 of 3, worse in 1)'."""
    failed = f"; {n_failed} failed, not counted" if n_failed else ""
    if verdict == "no result":
        return f"no result ({n_failed} failed)"
    if verdict in ("solved", "split"):
        return f"{verdict} ({n_solved} of {n} solved{failed})"
    beats = n_solved + n_beats
    if verdict == "worse than baseline":
        return f"{verdict} (worse in {n_worse} of {n}{failed})"
    if verdict == "diverged":
        return f"{verdict} (diverged in {n_diverged} of {n}{failed})"
    others = "".join(f", {word} in {count}" for word, count in (("worse", n_worse), ("diverged", n_diverged))
                     if count and verdict == "at baseline")
    return f"{verdict} (beats baseline in {beats} of {n}{others}{failed})"


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else None


def cell_columns(frame: pl.DataFrame) -> list[str]:
    """The columns that make a cell in this frame: CELL and every arch-option column it has."""
    return [*CELL, *sorted(c for c in frame.columns if c.startswith(OPTION_PREFIX))]


def summarize(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per cell (CELL): outcome counts, verdict, median and interval of the test metric (with the
    interval's coverage, `ci_level`), baseline, cost. Expects the metrics schema's columns (schemas/metrics.py);
    the result is schemas/summary.py's."""
    rows = []
    metrics = verdict_rows(reported(metrics))
    cell_keys = cell_columns(metrics)
    for keys, group in metrics.sort(cell_keys, nulls_last=True).group_by(cell_keys, maintain_order=True):
        cell = dict(zip(cell_keys, keys, strict=True))
        outcomes = group["outcome"].to_list()
        count = {name: outcomes.count(name) for name in OUTCOMES}
        n = len(outcomes) - count["failed"]
        ok = group.filter(pl.col("status") == "ok")
        values = [v for v in ok["test_metric"].to_list() if v is not None]
        median = low = high = level = None
        if values:
            median, low, high, level = median_interval(values)
        verdict = cell_verdict(n, count["solved"], count["beats_baseline"], count["worse"], count["diverged"])
        baseline = float(group["baseline"][0])
        higher = bool(group["higher_is_better"][0])
        score = None
        if median is not None:
            score = (median - baseline) / (1 - baseline) if higher else 1 - median / baseline
        val = [v for v in ok["val_metric_best"].to_list() if v is not None]
        params = group["params"].drop_nulls()
        states = group["state_size"].drop_nulls()
        rows.append({
            **cell, "metric_name": group["metric_name"][0], "higher_is_better": higher, "n_seeds": group.height,
            "n_ok": ok.height, "n_diverged": count["diverged"], "n_failed": count["failed"],
            "n_solved": count["solved"], "n_beats_baseline": count["beats_baseline"],
            "n_at_baseline": count["at_baseline"], "n_worse": count["worse"],
            "median": median, "ci_low": low, "ci_high": high, "ci_level": level, "baseline": baseline,
            "score": score, "verdict": verdict,
            "verdict_text": verdict_text(verdict, n, count["solved"], count["beats_baseline"], count["failed"],
                                         count["worse"], count["diverged"]),
            "median_steps_to_solve": _median(group["steps_to_solve"].to_list()),
            "median_steps_done": _median(group.filter(pl.col("status") != "failed")["steps_done"].to_list()),
            "params": int(params[0]) if params.len() else None,
            "state_size": int(states[0]) if states.len() else None,
            "median_train_seconds": _median(ok["train_seconds"].to_list()),
            "solved_rule": group["solved_rule"][0],
            "val_median": float(np.median(val)) if val else None, "chosen": False,
            # the most times one of its runs read its training set: over sizing.MAX_EPOCHS, the cell is data-limited
            "max_epochs": max((v for v in group["epochs"].to_list() if v is not None), default=None),
        })
    best: dict[tuple, dict] = {}
    for row in rows:  # in CELL order: on a tie the smaller setting (e.g. learning rate) is kept
        key = tuple(row[k] for k in CHOICE)
        if row["val_median"] is not None and (key not in best or _val_better(row, best[key])):
            best[key] = row
    for row in rows:
        key = tuple(row[k] for k in CHOICE)
        row["chosen"] = best[key] is row if key in best else _first_of(rows, row)
    cell_types = {name: dtype for name, dtype in metrics.schema.items() if name in cell_keys}  # the metrics' order
    return pl.DataFrame(rows, schema={**cell_types, **SUMMARY_COLUMNS}, strict=False)


def _val_better(a: dict, b: dict) -> bool:
    return a["val_median"] > b["val_median"] if a["higher_is_better"] else a["val_median"] < b["val_median"]


def _first_of(rows: list[dict], row: dict) -> bool:
    """Where no setting of a (problem, T, arch) has a validation metric (all diverged or failed), the first."""
    return next(r for r in rows if all(r[k] == row[k] for k in CHOICE)) is row


# ---- arch against arch -----------------------------------------------------------------------------------
def _better_key(row: dict, higher: bool) -> float:
    """A run's test metric oriented so that larger is better; a diverged run is the worst value there is."""
    if row["outcome"] == "diverged" or row["test_metric"] is None:
        return -math.inf
    return row["test_metric"] if higher else -row["test_metric"]


def compare_family(by_arch: dict[str, dict[int, float]], alpha: float = ALPHA) -> list[dict]:
    """Every pair of the archs of one (problem, seq_len): `by_arch` maps arch -> seed -> its run's test metric
    oriented so that larger is better (-inf: diverged). Per pair, on the seeds both ran: `n_shared`, the seeds on
    which each one's run was the better (`a_better`, `b_better`: facts, paired by seed), the rank test's p-value
    and share (`rank_test`), Holm's adjustment over the whole family, and `order` of a to b: 'above' / 'below'
    where the adjusted p is at most `alpha`, else 'not distinguishable'."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    archs = sorted(by_arch)
    family = []
    for i, a in enumerate(archs):
        for b in archs[i + 1:]:
            shared = sorted(set(by_arch[a]) & set(by_arch[b]))
            va, vb = [by_arch[a][s] for s in shared], [by_arch[b][s] for s in shared]
            p, share = rank_test(va, vb)
            family.append({"arch_a": a, "arch_b": b, "n_shared": len(shared),
                           "a_better": sum(x > y for x, y in zip(va, vb, strict=True)),
                           "b_better": sum(y > x for x, y in zip(va, vb, strict=True)),
                           "a_over_b": share, "p_value": p})
    for pair, adjusted in zip(family, holm([p["p_value"] for p in family]), strict=True):
        pair["p_holm"] = adjusted
        pair["order"] = ("not distinguishable" if adjusted > alpha or pair["a_over_b"] == 0.5
                         else "above" if pair["a_over_b"] > 0.5 else "below")
    return family


def comparison_columns(metrics: pl.DataFrame) -> dict[str, pl.DataType]:
    """The columns of `compare_archs` on this metrics frame, typed: problem, seq_len, each setting of arch a's
    cell and of arch b's (`lr_a`, `lr_b`, ...: each arch is compared at its own chosen cell, whose settings may
    differ, e.g. a learning rate chosen per arch), every arch-option column (an option belongs to one arch, so
    one column holds whichever side's value), then the pair and its test (COMPARISON_COLUMNS)."""
    sides = {f"{k}_{side}": metrics.schema[k] for k in SETTINGS for side in ("a", "b")}
    options = {c: metrics.schema[c] for c in sorted(metrics.columns) if c.startswith(OPTION_PREFIX)}
    return {"problem": pl.String, "seq_len": pl.Int64, **sides, **options, **COMPARISON_COLUMNS}


def compare_archs(metrics: pl.DataFrame, summary: pl.DataFrame | None = None, alpha: float = ALPHA) -> pl.DataFrame:
    """One row per pair of archs within a (problem, seq_len), each at its chosen cell (summary's `chosen`,
    computed when not given), tested on the seeds both ran without a failure (`compare_family`); a diverged run
    is the worst value.

    Why this test. The seed is the unit of replication (initialisation, data and batch order), so the test's
    noise must be the spread from seed to seed, not the test set's. Per-seed results are often bimodal (solved
    or at baseline) and a diverged run has no value, so only the order of the runs is used: a rank test, exact
    by permutation, whatever the distribution. A paired test (sign flips within each seed) would be exact too,
    but its smallest p at n seeds is 2 x 0.5^n: 0.0625 at 5 seeds, so with the 3 to 5 seeds a sweep runs it
    could never order even one pair, however clear. The two-sample test also compares runs across seeds (every
    run of a against every run of b): smallest p 2 / C(2n, n), 0.0079 at 5 seeds. It treats the 2n runs as
    exchangeable under the null; runs of one seed share their data, which can only make the two archs' runs
    of a seed alike, and that shrinks the spread of the rank sum: the test is then conservative, never liberal
    (tests/test_statistics.py checks the false-ordering rate with a shared seed effect)."""
    metrics = reported(metrics)  # never a tuning run
    summary = summarize(metrics) if summary is None else summary
    cell_keys = [k for k in cell_columns(metrics) if k in summary.columns]
    options = [k for k in cell_keys if k.startswith(OPTION_PREFIX)]
    chosen = summary.filter(pl.col("chosen")).select(cell_keys)
    chosen = chosen.with_columns(pl.col(k).cast(metrics.schema[k]) for k in cell_keys)
    usable = (verdict_rows(metrics).join(chosen, on=cell_keys, how="semi", nulls_equal=True)
              .filter(pl.col("outcome") != "failed"))
    out = []
    for keys, group in usable.sort(list(PAIRING), nulls_last=True).group_by(list(PAIRING), maintain_order=True):
        higher = bool(group["higher_is_better"][0])
        rows: dict[str, dict] = {}
        by_arch: dict[str, dict[int, float]] = {}
        for row in group.iter_rows(named=True):
            rows.setdefault(row["arch"], row)
            by_arch.setdefault(row["arch"], {})[row["seed"]] = _better_key(row, higher)
        for pair in compare_family(by_arch, alpha):
            first_a, first_b = rows[pair["arch_a"]], rows[pair["arch_b"]]
            out.append({"problem": keys[0], "seq_len": keys[1],
                        **{f"{k}_{side}": first[k] for k in SETTINGS for side, first in (("a", first_a),
                                                                                         ("b", first_b))},
                        **{k: first_a[k] if first_a[k] is not None else first_b[k] for k in options}, **pair})
    return pl.DataFrame(out, schema=comparison_columns(metrics), strict=False)


def separating_problems(summary: pl.DataFrame) -> list[str]:
    """Problems on which the sweep tells archs apart: at some length one arch's cell is solved while another's
    was solved in no seed (each arch at its chosen setting)."""
    out = []
    chosen = summary.filter(pl.col("chosen"))
    for (problem, _), cells in chosen.group_by(["problem", "seq_len"], maintain_order=True):
        never = (cells["n_solved"] == 0) & (cells["n_seeds"] > cells["n_failed"])
        if (cells["verdict"] == "solved").any() and never.any():
            out.append(problem)
    return list(dict.fromkeys(out))


# ---- sentences the rules allow ---------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def range_text(values: Sequence[int]) -> str:
    """'3' or '3–5'."""
    return str(min(values)) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def tiers(orders: Sequence[tuple[str, str]], archs: Sequence[str]) -> list[list[str]] | None:
    """The ordered archs as tiers, best first, where the tests support reading them so: every arch of a tier
    is significantly above every arch of every later tier (orders holds the (winner, loser) pairs that passed).
    None where they do not form such a chain (e.g. a > b and b > c but a, c not distinguishable): then only
    the pairs themselves may be stated. `archs` fixes the order within a tier."""
    involved = [a for a in archs if any(a in pair for pair in orders)]
    above = {a: {w for w, lose in orders if lose == a} for a in involved}
    level: dict[str, int] = {}
    remaining = set(involved)
    while remaining:  # longest path from the top; a cycle leaves no arch without an unplaced winner
        ready = [a for a in remaining if above[a] <= set(level)]
        if not ready:
            return None
        for a in ready:
            level[a] = 1 + max((level[w] for w in above[a]), default=-1)
        remaining -= set(ready)
    out = [[a for a in involved if level[a] == i] for i in range(max(level.values(), default=-1) + 1)]
    supported = set(orders)
    for i, upper in enumerate(out):
        for lower in out[i + 1:]:
            if any((w, lose) not in supported for w in upper for lose in lower):
                return None
    return out


def ranking_sentence(pairs: pl.DataFrame, archs: Sequence[str], alpha: float = ALPHA) -> str:
    """What the seed-level tests of one (problem, T) support, in one sentence: the orders as tiers ('gru, lru >
    lstm > rnn_tanh'), or as each winner with the archs it is above, then how many pairs are not
    distinguishable and with how many seeds; where none is ordered, how many seeds even a clean sweep needs."""
    if not pairs.height:
        return ""
    family = pairs.height
    seeds = range_text(pairs["n_shared"].to_list())
    need = seeds_needed(family, alpha)
    test = f"exact rank test over seeds at {alpha:.0%}, Holm over {family} pair{'s' * (family > 1)}"
    rows = pairs.to_dicts()
    orders = [(r["arch_a"], r["arch_b"]) if r["order"] == "above" else (r["arch_b"], r["arch_a"])
              for r in rows if r["order"] in ("above", "below")]
    if not orders:
        if pairs["n_shared"].max() < need:
            return (f"Ranking: no pair distinguishable with {seeds} seeds ({test}: even a clean separation, all "
                    f"runs of one arch ahead of all runs of the other, needs at least {need} seeds).")
        return f"Ranking: no pair distinguishable with {seeds} seeds ({test})."
    chain = tiers(orders, archs)
    if chain is not None:
        text = " > ".join(", ".join(tier) for tier in chain)
    else:
        winners = [a for a in archs if any(w == a for w, _ in orders)]
        text = "; ".join(f"{w} > " + ", ".join(lose for lose in archs if (w, lose) in orders) for w in winners)
    rest = family - len(orders)
    others = f"the other {rest} pairs are" if rest > 1 else "the other pair is"
    tail = f"; {others} not distinguishable with {seeds} seeds" if rest else ""
    return f"Ranking ({test}): {text}{tail}."


def findings(summary: pl.DataFrame, comparisons: pl.DataFrame, alpha: float = ALPHA) -> list[str]:
    """One sentence per (problem, seq_len): the archs grouped by verdict, with the counts behind each (facts),
    then the ranking the seed-level tests support (`ranking_sentence`), never a list of every pair. Names no
    order where no run beat the baseline."""
    out: list[str] = []
    for (problem, seq_len), cells in summary.filter(pl.col("chosen")).group_by(["problem", "seq_len"],
                                                                               maintain_order=True):
        rows = cells.to_dicts()
        head = f"{problem} at T={seq_len} ({rows[0]['metric_name']}, baseline {_fmt(rows[0]['baseline'])})"
        swept = summary.filter((pl.col("problem") == problem) & (pl.col("seq_len") == seq_len))["lr"].n_unique() > 1
        if swept:
            head += ", each arch at the learning rate it did best with on validation"
        by_verdict: dict[str, list[str]] = {}
        for r in rows:
            label = r["arch"] if not swept else f"{r['arch']} (lr {r['lr']:g})"
            by_verdict.setdefault(r["verdict"], []).append(f"{label} {r['verdict_text'].split('(', 1)[-1][:-1]}")
        parts = [f"{verdict}: {'; '.join(by_verdict[verdict])}" for verdict in VERDICTS if verdict in by_verdict]
        any_beat = any(r["n_solved"] + r["n_beats_baseline"] > 0 for r in rows)
        if not any_beat:
            parts.insert(0, "no run of any architecture beat the baseline")
        sentence = f"{head}: " + " — ".join(parts) + "."
        if any_beat and comparisons.height:
            pairs = comparisons.filter((pl.col("problem") == problem) & (pl.col("seq_len") == seq_len))
            ranking = ranking_sentence(pairs, [r["arch"] for r in rows], alpha)
            sentence += f" {ranking}" if ranking else ""
        out.append(sentence)
    return out


__all__ = ["ALPHA", "CELL", "COMPARISON_COLUMNS", "INTERVAL_LEVEL", "ORDERS", "OUTCOMES", "RULES", "SUMMARY_COLUMNS",
           "VERDICTS", "Interval", "binomial_half_cdf", "cell_columns", "cell_verdict", "compare_archs",
           "compare_family", "comparison_columns", "findings", "holm", "interval_coverage", "median_interval",
           "order_statistic_rank", "rank_test", "ranking_sentence", "run_outcome", "seeds_needed", "summarize",
           "tiers"]
