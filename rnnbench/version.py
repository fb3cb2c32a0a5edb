"""The code version a sweep records (environment.json): the checkout's git commit, else the installed package's."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path


def code_version() -> str:
    """`git describe --always --dirty` of the checkout this package runs from (a tag where the commit has one, the
    short commit otherwise, `-dirty` with uncommitted changes), so a history of scheduled runs can say which code
    changed a verdict; `rnnbench <version>` where there is no checkout (an image without .git) or no git."""
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty",
                               "--tags"], capture_output=True, text=True, timeout=10, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"rnnbench {metadata.version('rnnbench')}"
    except metadata.PackageNotFoundError:
        return "unknown"
