"""Prefect tasks that collect job results into validated Parquet, and write the report and its artifacts."""

from __future__ import annotations

import json
import platform
from importlib import metadata

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rnnbench import report, storage
from rnnbench.verdicts import summarize
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, validated, write_validated
from schemas.summary import Summary

PACKAGES = ("torch", "numpy", "prefect", "prefect-ray", "ray", "pyarrow", "polars", "pandera", "pydantic")


def environment(devices: list[str], nodes: list[str]) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "devices": sorted(set(devices)), "nodes": sorted(set(nodes))}


@task(name="write-metrics")
def write_metrics(rows: list[dict], curve_rows: list[dict], out: str) -> dict:
    metrics = metrics_frame(rows).sort("problem", "seq_len", "arch", "lr", "seed", "eval_len")
    curves = curves_frame(curve_rows).sort("run_id", "step")
    metrics = validated(metrics, Metrics, "metrics rows (before write)")
    summary = summarize(metrics)  # derived from checked rows only
    paths = {"metrics": write_validated(metrics, Metrics, storage.join(out, "metrics.parquet")),
             "curves": write_validated(curves, Curves, storage.join(out, "curves.parquet")),
             "summary": write_validated(summary, Summary, storage.join(out, "summary.parquet"))}
    get_run_logger().info("wrote %s (%d rows), %s (%d cells) and %s (%d points)", paths["metrics"], metrics.height,
                          paths["summary"], summary.height, paths["curves"], curves.height)
    return paths


@task(name="write-report")
def write_report(metrics_path: str, curves_path: str, out: str, config: dict, wall_seconds: float) -> dict:
    """report.md (+ plots/) and the self-contained report.html, plus the findings and per-cell table artifacts."""
    from schemas.metrics import read_validated

    metrics = read_validated(metrics_path, Metrics)
    curves = read_validated(curves_path, Curves)
    env = environment(metrics["device"].drop_nulls().to_list(), metrics["node"].to_list())
    env["wall_seconds"] = round(wall_seconds, 1)
    built = report.build(metrics, curves, config, env)
    for name, data in built.images.items():
        storage.write_bytes(storage.join(out, "plots", name), data)
    # figures an earlier report of this --out drew but this one does not (e.g. fewer lengths now) would mislead
    import pyarrow.fs as pafs

    fs, plots = storage.resolve(storage.join(out, "plots"))
    for info in fs.get_file_info(pafs.FileSelector(plots, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".png") and info.base_name not in built.images:
            fs.delete_file(info.path)
    storage.write_bytes(storage.join(out, "report.md"), built.markdown().encode())
    storage.write_bytes(storage.join(out, "report.html"), built.html().encode())
    create_markdown_artifact(
        key="rnnbench-summary",
        markdown="## rnnbench findings\n\n" + "\n".join(f"- {report.md_text(f)}" for f in built.findings)
        + f"\n\nFull report: {report.md_text(storage.join(out, 'report.html'))}",
        description="Findings generated from metrics.parquet",
    )
    # the per-cell table artifact: what a reader needs to judge a cell, small enough for the API database
    columns = [c for c in ("problem", "seq_len", "arch", "lr", "n_seeds", "n_ok", "n_solved", "median", "ci_low",
                           "ci_high", "baseline", "score", "verdict_text", "params", "median_train_seconds")
               if c in built.summary.columns]
    table = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}
             for row in built.summary.select(columns).iter_rows(named=True)]
    create_table_artifact(key="rnnbench-table", table=json.loads(json.dumps(table, default=str)),
                          description="Per cell (problem, T, arch, settings): median test metric over seeds with its "
                                      "95% bootstrap interval, baseline, score and verdict")
    return {"report_md": storage.join(out, "report.md"), "report_html": storage.join(out, "report.html"),
            "findings": built.findings}


__all__ = ["environment", "write_metrics", "write_report"]
