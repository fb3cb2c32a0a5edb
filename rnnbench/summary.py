"""Derive the report's numbers from the long-format metrics: one summary row per (problem, seq_len, arch)."""

from __future__ import annotations

import polars as pl

from rnnbench.problems import get_problem
from rnnbench.stats import mean_interval

# Pre-registered: one seed gives no interval, so a lone run "beats the baseline" only with a score of at
# least this much (10% of the way from the baseline to perfect); with >= 2 seeds the 95% interval decides.
SINGLE_SEED_MARGIN = 0.1


def summarize(metrics: pl.DataFrame) -> list[dict]:
    """Per (problem, seq_len, arch): seeds, mean and 95% interval of the test metric over ok runs, baseline,
    score, fraction of seeds solved (failed/diverged runs count as not solved), params, time."""
    out = []
    keys = ["problem", "seq_len", "arch"]
    for (problem_name, seq_len, arch), group in metrics.sort(keys).group_by(keys, maintain_order=True):
        problem = get_problem(problem_name)
        ok = group.filter(pl.col("status") == "ok")
        values = ok["test_metric"].to_list()
        baseline = float(group["baseline"][0])
        row = {
            "problem": problem_name, "seq_len": int(seq_len), "arch": arch, "metric_name": problem.metric_name,
            "higher_is_better": problem.higher_is_better, "seeds": group.height, "ok": ok.height,
            "diverged": int((group["status"] == "diverged").sum()), "failed": int((group["status"] == "failed").sum()),
            "baseline": baseline, "solved_rule": problem.solved_rule(),
            "frac_solved": float(group["solved"].sum()) / group.height,
            "params": int(group["params"].drop_nulls()[0]) if group["params"].drop_nulls().len() else None,
            "train_seconds": ok["train_seconds"].mean() if ok.height else None,
            "steps_per_second": ok["steps_per_second"].mean() if ok.height else None,
            "mean": None, "low": None, "high": None, "score": None, "best": None, "verdict": "no result",
        }
        if values:
            mean, low, high = mean_interval(values)
            best = max(values) if problem.higher_is_better else min(values)
            row.update(mean=mean, low=low, high=high, score=problem.score(mean, seq_len), best=best,
                       verdict=verdict(problem.higher_is_better, baseline, mean, low, high,
                                       problem.score(mean, seq_len), row["frac_solved"]))
        out.append(row)
    return out


def verdict(higher_is_better: bool, baseline: float, mean: float, low: float | None, high: float | None,
            score: float, frac_solved: float) -> str:
    """'solved' (every seed), 'beats baseline', 'at baseline' or 'worse than baseline', by the rules above."""
    if frac_solved == 1.0:
        return "solved"
    if low is None or high is None:
        if score >= SINGLE_SEED_MARGIN:
            return "beats baseline"
        return "worse than baseline" if score <= -SINGLE_SEED_MARGIN else "at baseline"
    better = low > baseline if higher_is_better else high < baseline
    worse = high < baseline if higher_is_better else low > baseline
    return "beats baseline" if better else "worse than baseline" if worse else "at baseline"
