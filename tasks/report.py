"""Prefect tasks that collect job results into validated Parquet, and write the report and its artifacts.

The writing itself is plain functions (`write_tables`, `write_report_files`, `load_outputs`), so that
`python -m flows.report` rebuilds the same files from a finished output without Prefect running.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata

import polars as pl
import pyarrow.fs as pafs
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rnnbench import report, storage
from rnnbench.horizon import HorizonSearch, horizons_from_metrics
from rnnbench.reproduction import reproduction_frame
from rnnbench.verdicts import compare_archs, summarize
from rnnbench.version import code_version
from schemas.comparisons import Comparisons
from schemas.horizons import Horizons, horizons_frame
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, read_validated, validated, write_validated
from schemas.reproduction import Reproduction
from schemas.summary import Summary
from tasks.artifacts import artifact_key, publish_report_link

PACKAGES = ("torch", "numpy", "prefect", "prefect-ray", "ray", "pyarrow", "polars", "pandera", "pydantic")
# what a sweep writes under its output, and what a rebuild reads back
FILES = {"metrics": "metrics.parquet", "curves": "curves.parquet", "summary": "summary.parquet",
         "comparisons": "comparisons.parquet", "reproduction": "reproduction.parquet", "config": "config.json",
         "environment": "environment.json",
         "report_md": "report.md", "report_html": "report.html", "horizons": "horizons.parquet"}


def environment(devices: list[str], nodes: list[str]) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "code_version": code_version(),  # read by the history of scheduled runs (rnnbench.history)
            "devices": sorted(set(devices)), "nodes": sorted(set(nodes))}


def derived(metrics: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, comparisons) of checked metrics, each checked against its schema (nothing is written here)."""
    summary = validated(summarize(metrics), Summary, "summary (before write)")
    comparisons = validated(compare_archs(metrics, summary), Comparisons, "comparisons (before write)")
    return summary, comparisons


def write_tables(summary: pl.DataFrame, comparisons: pl.DataFrame, out: str,
                 metrics: pl.DataFrame | None = None) -> dict:
    """summary.parquet and comparisons.parquet (and, given the metrics, reproduction.parquet: one row per
    reproduction card), each validated and written atomically."""
    # checked before the first file is written, as the others were (derived)
    cards = None if metrics is None else validated(reproduction_frame(metrics), Reproduction,
                                                   "reproduction (before write)")
    paths = {"summary": write_validated(summary, Summary, storage.join(out, FILES["summary"])),
             "comparisons": write_validated(comparisons, Comparisons, storage.join(out, FILES["comparisons"]))}
    if cards is not None:
        paths["reproduction"] = write_validated(cards, Reproduction, storage.join(out, FILES["reproduction"]))
    return paths


def searches_of(config: dict) -> dict[str, HorizonSearch]:
    """problem -> horizon search, from a config as config.json holds it ({} for a grid sweep or none)."""
    return {g["problem"]: HorizonSearch(**g["horizon"]) for g in config.get("grids", [])
            if isinstance(g, dict) and g.get("horizon")}


def write_horizons_file(metrics: pl.DataFrame, searches: dict[str, HorizonSearch], out: str) -> str:
    """horizons.parquet: each (problem, arch)'s horizon bracket, from a search's rounds or a grid's lengths
    (rnnbench.horizon.horizons_from_metrics), validated and written atomically."""
    frame = horizons_frame(horizons_from_metrics(metrics, searches))
    return write_validated(frame, Horizons, storage.join(out, FILES["horizons"]))


def read_horizons(out: str) -> pl.DataFrame | None:
    """OUT/horizons.parquet, validated; None where the output has none (written before horizons existed)."""
    path = storage.join(out, FILES["horizons"])
    return read_validated(path, Horizons) if storage.exists(path) else None


@task(name="write-horizons")
def write_horizons(metrics_path: str, out: str, searches: dict[str, HorizonSearch]) -> str:
    return write_horizons_file(read_validated(metrics_path, Metrics), searches, out)


