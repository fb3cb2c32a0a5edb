"""Flow and CLI that validate existing dataset files: `python -m flows.validate PATH [PATH ...]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow

from flows import runtime
from tasks.datasets import validate_dataset


def expand(paths: list[str]) -> list[str]:
    """Directories stand for every .parquet file below them."""
    out: list[str] = []
    for p in paths:
        if "://" not in p and Path(p).is_dir():
            found = sorted(str(f) for f in Path(p).rglob("*.parquet"))
            if not found:
                raise ValueError(f"{p!r} is a directory with no .parquet files")
            out.extend(found)
        else:
            out.append(p)
    return out


@flow(name="validate-datasets")
def validate_flow(paths: list[str]) -> list[str | None]:
    futures = [validate_dataset.submit(p) for p in paths]
    return [f.result() for f in futures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.validate", description=__doc__)
    parser.add_argument("paths", nargs="+", help="dataset files (or directories) to validate")
    args = parser.parse_args(argv)
    try:
        paths = expand(args.paths)
    except ValueError as exc:
        runtime.fail(str(exc))
    with runtime.prefect_api():
        errors = validate_flow(paths)
    bad = [e for e in errors if e]
    for message in bad:
        print(message, file=sys.stderr)
    print(f"{len(paths) - len(bad)} valid, {len(bad)} invalid", file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
