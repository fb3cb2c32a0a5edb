"""Validated dataset files (above the contracts): build (generate, validate, write atomically, reuse) and load."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from rnnbench import datasets, storage
from schemas.dataset import file_problem, validate_table
from schemas.errors import ValidationError

# Every arch of a sweep trains on the same files and a worker process runs many jobs, so a file read and
# validated once is kept while its size and modification time are unchanged (a rewritten file is read and
# validated again). Bounded, least recently used first out: big datasets belong to jobs that train for long.
CACHE_BYTES = 128 * 2**20
# files one process builds at once: generation and Parquet encoding release the GIL, and this machine has two cores
BUILD_THREADS = 2
# path -> (file stamp, spec it was checked against, dataset); one entry per path, so a rewrite replaces it
_cache: OrderedDict[str, tuple[tuple, datasets.DatasetSpec | None, datasets.Dataset]] = OrderedDict()


@dataclass(frozen=True)
class BuildResult:
    path: str
    reused: bool
    seconds: float


def build(spec: datasets.DatasetSpec, root: str, regenerate: bool = False) -> BuildResult:
    """Make sure a valid file for `spec` exists under `root`; a valid existing file is reused, not rebuilt.
    An invalid existing file is an error unless `regenerate` (the caller must ask for it explicitly)."""
    start = time.perf_counter()
    path = spec.path(root)
    if storage.exists(path) and not regenerate:
        load(path, expected=spec)
        return BuildResult(path, True, time.perf_counter() - start)
    # generated and encoded a chunk at a time: a token problem's file never exists whole as one-hot floats
    table = datasets.to_table(spec, *datasets.generate_stored(spec), encoded=True)
    meta = validate_table(table, source=f"{path} (before write)", expected=spec)
    datasets.write_table(table, path)
    # the jobs this process runs next read this very file: they get what was validated
    _remember(path, storage.stamp(path), spec, _dataset(table, meta))
    return BuildResult(path, False, time.perf_counter() - start)


def load(path: str, expected: datasets.DatasetSpec | None = None) -> datasets.Dataset:
    """Read and validate a dataset file, or return this process's copy of it if the file is unchanged since;
    never returns invalid data. The arrays are read-only (shared by every caller)."""
    # stamped before reading: a file replaced while it is read is then read again next time, never cached as new
    stamp = storage.stamp(path)
    entry = _cache.get(path)
    if entry is not None and entry[:2] == (stamp, expected):
        _cache.move_to_end(path)
        return entry[2]
    dataset = _read(path, expected)
    _remember(path, stamp, expected, dataset)
    return dataset


def check(path: str) -> tuple[bool, str]:
    """(True, 'PATH: valid (problem T=... split, N rows)') when the file is a valid dataset, else (False, the full
    message naming file, column, check and failed rows)."""
    try:
        meta = load(path).meta
    except ValidationError as err:
        return False, str(err)
    return True, f"{path}: valid ({meta['problem']} T={meta['seq_len']} {meta['split']}, {meta['n_rows']} rows)"


def _remember(path: str, stamp: tuple | None, expected: datasets.DatasetSpec | None,
              dataset: datasets.Dataset) -> None:
    _cache.pop(path, None)
    if stamp is None or _nbytes(dataset) > CACHE_BYTES:
        return
    for array in (dataset.stored_x, dataset.stored_y, dataset.lengths):
        if array is not None:
            array.flags.writeable = False  # shared by every later caller: none may change it
    _cache[path] = (stamp, expected, dataset)
    while sum(_nbytes(d) for _, _, d in _cache.values()) > CACHE_BYTES:
        _cache.popitem(last=False)


def _nbytes(dataset: datasets.Dataset) -> int:
    return dataset.nbytes  # as stored: token ids, not one-hot floats


def _read(path: str, expected: datasets.DatasetSpec | None) -> datasets.Dataset:
    try:
        table = datasets.read_table(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(path, [_unreadable(exc)]) from None
    return _dataset(table, validate_table(table, source=path, expected=expected))


def _dataset(table, meta: dict[str, str]) -> datasets.Dataset:
    codecs = file_problem(meta).codecs()
    shapes = {column: datasets.parse_shape(meta[f"{column}_shape"]) for column in ("x", "y")}
    x, y = (datasets.sequences(table.column(column), (shapes[column][0], codecs[column].stored_width),
                               codecs[column].dtype) for column in ("x", "y"))
    lengths = table.column("length").to_numpy() if "length" in table.column_names else None
    # kept compact: expanded to float32 per batch (rnnbench.train.Batches) or per split (Dataset.x)
    return datasets.Dataset(x=x, y=y, meta=meta, lengths=lengths, codecs=codecs)


def _unreadable(exc: Exception):
    from schemas.errors import Failure

    return Failure("<file>", "readable_parquet", None, detail=f"{type(exc).__name__}: {exc}")


def loader(root: str):
    """What rnnbench.train.train_and_evaluate asks for: a dataset spec -> its validated dataset under `root`."""

    def load_spec(spec: datasets.DatasetSpec) -> datasets.Dataset:
        return load(spec.path(root), expected=spec)

    return load_spec
