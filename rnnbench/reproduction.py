"""What a sweep found for each reproduction card (rnnbench.cards), judged by the pre-registered agreement rules.

A card's runs are the reported runs whose settings are the card's own (`RunSetting`: arch, T, hidden size, rate,
batch, clipping, layers, forget bias, lengths, budget). Its result is "agrees", "disagrees" or "not run" (no run of
the card, or every one failed); the rules are in docs/PROBLEMS.md ("Agreement rules") and in `judge`.
"""

from __future__ import annotations

import polars as pl

from rnnbench import verdicts
from rnnbench.cards import CARDS, Card

RESULTS = ("agrees", "disagrees", "not run")
# a claim that a cell stays at the baseline holds only for verdicts that learned nothing: a cell that beats the
# baseline (or solved it, in some seeds or most) learned something, which the claim says it does not
STAYS_AT_BASELINE = ("at baseline", "worse than baseline", "diverged")
BEATS_BASELINE = ("beats baseline", "split", "solved")
# the card columns reproduction.parquet keeps (schemas/reproduction.py), in order
COLUMNS = ("card_id", "problem", "seq_len", "arch", "tier", "source", "where", "url", "claim", "source_n", "n",
           "tolerance", "differences", "verified", "found", "result")


def card_runs(card: Card, metrics: pl.DataFrame) -> pl.DataFrame:
    """The reported rows of `metrics` run with the card's settings (every evaluation length)."""
    run = card.run
    wanted = {"problem": card.problem, "arch": run.arch, "seq_len": run.seq_len, "hidden_size": run.hidden_size,
              "lr": run.lr, "batch_size": run.batch_size, "clip_norm": run.clip_norm, "num_layers": run.num_layers,
              "min_len": run.min_len, "steps": run.steps}
    rows = verdicts.reported(metrics)
    for column, value in wanted.items():
        rows = rows.filter(pl.col(column) == value)
    forget = pl.col("forget_bias").is_null() if run.forget_bias is None else pl.col("forget_bias") == run.forget_bias
    return rows.filter(forget)


def judge(card: Card, metrics: pl.DataFrame) -> tuple[str, str]:
    """(found, result) for one card: what its runs show, in words, and agrees / disagrees / not run."""
    rows = card_runs(card, metrics)
    own = verdicts.in_distribution(rows)
    if not own.height:
        if card.tier == "gpu":
            return "not run: a gpu-tier card, run with --tier gpu", "not run"
        return "not run in this sweep", "not run"
    if not own.filter(pl.col("status") != "failed").height:  # a diverged run is a result: the worst one
        return f"all {own.height} runs failed (infrastructure)", "not run"
    if card.kind in ("accuracy_at_least", "accuracy_at_most"):
        return _at_length(card, rows)
    cell = verdicts.summarize(own).sort("n_seeds", descending=True).row(0, named=True)
    steps = cell["median_steps_to_solve"]
    found = f"{cell['verdict_text']}" + (f", median {steps:,.0f} updates to solve" if steps is not None else "")
    found += f" (budget {card.run.steps:,} updates)"
    verdict = cell["verdict"]
    if card.kind == "solved_within":
        agrees = verdict == "solved" and steps is not None and steps <= card.tolerance * card.within_updates
    elif card.kind == "solved":
        agrees = verdict == "solved"
    elif card.kind == "stays_at_baseline":
        agrees = verdict in STAYS_AT_BASELINE
    else:  # beats_baseline
        agrees = verdict in BEATS_BASELINE
    return found, "agrees" if agrees else "disagrees"


def _at_length(card: Card, rows: pl.DataFrame) -> tuple[str, str]:
    at = rows.filter((pl.col("eval_len") == card.length) & (pl.col("status") == "ok")
                     & pl.col("test_metric").is_not_null())
    if "test_split" in at.columns:
        at = at.filter(pl.col("test_split") == "test")
    if not at.height:
        return f"no run scored at length {card.length}", "not run"
    values = sorted(at["test_metric"].to_list())
    median = float(pl.Series(values).median())
    found = (f"median accuracy {median:.3f} at length {card.length} over {len(values)} seed"
             f"{'s' * (len(values) > 1)} ({', '.join(f'{v:.3f}' for v in values)})")
    if card.kind == "accuracy_at_least":
        agrees = median >= card.accuracy - card.tolerance
    else:
        agrees = median <= card.accuracy + card.tolerance
    return found, "agrees" if agrees else "disagrees"


def reproduction_frame(metrics: pl.DataFrame, cards: tuple[Card, ...] = CARDS) -> pl.DataFrame:
    """One row per card (COLUMNS): the card, what the sweep found and the result; reproduction.parquet's rows."""
    rows = []
    for card in cards:
        found, result = judge(card, metrics)
        rows.append({"card_id": card.id, "problem": card.problem, "seq_len": card.run.seq_len, "arch": card.run.arch,
                     "tier": card.tier, "source": card.source, "where": card.where, "url": card.url,
                     "claim": card.claim, "source_n": card.source_n, "n": card.n, "tolerance": card.tolerance,
                     "differences": "; ".join(card.differences), "verified": card.verified, "found": found,
                     "result": result})
    schema = {"card_id": pl.String, "problem": pl.String, "seq_len": pl.Int64, "arch": pl.String, "tier": pl.String,
              "source": pl.String, "where": pl.String, "url": pl.String, "claim": pl.String, "source_n": pl.String,
              "n": pl.Int64, "tolerance": pl.Float64, "differences": pl.String, "verified": pl.String,
              "found": pl.String, "result": pl.String}
    return pl.DataFrame(rows, schema=schema)


__all__ = ["BEATS_BASELINE", "COLUMNS", "RESULTS", "STAYS_AT_BASELINE", "card_runs", "judge", "reproduction_frame"]
