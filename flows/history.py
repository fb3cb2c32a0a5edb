"""The history of the runs under a root: `python -m flows.history ROOT` (also `rnnbench history ROOT`).

Reads every run folder directly under ROOT (a local path or an object-store URI, e.g. the dated outputs of a
scheduled deployment: ROOT/2026-12-01, ROOT/2026-12-02, ...): its summary.parquet and metrics.parquet, checked
against their schemas, and environment.json. Writes ROOT/history.parquet (one row per run and cell, checked) and
ROOT/history.html: per cell its verdict and median at each run, each verdict change with the code version, torch
version and kernel of the two runs, and the time per job at each run. A folder without summary.parquet is not a
run (a run in progress, or the datasets); one whose files break the current schemas is listed as not read.
"""

from __future__ import annotations

import argparse
import json
import sys

from flows import cli
from rnnbench import storage
from rnnbench.history import RunOutputs, history_frame, html_page
from schemas.errors import ValidationError
from schemas.history import History
from schemas.metrics import Metrics, read_validated, validated, write_validated
from schemas.summary import Summary

# No Prefect run and no Ray: reading a few Parquet files per run takes seconds (as flows.report)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.history", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", metavar="ROOT", help="the folder (path or pyarrow filesystem URI) whose subfolders "
                        "are runs, e.g. results/nightly-quick for out: results/nightly-quick/{date}")
    parser.add_argument("--out", metavar="DIR", default=None, help="where history.parquet and history.html go "
                        "(default: ROOT)")
    return parser.parse_args(argv)


def read_runs(root: str) -> tuple[list[RunOutputs], dict[str, str]]:
    """(runs read and checked, {folder: why not read}) of the run folders directly under `root`."""
    runs, skipped = [], {}
    for name in storage.subfolders(root):
        folder = storage.join(root, name)
        if not storage.exists(storage.join(folder, "summary.parquet")):
            continue
        try:
            summary = read_validated(storage.join(folder, "summary.parquet"), Summary)
            metrics = read_validated(storage.join(folder, "metrics.parquet"), Metrics)
            env_path = storage.join(folder, "environment.json")
            environment = json.loads(storage.read_bytes(env_path)) if storage.exists(env_path) else {}
        except (ValidationError, OSError, ValueError) as exc:
            skipped[name] = str(exc).replace("\n", " ")[:300]
            continue
        runs.append(RunOutputs(name, summary, metrics, environment))
    return runs, skipped


def build(root: str, out: str | None = None) -> dict[str, str]:
    """Read, derive and check everything, then write history.parquet and history.html; returns their paths.
    Raises ValueError (nothing written) when no run under `root` could be read."""
    out = out or root
    runs, skipped = read_runs(root)
    if not runs:
        detail = f"; not read: {skipped}" if skipped else ""
        raise ValueError(f"no run under {root!r}: a run is a folder directly under it holding summary.parquet and "
                         f"metrics.parquet (the --out of a finished sweep){detail}")
    frame = validated(history_frame(runs), History, "history (before write)")
    page = html_page(frame, root, skipped)
    return {"history": write_validated(frame, History, storage.join(out, "history.parquet")),
            "page": storage.write_bytes(storage.join(out, "history.html"), page.encode())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        written = build(args.root, args.out)
    except (FileNotFoundError, ValueError) as exc:  # bad input: one line, exit 2, nothing written
        cli.fail(str(exc))
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
