"""Validating existing dataset files: `python -m flows.validate PATH [PATH ...]`.

With a Prefect API configured (PREFECT_API_URL), the validation is a flow run recorded there
(flows/dataset_flows.py); without one, it runs here in this process, with the same checks
(tasks.dataset_store.check), and nothing is started: Prefect's own fallback for a missing URL, its ephemeral
mode, starts a server subprocess (seconds) for a record nobody would read.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flows import cli, prefect_api
from tasks import dataset_store


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


def validate_all(paths: list[str]) -> list[str | None]:
    """Each file's error message, or None when it is valid, in the order given."""
    if prefect_api.configured():
        from flows.dataset_flows import validate_flow

        with prefect_api.prefect_api():
            return validate_flow(paths)
    # threads, as the flow's default task runner: reading Parquet and checking columns release the GIL
    with ThreadPoolExecutor(max_workers=max(1, min(len(paths), os.cpu_count() or 1))) as pool:
        results = list(pool.map(dataset_store.check, paths))
    for valid, message in results:
        if valid:
            print(message)
    return [None if valid else message for valid, message in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="dataset files (or directories) to validate")
    args = parser.parse_args(argv)
    try:
        paths = expand(args.paths)
    except ValueError as exc:
        cli.fail(str(exc))
    errors = validate_all(paths)
    bad = [e for e in errors if e]
    for message in bad:
        print(message, file=sys.stderr)
    print(f"{len(paths) - len(bad)} valid, {len(bad)} invalid", file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
