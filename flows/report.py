"""Rebuild summary, comparisons and the report of a finished output: `python -m flows.report OUT`.

Reads OUT/metrics.parquet and OUT/curves.parquet (validated on read), with OUT/config.json and
OUT/environment.json where the sweep wrote them, and writes summary.parquet, comparisons.parquet, report.md,
plots/ and report.html as the sweep does: after a rule changes, or for outputs merged by hand. Everything is
read, derived and checked before the first file is written, and each file is written atomically.
"""

from __future__ import annotations

import argparse
import sys

import pyarrow.fs as pafs

from flows import cli
from rnnbench import report, storage
from tasks.report import (
    derived,
    load_outputs,
    read_horizons,
    searches_of,
    write_horizons_file,
    write_report_files,
    write_tables,
)

# No Prefect run and no Ray: this is pure computation on files (seconds), so it needs neither an API server nor
# workers; the Prefect tasks of a sweep call the same functions.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT", help="a sweep's output root (path or pyarrow filesystem URI), as given "
                        "to flows.compare --out")
    return parser.parse_args(argv)


def check_root(out: str) -> None:
    """A local output root must be an existing directory (a URI's root is checked through its files)."""
    fs, path = storage.resolve(out)
    if "://" not in out and fs.get_file_info(path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"output directory {out!r} does not exist (or is not a directory): give the --out "
                                "of a finished sweep")


def read_inputs(out: str) -> dict:
    """Everything a rebuild needs, read and checked: raises FileNotFoundError or ValueError (ValidationError
    included) naming the bad path, before anything is written."""
    check_root(out)
    return load_outputs(out)


def rebuild(out: str, inputs: dict) -> dict:
    """Derive summary, comparisons and the report (each checked), then write them; returns the paths written."""
    summary, comparisons = derived(inputs["metrics"])
    tables = write_tables(summary, comparisons, out, inputs["metrics"])
    # horizons too: from the metrics and the search settings config.json records (a grid's where it has none)
    tables["horizons"] = write_horizons_file(inputs["metrics"], searches_of(inputs["config"]), out)
    built = report.build(inputs["metrics"], inputs["curves"], inputs["config"], inputs["environment"],
                         horizons=read_horizons(out))
    return {**tables, **write_report_files(built, out)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        inputs = read_inputs(args.out)
    except (FileNotFoundError, ValueError) as exc:  # bad input: one line, exit 2, nothing written
        cli.fail(str(exc))
    for name, path in rebuild(args.out, inputs).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
