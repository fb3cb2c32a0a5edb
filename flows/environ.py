"""Environment variables set for a while: os.environ keys changed, and exactly what was there put back after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def environment(updates: dict[str, str]) -> Iterator[None]:
    """Set os.environ keys; put back exactly what was there before (absent keys are removed again)."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
