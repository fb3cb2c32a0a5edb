"""Each run's own outcome, cell verdicts from outcome counts, paired arch comparisons, and the sentences they allow."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

OUTCOMES = ("solved", "beats_baseline", "at_baseline", "worse", "diverged", "failed")
VERDICTS = ("solved", "split", "beats baseline", "at baseline", "worse than baseline", "diverged", "no result")
# two-sided 95% normal quantile: a run beats (or trails) the baseline only by more than this many of its own
# test-set standard errors (the spread of the per-sequence metric over its n_test stored test sequences)
Z = 1.959964
# pre-registered (PROBLEMS.md): a cell is solved when at least this share of its seeds solved it
SOLVED_SHARE = 2 / 3
BOOTSTRAP_RESAMPLES = 4000
# what makes a cell: a verdict is over seeds only, every other setting that can be swept stays apart
SETTINGS = ("lr", "hidden_size", "min_len", "num_layers", "bidirectional", "dropout", "bias", "proj_size",
            "forget_bias", "recurrent_init", "steps", "batch_size")
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
    "baseline": pl.Float64, "score": pl.Float64, "verdict": pl.String, "verdict_text": pl.String,
    "median_steps_to_solve": pl.Float64, "median_steps_done": pl.Float64, "params": pl.Int64,
    "state_size": pl.Int64, "median_train_seconds": pl.Float64, "solved_rule": pl.String, "val_median": pl.Float64,
    "chosen": pl.Boolean,
}

RULES = (
    "Each run first gets its own outcome: *solved* when its test metric meets the problem's pre-registered rule; "
    "else *beats baseline* / *worse* when its test metric is better / worse than the analytic memoryless baseline "
    f"by more than {Z:.2f} standard errors of that run's own test split (the run's per-sequence metric over its "
    "stored test sequences, combined with a memoryless predictor's on the same sequences, which lands off the "
    "analytic value by the draw of the test set alone); else *at baseline*; *diverged* when training produced a "
    "non-finite loss; *failed* when the job itself failed (infrastructure). A cell (problem, length, arch and "
    "every swept setting, the arch's own options included) is **solved** when at least 2/3 of its seeds solved "
    "it, **split** when some but fewer did; otherwise it beats the baseline, is worse, or diverged when at least "
    "2/3 of its seeds did so, else it is at baseline. "
    "Diverged runs count in a cell's n as not solved; failed runs are left out of n and listed apart. Medians are "
    "over the runs with a test metric, with a 95% bootstrap percentile interval over seeds "
    f"({BOOTSTRAP_RESAMPLES} resamples), which never leaves the range the runs span. Two archs are ranked within a "
    "(problem, length) only when one is better on at least 2/3 of their shared seeds and worse on none, a seed "
    "counting when the difference exceeds 1.96 combined standard errors of the two runs (both scored on the same "
    "test sequences) or one run diverged; otherwise they are tied. Where settings were swept (e.g. learning "
    "rates), each (problem, length, arch) is represented by the setting with the best median validation metric "
    "over its seeds, and archs are compared at those settings. The test metric is the best-on-validation "
    "checkpoint's; every choice reads the validation split only."
)


# ---- one run ----------------------------------------------------------------------------------------------
def run_outcome(status: str, solved: bool, metric: float | None, se: float | None, baseline: float,
                higher_is_better: bool, baseline_se: float | None = None) -> str:
    """The run's own outcome (OUTCOMES), judged with its own test-set uncertainty, never a fixed margin: the
    standard error of its per-sequence metric combined with that of a memoryless predictor on the same test
    sequences (`baseline_se`: a model with no memory lands that far from the analytic baseline by the draw of
    the test set alone)."""
    if status == "failed":
        return "failed"
    if status == "diverged" or metric is None or not math.isfinite(metric):
        return "diverged"
    if solved:
        return "solved"
    gain = (metric - baseline) if higher_is_better else (baseline - metric)
    own = se if se is not None and math.isfinite(se) else 0.0
    draw = baseline_se if baseline_se is not None and math.isfinite(baseline_se) else 0.0
    margin = Z * math.sqrt(own**2 + draw**2)
    if gain > margin:
        return "beats_baseline"
    if gain < -margin:
        return "worse"
    return "at_baseline"


def in_distribution(metrics: pl.DataFrame) -> pl.DataFrame:
    """The rows scored at the training length (one per run): verdicts are about these; rows at other lengths
    (--eval-lens) are length generalisation, reported beside them."""
    return metrics.filter(pl.col("eval_len") == pl.col("seq_len"))


# ---- one cell ---------------------------------------------------------------------------------------------
def median_interval(values: Sequence[float], seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): a bootstrap percentile interval for the median over seeds. The resampled medians
    are medians of the values themselves, so the interval lies within [min, max] of the values (inside the
    metric's feasible range) and, by construction, contains the median. Seeded: the same values give the same
    interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values")
    median = float(np.median(data))
    if data.size == 1:
        return median, median, median
    rng = np.random.default_rng(seed)
    resampled = np.median(data[rng.integers(0, data.size, size=(BOOTSTRAP_RESAMPLES, data.size))], axis=1)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return median, float(min(low, median)), float(max(high, median))


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


def verdict_text(verdict: str, n: int, n_solved: int, n_beats: int, n_failed: int) -> str:
    """The verdict with the counts behind it, e.g. 'split (1 of 3 solved)'."""
    failed = f"; {n_failed} failed, not counted" if n_failed else ""
    if verdict == "no result":
        return f"no result ({n_failed} failed)"
    if verdict in ("solved", "split"):
        return f"{verdict} ({n_solved} of {n} solved{failed})"
    beats = n_solved + n_beats
    return f"{verdict} (beats baseline in {beats} of {n}{failed})"


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else None


def cell_columns(frame: pl.DataFrame) -> list[str]:
    """The columns that make a cell in this frame: CELL and every arch-option column it has."""
    return [*CELL, *sorted(c for c in frame.columns if c.startswith(OPTION_PREFIX))]


def summarize(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per cell (CELL): outcome counts, verdict, median and interval of the test metric, baseline,
    cost. Expects the metrics schema's columns (schemas/metrics.py); the result is schemas/summary.py's."""
    rows = []
    metrics = in_distribution(metrics)
    cell_keys = cell_columns(metrics)
    for keys, group in metrics.sort(cell_keys, nulls_last=True).group_by(cell_keys, maintain_order=True):
        cell = dict(zip(cell_keys, keys, strict=True))
        outcomes = group["outcome"].to_list()
        count = {name: outcomes.count(name) for name in OUTCOMES}
        n = len(outcomes) - count["failed"]
        ok = group.filter(pl.col("status") == "ok")
        values = [v for v in ok["test_metric"].to_list() if v is not None]
        median = low = high = None
        if values:
            median, low, high = median_interval(values)
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
            "median": median, "ci_low": low, "ci_high": high, "baseline": baseline, "score": score,
            "verdict": verdict,
            "verdict_text": verdict_text(verdict, n, count["solved"], count["beats_baseline"], count["failed"]),
            "median_steps_to_solve": _median(group["steps_to_solve"].to_list()),
            "median_steps_done": _median(group.filter(pl.col("status") != "failed")["steps_done"].to_list()),
            "params": int(params[0]) if params.len() else None,
            "state_size": int(states[0]) if states.len() else None,
            "median_train_seconds": _median(ok["train_seconds"].to_list()),
            "solved_rule": group["solved_rule"][0],
            "val_median": float(np.median(val)) if val else None, "chosen": False,
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
def _seed_result(row: dict) -> tuple[float, float] | None:
    """(metric, se) of a run, None when it diverged; failed runs are dropped before this."""
    if row["outcome"] == "diverged":
        return None
    return row["test_metric"], (row["test_se"] or 0.0)


