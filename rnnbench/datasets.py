"""Dataset specs, seeded generation, and Parquet files: one file per (problem, seq_len, split, data seed, rows)."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rnnbench import storage
from rnnbench.archs.spec import Value
from rnnbench.problems import PROBLEMS, check_min_len, get_problem

Split = Literal["train", "test", "val"]
# the position is the split's seed-stream key: "val" is appended so train and test files keep their bytes
SPLITS: tuple[str, ...] = ("train", "test", "val")
FORMAT_VERSION = 2  # 2: min_len metadata and the optional `length` column (variable-length sequences)
META_PREFIX = "rnnbench."
META_KEYS = (
    "problem", "seq_len", "split", "seed", "n_rows", "generator_version",
    "format_version", "content_hash", "x_shape", "y_shape", "min_len",
)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a dataset file's bytes."""

    problem: str
    seq_len: int
    split: Split
    seed: int
    n_rows: int
    # 0: every sequence has seq_len steps; else lengths ~ U{min_len..seq_len}, zero-padded to seq_len
    min_len: int = 0
    # the problem's own settings (group_word's group, ...), every one resolved, sorted by name: () for a problem
    # without any. Given as a mapping or pairs, some or none: the defaults fill the rest, so that one setting
    # always names one file
    options: tuple[tuple[str, Value], ...] = ()

    def __post_init__(self) -> None:
        given = dict(self.options.items() if isinstance(self.options, Mapping) else self.options)
        if self.problem in PROBLEMS and PROBLEMS[self.problem].problem_options:
            given = get_problem(self.problem, given).option_values()
        object.__setattr__(self, "options", tuple(sorted(given.items())))

    @property
    def variable(self) -> bool:
        return self.min_len > 0

    def problem_def(self):
        """The problem with this file's settings."""
        return get_problem(self.problem, dict(self.options))

    @property
    def options_text(self) -> str:
        return options_text(self.options)

    def check(self) -> None:
        """Raise ValueError naming the bad value and what is allowed."""
        problem = self.problem_def()
        problem.check_seq_len(self.seq_len)
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; valid splits: {', '.join(SPLITS)}")
        if isinstance(self.n_rows, bool) or not isinstance(self.n_rows, int) or self.n_rows <= 0:
            raise ValueError(f"number of rows must be a positive integer, got {self.n_rows!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        problem.check_rows(self.n_rows, self.split)
        if self.variable:
            check_min_len(self.problem, self.min_len, self.seq_len, dict(self.options))

    @property
    def filename(self) -> str:
        lengths = f"-len{self.min_len}to{self.seq_len}" if self.variable else ""
        setting = f"{self.options_text}/" if self.options else ""
        return (f"{self.problem}/{setting}T{self.seq_len}/{self.split}-seed{self.seed}-n{self.n_rows}{lengths}"
                ".parquet")

    def path(self, root: str) -> str:
        return storage.join(root, *self.filename.split("/"))

    def rng(self) -> np.random.Generator:
        """The generator for this file. Train and test differ in the spawn key, so their streams are
        disjoint for every seed; a stable crc32 of the problem name keeps problems apart too."""
        key = (zlib.crc32(self.problem.encode()), self.seq_len, SPLITS.index(self.split))
        if self.variable:
            key += (self.min_len,)
        if self.options:
            # each setting its own stream: flip_flop's held-out p_i = 0.98 test set shares no draws with p_i = 0.8's
            key += (zlib.crc32(self.options_text.encode()),)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))


def options_text(options: Iterable[tuple[str, Value]]) -> str:
    """Settings as a file names them: 'group=a5', 'p_i=0.98', 'pairs=8,queries=8,vocab=64' (sorted by name, floats
    as Python spells them back); '' for none."""
    return ",".join(f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in sorted(options))


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray
    meta: dict[str, str]
    lengths: np.ndarray | None = None  # int32 true lengths of variable-length datasets


def generate(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a fixed-length spec."""
    x, y, lengths = generate_arrays(spec)
    if lengths is not None:
        raise ValueError("variable-length spec: use generate_arrays, which also returns the lengths")
    return x, y


def generate_arrays(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, y, lengths or None)."""
    spec.check()
    problem = spec.problem_def()
    if spec.variable:
        return problem.generate_variable(spec.n_rows, spec.seq_len, spec.min_len, spec.rng())
    # the split name too: a problem with a fixed pool of examples (sequential_digits) maps it to its own images
    x, y = problem.generate_split(spec.n_rows, spec.seq_len, spec.split, spec.rng())
    return x, y, None


def content_hash(ids: np.ndarray, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> str:
    # sha256: hardware-accelerated here, 2.7x faster than blake2b on 800 MB
    digest = hashlib.sha256()
    for array in (ids, x, y) if lengths is None else (ids, x, y, lengths):
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def _sequence_column(values: np.ndarray) -> pa.FixedSizeListArray:
    """(n, steps, width) float32 -> fixed_size_list<float32>[steps * width], row-major, zero copy.

    One list level, not a list of lists: Parquet writes repetition levels per nesting level, and the
    nested layout made writing 2e8 values 3x and reading 2.5x slower here (benchmarks/datasets_speed.py)."""
    n, steps, width = values.shape
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, steps * width)


def to_table(spec: DatasetSpec, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> pa.Table:
    problem = spec.problem_def()
    ids = np.arange(spec.n_rows, dtype=np.int64)
    meta = {
        **{k: str(v) for k, v in asdict(spec).items() if k != "options"},
        # only where the problem has settings: a file of any other problem keeps the metadata it had
        **({"problem_options": spec.options_text} if spec.options else {}),
        "generator_version": str(problem.generator_version),
        "format_version": str(FORMAT_VERSION),
        "content_hash": content_hash(ids, x, y, lengths),
        "x_shape": f"{x.shape[1]},{x.shape[2]}",
        "y_shape": f"{y.shape[1]},{y.shape[2]}",
    }
    columns = {"id": pa.array(ids), "x": _sequence_column(x), "y": _sequence_column(y)}
    if lengths is not None:
        columns["length"] = pa.array(np.asarray(lengths, dtype=np.int32))
    table = pa.table(columns)
    return table.replace_schema_metadata({(META_PREFIX + k).encode(): v.encode() for k, v in meta.items()})


def table_meta(table: pa.Table) -> dict[str, str]:
    raw = table.schema.metadata or {}
    return {
        k.decode()[len(META_PREFIX):]: v.decode()
        for k, v in raw.items()
        if k.decode().startswith(META_PREFIX)
    }


def parse_shape(text: str) -> tuple[int, int]:
    steps, width = (int(v) for v in text.split(","))
    return steps, width


def sequences(column: pa.ChunkedArray | pa.Array, shape: tuple[int, int]) -> np.ndarray:
    """fixed_size_list<float32>[steps * width] column -> (n, steps, width) float32 (zero copy if one chunk)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_fixed_size_list(column.type) or column.type.list_size != shape[0] * shape[1]:
        raise ValueError(f"expected fixed_size_list<float>[{shape[0] * shape[1]}], got {column.type}")
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), *shape)


def write_table(table: pa.Table, location: str) -> str:
    """Atomic Parquet write. Random floats do not compress, so no codec: it would only cost time."""

    def _write(fs, tmp):
        with fs.open_output_stream(tmp) as out:
            pq.write_table(
                table, out, compression="none", use_dictionary=False, write_statistics=False,
                row_group_size=max(1, min(len(table), 1 << 20)),
            )

    return storage.atomic_write(location, _write)


def read_table(location: str) -> pa.Table:
    fs, path = storage.resolve(location)
    return pq.read_table(path, filesystem=fs)
