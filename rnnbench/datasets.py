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
from rnnbench.encoding import Codec
from rnnbench.problems import PROBLEMS, check_min_len, get_problem

Split = Literal["train", "test", "val"]
# the position is the split's seed-stream key: "val" is appended so train and test files keep their bytes
SPLITS: tuple[str, ...] = ("train", "test", "val")
# 2: min_len metadata and the optional `length` column (variable-length sequences); 3: x and y in the encodings the
# problem declares (Problem.storage: token ids, class indices as the smallest int type; real values as float32),
# each row's values one fixed-size binary value
FORMAT_VERSION = 3
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


class Dataset:
    """A dataset as its file stores it: x and y in the problem's encodings (`codecs`; None: float32 as given), so a
    job's memory and the dataset cache hold the compact arrays. `x`, `y` expand the whole split to float32 (test
    and validation splits); training expands only its batch (`rows`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, meta: dict[str, str], lengths: np.ndarray | None = None,
                 codecs: Mapping[str, Codec] | None = None) -> None:
        self.stored_x, self.stored_y, self.meta, self.lengths = x, y, meta, lengths  # lengths: int32 true lengths
        self.codecs = codecs

    def __len__(self) -> int:
        return len(self.stored_x)

    def _decode(self, column: str, stored: np.ndarray) -> np.ndarray:
        return stored if self.codecs is None else self.codecs[column].decode(stored)

    @property
    def x(self) -> np.ndarray:
        return self._decode("x", self.stored_x)

    @property
    def y(self) -> np.ndarray:
        return self._decode("y", self.stored_y)

    def rows(self, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) float32 of these rows only."""
        return self._decode("x", self.stored_x[rows]), self._decode("y", self.stored_y[rows])

    @property
    def nbytes(self) -> int:
        return self.stored_x.nbytes + self.stored_y.nbytes + (0 if self.lengths is None else self.lengths.nbytes)

    def mask(self, problem, seq_len: int, chunk_bytes: int = 64 * 2**20) -> np.ndarray:
        """problem.mask_for of the whole split, its inputs expanded a chunk of rows at a time (flip_flop reads them)."""
        step = max(1, chunk_bytes // (4 * self.stored_x.shape[1] * problem.input_size))
        parts = []
        for start in range(0, max(1, len(self)), step):
            part = slice(start, start + step)
            lengths = None if self.lengths is None else self.lengths[part]
            mask = problem.mask_for(seq_len, lengths, self.rows(part)[0])
            if mask.ndim == 1:
                return mask  # alike for every sequence
            parts.append(mask)
        return np.concatenate(parts)


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


# a file is generated, and encoded, this many bytes of float32 (x and y as the problem generates them) at a time:
# a token problem's compact file can hold far more rows than its one-hot floats would fit in memory (mqar at
# T = 512: 128,000 rows are 130 MB stored and 17 GB as floats)
GENERATE_CHUNK_BYTES = 256 * 2**20


def generate_stored(spec: DatasetSpec, chunk_rows: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, y, lengths or None) as the file stores them (the problem's encodings), generated `chunk_rows` rows at a
    time (default: GENERATE_CHUNK_BYTES of floats). A file of one chunk is generate_arrays(spec), encoded; each
    further chunk draws from its own stream, spawned from the file's (deterministic: same spec, same arrays)."""
    spec.check()
    problem = spec.problem_def()
    codecs = problem.codecs()
    if chunk_rows is None:
        row = 4 * (problem.input_steps(spec.seq_len) * problem.input_size
                   + problem.target_steps(spec.seq_len) * problem.target_width)
        chunk_rows = max(1, GENERATE_CHUNK_BYTES // row)
    if spec.n_rows <= chunk_rows:
        x, y, lengths = generate_arrays(spec)
        return codecs["x"].encode(x), codecs["y"].encode(y), lengths
    sizes = [min(chunk_rows, spec.n_rows - start) for start in range(0, spec.n_rows, chunk_rows)]
    streams = [np.random.default_rng(seq) for seq in spec.rng().bit_generator.seed_seq.spawn(len(sizes))]
    parts = []
    for size, rng in zip(sizes, streams, strict=True):
        if spec.variable:
            x, y, lengths = problem.generate_variable(size, spec.seq_len, spec.min_len, rng)
        else:
            x, y = problem.generate_split(size, spec.seq_len, spec.split, rng)
            lengths = None
        parts.append((codecs["x"].encode(x), codecs["y"].encode(y), lengths))
    x, y, lengths = (None if part[0] is None else np.concatenate(part) for part in zip(*parts, strict=True))
    return x, y, lengths


def content_hash(ids: np.ndarray, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> str:
    """Over the arrays as stored (x and y in the file's encodings)."""
    # sha256: hardware-accelerated here, 2.7x faster than blake2b on 800 MB
    digest = hashlib.sha256()
    for array in (ids, x, y) if lengths is None else (ids, x, y, lengths):
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def _sequence_column(values: np.ndarray) -> pa.FixedSizeBinaryArray:
    """(n, steps, width) as stored -> fixed_size_binary[steps * width * itemsize]: each row's values as one binary
    value (native byte order: little-endian on x86 and ARM; row-major), zero copy.

    Not a list of values: Parquet writes a definition and a repetition level for every value of a list (and the
    nested list-of-lists layout was 3x slower still), and has no 8-bit type, so it would widen each token id to 4
    bytes. Here, reading a 1 GB file (adding, T = 1000) peaked at 3.1 GB of memory as lists and 2.1 GB so, and
    200,000 rows of 100 int8 bits were written in 0.05 s against 0.85 s as lists of ints."""
    n, steps, width = values.shape
    values = np.ascontiguousarray(values)
    return pa.FixedSizeBinaryArray.from_buffers(column_type(steps, width, values.dtype), n,
                                                [None, pa.py_buffer(values)])


def column_type(steps: int, width: int, dtype) -> pa.DataType:
    """The Arrow type of a stored sequence column of (steps, width) values of `dtype` (see _sequence_column)."""
    return pa.binary(steps * width * np.dtype(dtype).itemsize)


def to_table(spec: DatasetSpec, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None,
             encoded: bool = False) -> pa.Table:
    """The file of generated float32 arrays: x and y stored in the problem's declared encodings (`encoded`: x and y
    are already the stored arrays)."""
    problem = spec.problem_def()
    codecs = problem.codecs()
    ids = np.arange(spec.n_rows, dtype=np.int64)
    if encoded:
        x, y = np.asarray(x, dtype=codecs["x"].dtype), np.asarray(y, dtype=codecs["y"].dtype)
        x_shape, y_shape = f"{x.shape[1]},{codecs['x'].width}", f"{y.shape[1]},{codecs['y'].width}"
    else:
        x_shape, y_shape = f"{x.shape[1]},{x.shape[2]}", f"{y.shape[1]},{y.shape[2]}"
        x, y = codecs["x"].encode(x), codecs["y"].encode(y)
    meta = {
        **{k: str(v) for k, v in asdict(spec).items() if k != "options"},
        # only where the problem has settings: a file of any other problem keeps the metadata it had
        **({"problem_options": spec.options_text} if spec.options else {}),
        "generator_version": str(problem.generator_version),
        "format_version": str(FORMAT_VERSION),
        "content_hash": content_hash(ids, x, y, lengths),
        # the float32 shapes the problem generated (and decoding gives back), not the stored ones
        "x_shape": x_shape,
        "y_shape": y_shape,
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


def sequences(column: pa.ChunkedArray | pa.Array, shape: tuple[int, int], dtype=np.float32) -> np.ndarray:
    """A stored sequence column (column_type) -> (n, steps, width) of dtype (zero copy if one chunk)."""
    if isinstance(column, pa.ChunkedArray):
        # combine_chunks copies even a single chunk: a file read whole is one chunk, viewed where it lies
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    want = column_type(*shape, dtype)
    if column.type != want:
        raise ValueError(f"expected {want}, got {column.type}")
    if column.null_count:
        raise ValueError(f"{column.null_count} null rows")
    n, row = len(column), want.byte_width
    flat = np.frombuffer(column.buffers()[1], dtype=np.uint8, count=n * row, offset=column.offset * row)
    return flat.view(dtype).reshape(n, *shape)


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
