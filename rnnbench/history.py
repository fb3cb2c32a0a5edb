"""The history of scheduled runs: one row per run and cell, the verdict changes between runs, and its HTML page."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import polars as pl

CELL = ["problem", "seq_len", "arch"]
# what the history keeps of each run's cells (one row per run and cell: history.parquet, schemas/history.py)
COLUMNS = ["run", *CELL, "metric_name", "verdict", "median", "n_seeds", "median_train_seconds", "device", "kernel",
           "torch_version", "numerics", "code_version", "previous_run", "previous_verdict", "changed"]
# what a verdict change is shown with: what differed between the two runs may be why it changed
PROVENANCE = ["code_version", "torch_version", "kernel", "device", "numerics"]


@dataclass(frozen=True)
class RunOutputs:
    """What the history reads of one run under ROOT (its folder name, e.g. the date `2026-12-01`): the checked
    summary.parquet and metrics.parquet, and environment.json ({} where absent)."""

    name: str
    summary: pl.DataFrame
    metrics: pl.DataFrame
    environment: dict = field(default_factory=dict)


def _joined(values: pl.Series) -> str | None:
    """The distinct values of a column, sorted and comma-joined (a cell's jobs may have run on several)."""
    distinct = sorted({str(v) for v in values.drop_nulls().to_list()})
    return ", ".join(distinct) or None


def _cell_provenance(metrics: pl.DataFrame) -> pl.DataFrame:
    """Per cell, the device, kernel, torch version and numerics of its reported in-distribution jobs."""
    rows = metrics
    if "role" in rows.columns:
        rows = rows.filter(pl.col("role").is_null() | (pl.col("role") != "tune"))
    rows = rows.filter((pl.col("eval_len") == pl.col("seq_len")) & (pl.col("test_split") == "test"))
    wanted = [c for c in ("device", "kernel", "torch_version", "numerics") if c in rows.columns]
    out = []
    for key, group in rows.group_by(CELL, maintain_order=True):
        out.append({**dict(zip(CELL, key, strict=True)), **{c: _joined(group[c]) for c in wanted}})
    schema = {"problem": pl.String, "seq_len": pl.Int64, "arch": pl.String,
              **{c: pl.String for c in ("device", "kernel", "torch_version", "numerics")}}
    return pl.DataFrame(out, schema=schema)


def run_cells(run: RunOutputs) -> pl.DataFrame:
    """One row per cell of one run: the chosen setting's verdict and median (summary.parquet) with its jobs'
    provenance (metrics.parquet) and the run's code version (environment.json)."""
    chosen = run.summary.filter(pl.col("chosen")) if "chosen" in run.summary.columns else run.summary
    cells = chosen.select(*CELL, "metric_name", "verdict", "median", "n_seeds", "median_train_seconds")
    cells = cells.with_columns(pl.col("seq_len").cast(pl.Int64), pl.col("n_seeds").cast(pl.Int64))
    cells = cells.join(_cell_provenance(run.metrics), on=CELL, how="left")
    code = run.environment.get("code_version") or "unknown"
    return cells.with_columns(pl.lit(run.name).alias("run"), pl.lit(code).alias("code_version"))


def history_frame(runs: list[RunOutputs]) -> pl.DataFrame:
    """Every run's cells, runs in name order (dated folders sort by date), each row with the same cell's verdict in
    the run before it where that run had the cell (`previous_run`, `previous_verdict`) and whether it changed."""
    if not runs:
        raise ValueError("no runs to make a history of: each run is a folder under ROOT holding summary.parquet")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names repeat: {names}")
    ordered = sorted(runs, key=lambda run: run.name)
    frame = pl.concat([run_cells(run) for run in ordered], how="diagonal_relaxed")
    frame = frame.sort(["run", *CELL]).with_columns(
        pl.col("run").shift(1).over(CELL).alias("previous_run"),
        pl.col("verdict").shift(1).over(CELL).alias("previous_verdict"),
    )
    frame = frame.with_columns(
        (pl.col("previous_verdict").is_not_null() & (pl.col("previous_verdict") != pl.col("verdict")))
        .alias("changed"))
    return frame.select(COLUMNS).sort([*CELL, "run"])


def verdict_changes(frame: pl.DataFrame) -> list[dict]:
    """Each change of a cell's verdict from one run to the next, with what each of the two runs ran on."""
    by_key = {(r["run"], r["problem"], r["seq_len"], r["arch"]): r for r in frame.iter_rows(named=True)}
    changes = []
    for row in frame.filter(pl.col("changed")).iter_rows(named=True):
        before = by_key[(row["previous_run"], row["problem"], row["seq_len"], row["arch"])]
        changes.append({"cell": _cell_name(row), "from_run": before["run"], "to_run": row["run"],
                        "from_verdict": before["verdict"], "to_verdict": row["verdict"],
                        **{f"from_{c}": before[c] for c in PROVENANCE}, **{f"to_{c}": row[c] for c in PROVENANCE}})
    return changes


def _cell_name(row: dict) -> str:
    return f"{row['problem']} T={row['seq_len']} {row['arch']}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _table(header: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f"<th scope=\"col\">{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (f"<div class=\"wide\"><table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


STYLE = """
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #ffffff; --line: #d0d0d0; --changed: #fff1c2; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e8; --bg: #161616; --line: #444; --changed: #4a3d00; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 1.5rem auto;
       max-width: 72rem; padding: 0 1rem; }
.wide { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { border: 1px solid var(--line); padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
.changed { background: var(--changed); }
"""


def html_page(frame: pl.DataFrame, root: str, skipped: dict[str, str] | None = None) -> str:
    """The history as one self-contained HTML page (no script, no request outside it): per cell, its verdict and
    median at each run; the verdict changes with what each side ran on; the time per job at each run."""
    runs = sorted(set(frame["run"]))
    cells = frame.select(CELL).unique().sort(CELL).iter_rows(named=True)
    at = {(r["run"], r["problem"], r["seq_len"], r["arch"]): r for r in frame.iter_rows(named=True)}
    verdict_rows = []
    for cell in cells:
        row = [html.escape(_cell_name(cell))]
        for run in runs:
            entry = at.get((run, cell["problem"], cell["seq_len"], cell["arch"]))
            if entry is None:
                row.append("")
                continue
            text = f"{html.escape(entry['verdict'])} ({_number(entry['median'])} {html.escape(entry['metric_name'])})"
            row.append(f"<span class=\"changed\">changed: {text}</span>" if entry["changed"] else text)
        verdict_rows.append(row)
    changes = verdict_changes(frame)
    change_rows = [[html.escape(c["cell"]), html.escape(f"{c['from_run']} → {c['to_run']}"),
                    html.escape(f"{c['from_verdict']} → {c['to_verdict']}"),
                    *(html.escape(f"{c['from_' + p] or '–'} → {c['to_' + p] or '–'}") for p in PROVENANCE)]
                   for c in changes]
    times = (frame.group_by("arch", "run").agg(pl.col("median_train_seconds").median().alias("s"))
             .sort("arch", "run"))
    per_job = {(r["arch"], r["run"]): r["s"] for r in times.iter_rows(named=True)}
    time_rows = [[html.escape(arch), *(_number(per_job.get((arch, run))) for run in runs)]
                 for arch in sorted(set(frame["arch"]))]
    devices = {run: _joined(frame.filter(pl.col("run") == run)["device"]) or "–" for run in runs}
    parts = [f"<h1>History of runs under {html.escape(root)}</h1>",
             f"<p>{len(runs)} runs: {html.escape(', '.join(runs))}. {len(changes)} verdict change(s).</p>",
             "<h2 id=\"verdicts\">Verdict per cell</h2>",
             _table(["cell", *runs], verdict_rows, "verdict (median over seeds, metric) of the chosen setting, "
                                                   "per run"),
             "<h2 id=\"changes\">Verdict changes</h2>",
             _table(["cell", "runs", "verdict", *PROVENANCE], change_rows, "each change from one run to the next, "
                    "with what each run ran on") if changes else "<p>No verdict changed between runs.</p>",
             "<h2 id=\"time\">Time per job</h2>",
             _table(["arch", *(f"{run} ({devices[run]})" for run in runs)], time_rows,
                    "median over cells of each cell's median training seconds per job (device in brackets; "
                    "compare within one device only)")]
    if skipped:
        items = "".join(f"<li>{html.escape(name)}: {html.escape(reason)}</li>" for name, reason in skipped.items())
        parts += ["<h2 id=\"skipped\">Runs not read</h2>", f"<ul>{items}</ul>"]
    body = "\n".join(parts)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            f"content=\"width=device-width, initial-scale=1\"><title>rnnbench history</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
