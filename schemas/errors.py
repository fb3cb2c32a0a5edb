"""The one error every schema raises: names the file, and per failed check the column, check and row count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    column: str
    check: str
    failed_rows: int | None  # None: the check is about the file, not rows
    total_rows: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        rows = ""
        if self.failed_rows is not None:
            rows = f": {self.failed_rows} of {self.total_rows} rows failed"
        detail = f" ({self.detail})" if self.detail else ""
        return f"column '{self.column}', check '{self.check}'{rows}{detail}"


class ValidationError(ValueError):
    """A Parquet file (or table about to be written) broke its schema."""

    def __init__(self, source: str, failures: list[Failure]):
        self.source = source
        self.failures = failures
        lines = [f"{source}: {len(failures)} check(s) failed"] + [f"  - {f}" for f in failures]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        # raised in Ray workers and re-raised in the driver: rebuild from the fields, not the message
        return (type(self), (self.source, self.failures))