def _better(a: tuple[float, float] | None, b: tuple[float, float] | None, higher: bool) -> int:
    """+1 when run a is better than run b beyond both runs' test-set noise, -1 when worse, 0 when neither."""
    if a is None or b is None:
        return 0 if a is b else (1 if b is None else -1)
    diff = (a[0] - b[0]) if higher else (b[0] - a[0])
    margin = Z * math.sqrt(a[1] ** 2 + b[1] ** 2)
    return 1 if diff > margin else -1 if diff < -margin else 0


def compare_archs(metrics: pl.DataFrame, summary: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per pair of archs within a (problem, seq_len), each at its chosen cell (summary's `chosen`,
    computed when not given): shared seeds (both runs not failed), per-seed wins each way, and `relation` of
    arch_a to arch_b ('above', 'below' or 'tied')."""
    out = []
    summary = summarize(metrics) if summary is None else summary
    cell_keys = [k for k in cell_columns(metrics) if k in summary.columns]
    chosen = summary.filter(pl.col("chosen")).select(cell_keys)
    chosen = chosen.with_columns(pl.col(k).cast(metrics.schema[k]) for k in cell_keys)
    usable = (in_distribution(metrics).join(chosen, on=cell_keys, how="semi", nulls_equal=True)
              .filter(pl.col("outcome") != "failed"))
    for keys, group in usable.sort(list(PAIRING), nulls_last=True).group_by(list(PAIRING), maintain_order=True):
        higher = bool(group["higher_is_better"][0])
        by_arch: dict[str, dict[int, dict]] = {}
        for row in group.iter_rows(named=True):
            by_arch.setdefault(row["arch"], {})[row["seed"]] = row
        archs = sorted(by_arch)
        for i, a in enumerate(archs):
            for b in archs[i + 1:]:
                shared = sorted(set(by_arch[a]) & set(by_arch[b]))
                signs = [_better(_seed_result(by_arch[a][s]), _seed_result(by_arch[b][s]), higher) for s in shared]
                a_wins, b_wins = signs.count(1), signs.count(-1)
                need = SOLVED_SHARE * len(shared) - 1e-9
                relation = "tied"
                if shared and a_wins >= need and b_wins == 0:
                    relation = "above"
                elif shared and b_wins >= need and a_wins == 0:
                    relation = "below"
                out.append({"problem": keys[0], "seq_len": keys[1], "arch_a": a, "arch_b": b,
                            "n_shared": len(shared), "a_wins": a_wins, "b_wins": b_wins, "relation": relation})
    schema = {"problem": pl.String, "seq_len": pl.Int64, "arch_a": pl.String, "arch_b": pl.String,
              "n_shared": pl.Int64, "a_wins": pl.Int64, "b_wins": pl.Int64, "relation": pl.String}
    return pl.DataFrame(out, schema=schema)


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


def _names(items: list[str]) -> str:
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def findings(summary: pl.DataFrame, comparisons: pl.DataFrame) -> list[str]:
    """Sentences generated from the verdicts: per (problem, seq_len), who solved it (k of n), who split, who
    beat the baseline, and the rankings the paired comparison supports. Never names a best arch where no run
    beat the baseline."""
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
        parts = []
        for verdict in VERDICTS:
            if verdict in by_verdict:
                parts.append(f"{verdict}: {'; '.join(by_verdict[verdict])}")
        any_beat = any(r["n_solved"] + r["n_beats_baseline"] > 0 for r in rows)
        if not any_beat:
            parts.insert(0, "no run of any architecture beat the baseline")
        out.append(f"{head}: " + " — ".join(parts) + ".")
        if any_beat:
            pairs = comparisons.filter((pl.col("problem") == problem) & (pl.col("seq_len") == seq_len)
                                       & (pl.col("relation") != "tied"))
            ranked = [(r["arch_a"], r["arch_b"], r["a_wins"], r["n_shared"]) if r["relation"] == "above"
                      else (r["arch_b"], r["arch_a"], r["b_wins"], r["n_shared"]) for r in pairs.to_dicts()]
            if ranked:
                out.append(f"{problem} at T={seq_len}, paired over shared seeds: " + "; ".join(
                    f"{w} better than {lose} on {k} of {n} seeds" for w, lose, k, n in ranked) + "; other pairs tied.")
            else:
                out.append(f"{problem} at T={seq_len}: no pair of architectures is separated by the paired "
                           "comparison over shared seeds; they are tied.")
    return out


__all__ = ["CELL", "OUTCOMES", "RULES", "SUMMARY_COLUMNS", "VERDICTS", "cell_columns", "cell_verdict", "compare_archs",
           "findings", "median_interval", "run_outcome", "summarize"]
