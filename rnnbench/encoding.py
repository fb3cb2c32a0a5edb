"""How a dataset file stores a problem's x or y: the encodings a problem declares, exact both ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# float32: the values as they are (real-valued inputs: adding, copy_memory, the digits' pixels; any plugin);
# one_hot: each step's hot index (an all-zero step, i.e. padding or a silent step, stored as -1);
# int: each value an integer in the column's declared range (class indices of "ce" targets, binary bits)
Encoding = Literal["float32", "one_hot", "int"]
ENCODINGS: tuple[str, ...] = ("float32", "one_hot", "int")
# signed first, so that one_hot's -1 fits; the first that holds the range is used
INT_TYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32)


@dataclass(frozen=True)
class Codec:
    """One column's encoding: `width` values per step in memory (float32), `stored_width` per step in the file,
    of `dtype`. `low`, `high`: the range an int column holds (one_hot: -1 and width - 1)."""

    encoding: str
    width: int
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown storage encoding {self.encoding!r}; valid encodings: {', '.join(ENCODINGS)}")
        if self.encoding == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"an int column needs an integer range, got {self.low}..{self.high}")

    @property
    def stored_width(self) -> int:
        return 1 if self.encoding == "one_hot" else self.width

    @property
    def id_range(self) -> tuple[int, int]:
        """The smallest and largest value an integer column may hold."""
        if self.encoding == "one_hot":
            return -1, self.width - 1
        return int(self.low), int(self.high)

    @property
    def dtype(self) -> np.dtype:
        if self.encoding == "float32":
            return np.dtype(np.float32)
        low, high = self.id_range
        for kind in INT_TYPES:
            info = np.iinfo(kind)
            if info.min <= low and high <= info.max:
                return np.dtype(kind)
        raise ValueError(f"no integer type up to int32 holds {low}..{high}")

    def step_bytes(self) -> int:
        return self.stored_width * self.dtype.itemsize

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(n, steps, width) float32 -> (n, steps, stored_width) of `dtype`; ValueError where the values are not
        what the encoding can hold exactly (a problem that declares an encoding its data does not follow)."""
        values = np.asarray(values, dtype=np.float32)
        if self.encoding == "float32":
            return values
        if self.encoding == "one_hot":
            # products with small vectors, not reductions along the short last axis (several times slower in numpy);
            # exact, since every value is 0 or 1 and a step's sums are small integers
            steps = values.reshape(-1, self.width)
            ones = steps @ np.ones(self.width, dtype=np.float32)
            if not (np.all((values == 0) | (values == 1)) and np.all(ones <= 1)):
                raise ValueError(f"one_hot storage: some steps are not one-hot or all zero (width {self.width})")
            hot = steps @ np.arange(self.width, dtype=np.float32)
            ids = np.where(ones == 1, hot, -1).astype(self.dtype)
            return ids.reshape(*values.shape[:-1], 1)
        low, high = self.id_range
        if not np.all((values == np.round(values)) & (values >= low) & (values <= high)):
            raise ValueError(f"int storage: some values are not integers in {low}..{high}")
        return values.astype(self.dtype)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """(n, steps, stored_width) as stored -> (n, steps, width) float32, the arrays the problem generated."""
        if self.encoding == "float32":
            return np.asarray(stored, dtype=np.float32)
        if self.encoding == "int":
            return stored.astype(np.float32)
        ids = stored[..., 0]
        out = np.zeros((*ids.shape, self.width), dtype=np.float32)
        flat, cells = out.reshape(-1, self.width), ids.reshape(-1)
        # a scatter into calloc'ed zeros: one write per step, not `width` comparisons per step. An id out of range
        # (a corrupted file, which validation refuses by its id check) decodes as an all-zero step, not an error
        real = np.flatnonzero((cells >= 0) & (cells < self.width))
        flat[real, cells[real]] = 1.0
        return out