def write_report_files(built: report.Report, out: str) -> dict:
    """plots/*.png, report.md and the self-contained report.html, each written atomically; figures an earlier
    report of this output drew but this one does not (e.g. fewer lengths now) are removed, as they would
    mislead."""
    for name, data in built.images.items():
        storage.write_bytes(storage.join(out, "plots", name), data)
    fs, plots = storage.resolve(storage.join(out, "plots"))
    for info in fs.get_file_info(pafs.FileSelector(plots, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".png") and info.base_name not in built.images:
            fs.delete_file(info.path)
    return {"report_md": storage.write_bytes(storage.join(out, FILES["report_md"]), built.markdown().encode()),
            "report_html": storage.write_bytes(storage.join(out, FILES["report_html"]), built.html().encode())}


def load_outputs(out: str) -> dict:
    """What a report is built from, read back from a sweep's output: metrics and curves (validated on read), its
    config and environment (config.json, environment.json; {} and this machine's environment where absent, e.g.
    for outputs merged by hand). Raises FileNotFoundError naming a missing file, ValidationError a bad one."""
    for key in ("metrics", "curves"):
        if not storage.exists(storage.join(out, FILES[key])):
            raise FileNotFoundError(f"{storage.join(out, FILES[key])} does not exist: a report is rebuilt from "
                                    f"OUT/{FILES['metrics']} and OUT/{FILES['curves']}, which a sweep writes")
    metrics = read_validated(storage.join(out, FILES["metrics"]), Metrics)
    curves = read_validated(storage.join(out, FILES["curves"]), Curves)
    documents = {}
    for key in ("config", "environment"):
        path = storage.join(out, FILES[key])
        try:
            documents[key] = json.loads(storage.read_bytes(path)) if storage.exists(path) else None
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if documents[key] is not None and not isinstance(documents[key], dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(documents[key]).__name__}")
    env = documents["environment"]
    if env is None:
        env = environment(metrics["device"].drop_nulls().to_list(), metrics["node"].to_list())
    return {"metrics": metrics, "curves": curves, "config": documents["config"] or {}, "environment": env}


@task(name="write-metrics")
def write_metrics(rows: list[dict], curve_rows: list[dict], out: str) -> dict:
    metrics = metrics_frame(rows).sort("problem", "seq_len", "arch", "lr", "seed", "eval_len", "test_split")
    curves = curves_frame(curve_rows).sort("run_id", "step")
    metrics = validated(metrics, Metrics, "metrics rows (before write)")
    summary, comparisons = derived(metrics)  # derived from checked rows only
    paths = {"metrics": write_validated(metrics, Metrics, storage.join(out, FILES["metrics"])),
             "curves": write_validated(curves, Curves, storage.join(out, FILES["curves"])),
             **write_tables(summary, comparisons, out, metrics)}
    get_run_logger().info("wrote %s (%d rows), %s (%d cells), %s (%d pairs) and %s (%d points)", paths["metrics"],
                          metrics.height, paths["summary"], summary.height, paths["comparisons"],
                          comparisons.height, paths["curves"], curves.height)
    return paths


@task(name="write-report")
def write_report(metrics_path: str, curves_path: str, out: str, config: dict, wall_seconds: float) -> dict:
    """report.md (+ plots/) and the self-contained report.html, plus the findings and per-cell table artifacts;
    environment.json keeps what the report says of the environment, so a rebuild (flows.report) says the same."""
    metrics = read_validated(metrics_path, Metrics)
    curves = read_validated(curves_path, Curves)
    env = environment(metrics["device"].drop_nulls().to_list(), metrics["node"].to_list())
    env["wall_seconds"] = round(wall_seconds, 1)
    built = report.build(metrics, curves, config, env, horizons=read_horizons(out))
    storage.write_bytes(storage.join(out, FILES["environment"]), json.dumps(env, indent=2, sort_keys=True).encode())
    paths = write_report_files(built, out)
    create_markdown_artifact(
        key=artifact_key("summary"),
        markdown="## rnnbench findings\n\n" + "\n".join(f"- {report.md_text(f)}" for f in built.findings)
        + f"\n\nFull report: {report.md_text(paths['report_html'])}",
        description="Findings generated from metrics.parquet",
    )
    # the per-cell table artifact: what a reader needs to judge a cell, small enough for the API database
    columns = [c for c in ("problem", "seq_len", "arch", "lr", "n_seeds", "n_ok", "n_solved", "median", "ci_low",
                           "ci_high", "ci_level", "baseline", "score", "verdict_text", "params",
                           "median_train_seconds") if c in built.summary.columns]
    table = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}
             for row in built.summary.select(columns).iter_rows(named=True)]
    create_table_artifact(key=artifact_key("table"), table=json.loads(json.dumps(table, default=str)),
                          description="Per cell (problem, T, arch, settings): median test metric over seeds with the "
                                      "order-statistic interval for the median (ci_level: its probability of "
                                      "covering it), baseline, score and verdict")
    publish_report_link(paths["report_html"])
    return {**paths, "findings": built.findings}


__all__ = ["FILES", "derived", "environment", "load_outputs", "read_horizons", "searches_of",
           "write_horizons", "write_horizons_file", "write_metrics", "write_report", "write_report_files",
           "write_tables"]
