"""Prefect tasks that collect job results into validated Parquet, and write the report and its artifacts."""

from __future__ import annotations

import json
import platform
from importlib import metadata

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rnnbench import report, storage
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, write_validated

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
    metrics = metrics_frame(rows).sort("problem", "seq_len", "arch", "seed")
    curves = curves_frame(curve_rows).sort("run_id", "step")
    paths = {"metrics": write_validated(metrics, Metrics, storage.join(out, "metrics.parquet")),
             "curves": write_validated(curves, Curves, storage.join(out, "curves.parquet"))}
    get_run_logger().info("wrote %s (%d rows) and %s (%d points)", paths["metrics"], metrics.height, paths["curves"],
                          curves.height)
    return paths


@task(name="write-report")
def write_report(metrics_path: str, curves_path: str, out: str, config: dict, wall_seconds: float) -> dict:
    from schemas.metrics import read_validated

    metrics = read_validated(metrics_path, Metrics)
    curves = read_validated(curves_path, Curves)
    env = environment(metrics["device"].drop_nulls().to_list(), metrics["node"].to_list())
    env["wall_seconds"] = round(wall_seconds, 1)
    doc, images, summary = report.build(metrics, curves, config, env)
    for name, data in images.items():
        storage.write_bytes(storage.join(out, "plots", name), data)
    storage.write_bytes(storage.join(out, "report.md"), doc.markdown().encode())
    storage.write_bytes(storage.join(out, "report.html"), doc.html(images, "rnnbench report").encode())
    findings = next(b[1] for b in doc.blocks if b[0] == "ul")
    create_markdown_artifact(
        key="rnnbench-summary",
        markdown="## rnnbench findings\n\n" + "\n".join(f"- {f}" for f in findings)
        + f"\n\nFull report: {storage.join(out, 'report.html')}",
        description="Findings generated from metrics.parquet",
    )
    table = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()
              if k in ("problem", "seq_len", "arch", "seeds", "ok", "mean", "low", "high", "baseline", "score",
                       "frac_solved", "verdict", "params", "train_seconds")} for row in summary]
    create_table_artifact(key="rnnbench-table", table=json.loads(json.dumps(table, default=str)),
                          description="Per (problem, seq_len, arch): mean test metric and 95% interval over seeds")
    return {"report_md": storage.join(out, "report.md"), "report_html": storage.join(out, "report.html"),
            "findings": findings}


__all__ = ["environment", "write_metrics", "write_report"]
