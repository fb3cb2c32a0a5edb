"""Summary statistics over seeds: mean, 95% Student-t interval, fraction solved."""

from __future__ import annotations

import math

# two-sided 95% Student-t critical values by degrees of freedom; beyond 30 the normal 1.96 is within 2%
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042}


def t_critical(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975.get(df, 1.96)


def mean_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of a 95% t-interval for the mean; no interval from a single value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half
