"""Tests for dataset files: deterministic Parquet bytes, metadata, atomic writes, build/reuse, and validation
of every kind of corruption by tasks.dataset_store.load (message names file, column, check, failed rows)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnnbench import datasets
from rnnbench.datasets import DatasetSpec
from schemas.dataset import validate_table
from schemas.errors import ValidationError
from tasks import dataset_store

pytestmark = pytest.mark.timeout(60)

N = 40
SPECS = {
    "copy_memory": DatasetSpec("copy_memory", 6, "train", 3, N),
    "sequential_xor": DatasetSpec("sequential_xor", 8, "test", 3, N),
    "adding": DatasetSpec("adding", 10, "train", 3, N),
}
# the problems with settings of their own, at a non-default one (their layout tests: tests/test_tracking_problems.py)
SETTING_SPECS = {
    "group_word": DatasetSpec("group_word", 8, "train", 3, N, options={"group": "a5"}),
    "mqar": DatasetSpec("mqar", 12, "train", 3, N, options={"vocab": 8, "pairs": 2, "queries": 2}),
    "flip_flop": DatasetSpec("flip_flop", 12, "train", 3, N, options={"p_i": 0.5}),
}

# a token problem (one-hot inputs stored as ids, class-index targets as ints) for the id-column corruptions
TOKEN_SPECS = {"copy_sequence": DatasetSpec("copy_sequence", 8, "train", 3, N)}


def write(spec: DatasetSpec, root: Path) -> Path:
    path = Path(spec.path(str(root)))
    datasets.write_table(datasets.to_table(spec, *datasets.generate(spec)), str(path))
    return path


def leftovers(root: Path) -> list[str]:
    """Temporary files an atomic write must never leave behind."""
    return sorted(str(p) for p in root.rglob("*") if p.name.startswith(".tmp-") or "write-probe" in p.name)


# ---- determinism and layout ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_spec_gives_byte_identical_files(name, tmp_path):
    spec = SPECS[name]
    a, b = write(spec, tmp_path / "a"), write(spec, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    c = write(replace(spec, seed=spec.seed + 1), tmp_path / "c")
    assert c.read_bytes() != a.read_bytes()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_train_and_test_streams_differ_for_same_seed(name):
    spec = SPECS[name]
    train = datasets.generate(replace(spec, split="train"))
    test = datasets.generate(replace(spec, split="test"))
    assert not np.array_equal(train[0], test[0])
    assert datasets.content_hash(np.arange(N), *train) != datasets.content_hash(np.arange(N), *test)


def test_problems_with_same_seed_use_different_streams():
    a = DatasetSpec("copy_memory", 6, "train", 0, 5).rng().random(8)
    b = DatasetSpec("adding", 6, "train", 0, 5).rng().random(8)
    assert not np.array_equal(a, b)


def test_filename_layout(tmp_path):
    spec = SPECS["adding"]
    assert spec.filename == "adding/T10/train-seed3-n40.parquet"
    assert Path(spec.path(str(tmp_path))) == tmp_path / "adding" / "T10" / "train-seed3-n40.parquet"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_metadata_and_column_types(name, tmp_path):
    spec = SPECS[name]
    path = write(spec, tmp_path)
    table = pq.read_table(path)
    meta = datasets.table_meta(table)
    assert set(datasets.META_KEYS) <= set(meta)
    assert meta["problem"] == spec.problem
    assert meta["seq_len"] == str(spec.seq_len)
    assert meta["split"] == spec.split
    assert meta["seed"] == str(spec.seed)
    assert meta["n_rows"] == str(N)
    assert meta["generator_version"] == "1" and meta["format_version"] == str(datasets.FORMAT_VERSION)
    assert len(meta["content_hash"]) == 64
    problem = datasets.get_problem(spec.problem)
    assert meta["x_shape"] == f"{spec.seq_len},{problem.input_size}"
    assert meta["y_shape"] == f"{problem.target_steps(spec.seq_len)},{problem.output_size}"
    assert table.column_names == ["id", "x", "y"]
    assert table.schema.field("id").type == pa.int64()
    codecs = problem.codecs()
    for column, steps in (("x", spec.seq_len), ("y", problem.target_steps(spec.seq_len))):
        typ = table.schema.field(column).type
        # each row's values as one fixed-size binary value, in the problem's declared encoding: real values as
        # float32, token ids or bits as the smallest int type
        assert typ == pa.binary(steps * codecs[column].stored_width * codecs[column].dtype.itemsize)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_load_round_trips_the_arrays(name, tmp_path):
    spec = SPECS[name]
    x, y = datasets.generate(spec)
    path = write(spec, tmp_path)
    loaded = dataset_store.load(str(path), expected=spec)
    assert np.array_equal(loaded.x, x) and np.array_equal(loaded.y, y)
    assert loaded.x.dtype == np.float32 and loaded.meta["problem"] == name


# ---- atomic writes ---------------------------------------------------------------------------------------


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write(SPECS["adding"], tmp_path)
    assert leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["train-seed3-n40.parquet"]


def test_failed_write_leaves_no_file_and_no_temp_file(tmp_path, monkeypatch):
    spec = SPECS["adding"]
    table = datasets.to_table(spec, *datasets.generate(spec))
    path = Path(spec.path(str(tmp_path)))
    real_write_table = datasets.pq.write_table

    def write_half_then_fail(table, where, **kwargs):
        buf = pa.BufferOutputStream()
        real_write_table(table, buf, **kwargs)
        data = buf.getvalue().to_pybytes()
        where.write(data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(datasets.pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        datasets.write_table(table, str(path))
    assert not path.exists()
    assert leftovers(tmp_path) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    spec = SPECS["adding"]
    path = write(spec, tmp_path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(datasets.pq, "write_table", fail)
    with pytest.raises(RuntimeError):
        datasets.write_table(datasets.to_table(spec, *datasets.generate(spec)), str(path))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


# ---- build: reuse, refuse, regenerate --------------------------------------------------------------------


def test_build_writes_then_reuses_without_rewriting(tmp_path):
    spec = SPECS["sequential_xor"]
    first = dataset_store.build(spec, str(tmp_path))
    assert first.reused is False and Path(first.path) == Path(spec.path(str(tmp_path)))
    stat = os.stat(first.path)
    second = dataset_store.build(spec, str(tmp_path))
    assert second.reused is True and second.path == first.path
    after = os.stat(first.path)
    assert (after.st_mtime_ns, after.st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert leftovers(tmp_path) == []


def test_build_refuses_invalid_existing_file_unless_regenerate(tmp_path):
    spec = SPECS["copy_memory"]
    path = Path(spec.path(str(tmp_path)))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError) as info:
        dataset_store.build(spec, str(tmp_path))
    assert str(path) in str(info.value) and "readable_parquet" in str(info.value)
    assert path.read_bytes() == b"not parquet at all"  # refused: left alone
    result = dataset_store.build(spec, str(tmp_path), regenerate=True)
    assert result.reused is False
    dataset_store.load(str(path), expected=spec)


def test_build_refuses_valid_file_for_another_spec(tmp_path):
    spec = SPECS["adding"]
    other = replace(spec, seed=spec.seed + 1)
    path = Path(spec.path(str(tmp_path)))
    datasets.write_table(datasets.to_table(other, *datasets.generate(other)), str(path))
    with pytest.raises(ValidationError, match=r"matches_spec_seed.*file has '4', expected '3'"):
        dataset_store.build(spec, str(tmp_path))


# ---- the per-process cache of validated files -----------------------------------------------------------


def test_unchanged_file_is_read_and_validated_once_per_process(tmp_path, monkeypatch):
    spec = SPECS["adding"]
    path = str(write(spec, tmp_path))
    reads = []
    real_read = dataset_store._read
    monkeypatch.setattr(dataset_store, "_read", lambda *a: reads.append(a) or real_read(*a))
    first = dataset_store.load(path, expected=spec)
    second = dataset_store.load(path, expected=spec)
    assert second is first and len(reads) == 1
    assert not first.x.flags.writeable and not first.y.flags.writeable  # shared: nobody may change it
    with pytest.raises(ValueError, match="read-only"):
        first.x[0, 0, 0] = 1.0


def test_file_this_process_built_is_not_read_back(tmp_path, monkeypatch):
    spec = SPECS["copy_memory"]
    built = dataset_store.build(spec, str(tmp_path))

    def no_reads(*args):
        raise AssertionError("read back a file this process has just validated and written")

    monkeypatch.setattr(dataset_store, "_read", no_reads)
    x, y = datasets.generate(spec)
    served = dataset_store.load(built.path, expected=spec)
    assert np.array_equal(served.x, x) and np.array_equal(served.y, y)


def test_file_changed_after_caching_is_validated_again(tmp_path):
    spec = SPECS["adding"]
    path = write(spec, tmp_path)
    dataset_store.load(str(path), expected=spec)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # in place: same inode and size, new mtime
    path.write_bytes(bytes(data))
    with pytest.raises(ValidationError):
        dataset_store.load(str(path), expected=spec)
    regenerated = dataset_store.build(spec, str(tmp_path), regenerate=True)  # atomic replace: a new inode
    assert dataset_store.load(regenerated.path, expected=spec).x.shape == (N, spec.seq_len, 2)


def test_cache_is_bounded_least_recently_used_first_out(tmp_path, monkeypatch):
    specs = [replace(SPECS["adding"], seed=s) for s in range(3)]
    paths = [str(write(s, tmp_path)) for s in specs]
    one = dataset_store._nbytes(dataset_store.load(paths[0], expected=specs[0]))
    monkeypatch.setattr(dataset_store, "CACHE_BYTES", 2 * one)
    monkeypatch.setattr(dataset_store, "_cache", type(dataset_store._cache)())
    for path, spec in zip(paths, specs, strict=True):
        dataset_store.load(path, expected=spec)
    assert list(dataset_store._cache) == paths[1:]  # cached paths, least recently used first


def test_build_rejects_bad_spec_before_writing(tmp_path):
    with pytest.raises(ValueError, match="seq_len=1"):
        dataset_store.build(DatasetSpec("adding", 1, "train", 0, 5), str(tmp_path))
    with pytest.raises(ValueError, match="got 0"):
        dataset_store.build(DatasetSpec("adding", 5, "train", 0, 0), str(tmp_path))
    assert list(tmp_path.rglob("*")) == []


# ---- corruption: every kind is rejected by load ----------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """Makes a corrupt file at `path`; `expected` lists (column, check, failed rows or None) that must appear."""

    name: str
    problem: str
    make: Callable[[DatasetSpec, Path], None]
    expected: tuple[tuple[str, str, int | None], ...]


def _arrays(edit: Callable[[np.ndarray, np.ndarray], None]) -> Callable[[DatasetSpec, Path], None]:
    """Corrupt generated arrays, then write them with a freshly computed (matching) hash: semantics must catch it."""

    def make(spec: DatasetSpec, path: Path) -> None:
        x, y = datasets.generate(spec)
        edit(x, y)
        datasets.write_table(datasets.to_table(spec, x, y), str(path))

    return make


def _stored(edit: Callable[[np.ndarray, np.ndarray], None]) -> Callable[[DatasetSpec, Path], None]:
    """Corrupt the stored arrays (token ids, int values), then write them with a matching hash."""

    def make(spec: DatasetSpec, path: Path) -> None:
        codecs = spec.problem_def().codecs()
        x, y = (codecs[c].encode(a) for c, a in zip("xy", datasets.generate(spec), strict=True))
        edit(x, y)
        datasets.write_table(datasets.to_table(spec, x, y, encoded=True), str(path))

    return make


def _table(edit: Callable[[pa.Table], pa.Table]) -> Callable[[DatasetSpec, Path], None]:
    """Corrupt a valid table at the Arrow level (metadata, columns), then write it."""

    def make(spec: DatasetSpec, path: Path) -> None:
        table = datasets.to_table(spec, *datasets.generate(spec))
        datasets.write_table(edit(table), str(path))

    return make


def _bytes(edit: Callable[[bytes], bytes]) -> Callable[[DatasetSpec, Path], None]:
    def make(spec: DatasetSpec, path: Path) -> None:
        datasets.write_table(datasets.to_table(spec, *datasets.generate(spec)), str(path))
        path.write_bytes(edit(path.read_bytes()))

    return make


def _set(x_or_y: str, rows, index, value) -> Callable[[np.ndarray, np.ndarray], None]:
    def edit(x, y):
        target = x if x_or_y == "x" else y
        for row in rows:
            target[(row, *index)] = value

    return edit


def _xor_flip(x, y):
    y[[3, 7], 2, 0] = 1 - y[[3, 7], 2, 0]


def _mask_edit(kind: str) -> Callable[[np.ndarray, np.ndarray], None]:
    """Adding mask corruptions in rows 2 and 5 (T = 10, halves [0, 5) and [5, 10))."""

    def edit(x, y):
        for row in (2, 5):
            mask = x[row, :, 1]
            first, second = int(mask[:5].argmax()), 5 + int(mask[5:].argmax())
            if kind == "three":
                mask[(first + 1) % 5] = 1
            elif kind == "same_half":
                mask[second] = 0
                mask[(first + 1) % 5] = 1
            elif kind == "zero":
                mask[:] = 0
            # keep the target the sum of whatever is marked, so only the mask check can catch it
            y[row, 0, 0] = np.where(mask == 1, x[row, :, 0], np.float32(0)).sum(dtype=np.float32)

    return edit


def _adding_wrong_sum(x, y):
    y[[0, 9, 11], 0, 0] += np.float32(0.01)


def _copy_wrong_target(x, y):
    y[4, 0, 3] = np.float32(0.5) if y[4, 0, 3] != 0.5 else np.float32(0.25)


def _copy_noise(x, y):
    x[[1, 2, 5], 3, 0] = 0.5


def _adding_value(x, y):
    x[6, 0, 0] = 1.5


def _wrong_product(x, y):
    """Rows 1 and 30: step 5's product is another element of a5 (the inputs unchanged)."""
    y[[1, 30], 5, 0] = (y[[1, 30], 5, 0] + 7) % 60


def _value_not_its_keys(x, y):
    """Rows 0, 5 and 6: the first answer is the value of the pair it was not asked about (V = 8, N = Q = 2)."""
    for row in (0, 5, 6):
        asked = x[row, 8].argmax()  # the first query key, at step T - 2Q = 8
        other = 3 if x[row, 0].argmax() == asked else 1  # the value step of the pair not asked
        y[row, 9, 0] = x[row, other].argmax()


def _read_contradicts_write(x, y):
    """Rows 4, 8, 22 and 39: the bit after the last r (always a read, at step T - 2) flipped, and its target
    with it: only the rule that a read returns the last written bit can tell."""
    for row in (4, 8, 22, 39):
        bit = int(x[row, 11].argmax()) - 3
        x[row, 11] = 0
        x[row, 11, 4 - bit] = 1
        y[row, 10, 0] = 1 - bit


def _strip_metadata(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


def _wrong_row_count(table: pa.Table) -> pa.Table:
    meta = dict(table.schema.metadata)
    meta[b"rnnbench.n_rows"] = str(N + 1).encode()
    return table.replace_schema_metadata(meta)


def _duplicate_id(table: pa.Table) -> pa.Table:
    ids = np.arange(N, dtype=np.int64)
    ids[10] = 9
    return table.set_column(0, "id", pa.array(ids))


def _wider_x(table: pa.Table) -> pa.Table:
    x = table.column("x").combine_chunks()
    flat = np.frombuffer(x.buffers()[1], dtype=np.float32).reshape(N, -1)
    wider = np.ascontiguousarray(np.concatenate([flat, flat[:, :1]], axis=1))
    return table.set_column(1, "x", pa.FixedSizeBinaryArray.from_buffers(pa.binary(x.type.byte_width + 4), N,
                                                                         [None, pa.py_buffer(wider)]))


def _ids_as_int16(table: pa.Table) -> pa.Table:
    """Token ids rewritten 2 bytes each: the column's width no longer matches the problem's int8 ids."""
    x = table.column("x").combine_chunks()
    ids = np.frombuffer(x.buffers()[1], dtype=np.int8).astype(np.int16)
    wider = pa.FixedSizeBinaryArray.from_buffers(pa.binary(2 * x.type.byte_width), len(x), [None, pa.py_buffer(ids)])
    return table.set_column(1, "x", wider)


def _same_meaning_other_content(table: pa.Table) -> pa.Table:
    """Swap two rows: every semantic check still passes, only the content hash can tell."""
    order = np.arange(N)
    order[[0, 1]] = [1, 0]
    swapped = pa.table({"id": table.column("id"), "x": table.column("x").take(order),
                        "y": table.column("y").take(order)})
    return swapped.replace_schema_metadata(table.schema.metadata)


CORRUPTIONS = [
    Corruption("nan_in_x", "copy_memory", _arrays(_set("x", [7], (2, 1), np.nan)),
               (("x", "finite", 1),)),
    Corruption("inf_in_y", "adding", _arrays(_set("y", [3, 4], (0, 0), np.inf)),
               (("y", "finite", 2), ("y", "in_range_0_to_2", 2))),
    Corruption("copy_noise_0.5", "copy_memory", _arrays(_copy_noise), (("x", "noise_in_0_to_0.1", 3),)),
    Corruption("xor_input_2", "sequential_xor", _stored(_set("x", [4], (5, 0), 2)),
               (("x", "id_in_range_0_to_1", 1), ("x", "inputs_are_bits", 1))),
    # token ids: one past the vocabulary (copy_sequence's 10 symbols) and below the -1 of an all-zero step
    Corruption("copy_sequence_id_out_of_range", "copy_sequence", _stored(_set("x", [2, 7], (3, 0), 10)),
               (("x", "id_in_range_-1_to_9", 2),)),
    Corruption("copy_sequence_ids_wider", "copy_sequence", _table(_ids_as_int16), (("x", "sequence_layout", None),)),
    Corruption("copy_sequence_class_out_of_range", "copy_sequence", _stored(_set("y", [5], (0, 0), -3)),
               (("y", "id_in_range_0_to_8", 1),)),
    Corruption("adding_value_1.5", "adding", _arrays(_adding_value), (("x", "in_range_0_to_1", 1),)),
    Corruption("xor_target_flipped", "sequential_xor", _arrays(_xor_flip),
               (("y", "target_is_xor_of_neighbours", 2),)),
    Corruption("xor_step0_target", "sequential_xor", _arrays(_set("y", [0], (0, 0), 1.0)),
               (("y", "target_is_xor_of_neighbours", 1),)),
    Corruption("adding_mask_three_ones", "adding", _arrays(_mask_edit("three")),
               (("x", "mask_has_one_one_per_half", 2),)),
    Corruption("adding_mask_same_half", "adding", _arrays(_mask_edit("same_half")),
               (("x", "mask_has_one_one_per_half", 2),)),
    Corruption("adding_mask_zero_ones", "adding", _arrays(_mask_edit("zero")),
               (("x", "mask_has_one_one_per_half", 2),)),
    Corruption("adding_mask_not_binary", "adding", _arrays(_set("x", [8], (0, 1), 0.5)),
               (("x", "mask_is_binary", 1), ("x", "mask_has_one_one_per_half", 1))),
    Corruption("adding_target_not_sum", "adding", _arrays(_adding_wrong_sum),
               (("y", "target_is_sum_of_marked", 3),)),
    Corruption("copy_target_not_step0", "copy_memory", _arrays(_copy_wrong_target),
               (("y", "target_equals_step0", 1),)),
    Corruption("lost_metadata", "adding", _table(_strip_metadata), (("<metadata>", "required_keys", None),)),
    Corruption("wrong_row_count", "copy_memory", _table(_wrong_row_count), (("<metadata>", "row_count", None),)),
    Corruption("duplicated_id", "sequential_xor", _table(_duplicate_id), (("id", "field_uniqueness", None),)),
    Corruption("wrong_column_width", "adding", _table(_wider_x), (("x", "sequence_layout", None),)),
    Corruption("truncated", "adding", _bytes(lambda b: b[: len(b) // 2]), (("<file>", "readable_parquet", None),)),
    Corruption("garbage", "copy_memory", _bytes(lambda b: b"this is not parquet\n" * 64),
               (("<file>", "readable_parquet", None),)),
    Corruption("hash_only", "sequential_xor", _table(_same_meaning_other_content),
               (("<all>", "content_hash", None),)),
    Corruption("group_word_wrong_product", "group_word", _arrays(_wrong_product),
               (("y", "target_is_running_product", 2),)),
    Corruption("mqar_value_not_its_keys", "mqar", _arrays(_value_not_its_keys), (("y", "answer_is_keys_value", 3),)),
    Corruption("flip_flop_read_contradicts_last_write", "flip_flop", _arrays(_read_contradicts_write),
               (("x", "read_bit_is_last_written", 4),)),
]


@pytest.mark.parametrize("case", CORRUPTIONS, ids=[c.name for c in CORRUPTIONS])
def test_load_rejects_corruption(case, tmp_path):
    spec = {**SPECS, **SETTING_SPECS, **TOKEN_SPECS}[case.problem]
    path = Path(spec.path(str(tmp_path)))
    path.parent.mkdir(parents=True)
    case.make(spec, path)
    with pytest.raises(ValidationError) as info:
        dataset_store.load(str(path))
    err = info.value
    message = str(err)
    assert err.source == str(path)
    assert message.startswith(f"{path}: ")
    found = {(f.column, f.check): f for f in err.failures}
    for column, check, rows in case.expected:
        assert (column, check) in found, message
        assert f"column '{column}', check '{check}'" in message
        failure = found[(column, check)]
        if rows is not None:
            assert (failure.failed_rows, failure.total_rows) == (rows, N), message
            assert f"column '{column}', check '{check}': {rows} of {N} rows failed" in message
    # and with the expected spec: build() refuses it just the same
    with pytest.raises(ValidationError):
        dataset_store.build(spec, str(tmp_path))


def test_duplicated_id_reports_failed_row_count(tmp_path):
    spec = SPECS["sequential_xor"]
    path = Path(spec.path(str(tmp_path)))
    _table(_duplicate_id)(spec, path)
    with pytest.raises(ValidationError) as info:
        dataset_store.load(str(path))
    (failure,) = info.value.failures
    assert failure.failed_rows == 2  # ids 9 and 9


def test_hash_check_catches_changed_values_within_every_rule(tmp_path):
    """A value changed in place, still inside its range and the problem's rules, with the old metadata."""
    spec = SPECS["copy_memory"]
    x, y = datasets.generate(spec)
    original = datasets.to_table(spec, x, y)
    x[0, 2, 0] = np.float32(0.05) if x[0, 2, 0] != 0.05 else np.float32(0.06)
    changed = datasets.to_table(spec, x, y).replace_schema_metadata(original.schema.metadata)
    with pytest.raises(ValidationError, match="content_hash"):
        validate_table(changed, source="mem")
    path = tmp_path / "f.parquet"
    datasets.write_table(changed, str(path))
    with pytest.raises(ValidationError, match="content_hash"):
        dataset_store.load(str(path))


def test_lazy_validation_reports_every_failed_check_at_once(tmp_path):
    spec = SPECS["copy_memory"]
    x, y = datasets.generate(spec)
    x[0, 3, 1] = np.nan  # x: not finite (row 0)
    y[5, 0, 0] = np.float32(0.5) if y[5, 0, 0] != 0.5 else np.float32(0.25)  # y: target != step 0 (row 5)
    path = tmp_path / "two.parquet"
    datasets.write_table(datasets.to_table(spec, x, y), str(path))
    with pytest.raises(ValidationError) as info:
        dataset_store.load(str(path))
    message = str(info.value)
    assert f"column 'x', check 'finite': 1 of {N} rows failed" in message
    assert f"column 'y', check 'target_equals_step0': 1 of {N} rows failed" in message
    assert {(f.column, f.check) for f in info.value.failures} >= {("x", "finite"), ("y", "target_equals_step0")}


def test_validate_table_before_write_names_the_source():
    spec = SPECS["adding"]
    x, y = datasets.generate(spec)
    y[1, 0, 0] = 3.0
    with pytest.raises(ValidationError, match=r"(?s)^somewhere \(before write\): .*in_range_0_to_2': 1 of 40"):
        validate_table(datasets.to_table(spec, x, y), source="somewhere (before write)")


def test_load_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.parquet"
    with pytest.raises(ValidationError, match="readable_parquet") as info:
        dataset_store.load(str(path))
    assert str(path) in str(info.value)


def _registered_specs() -> list[DatasetSpec]:
    """One small file of every registered problem at its shortest default length, fixed and (where it has them)
    variable-length."""
    specs = []
    for name, problem in sorted(datasets.PROBLEMS.items()):
        seq_len = max(problem.min_seq_len, min(problem.default_grid.seq_lens))
        specs.append(DatasetSpec(name, seq_len, "test", 5, 24))
        if problem.supports_variable_length:
            specs.append(DatasetSpec(name, seq_len, "train", 5, 24, min_len=max(problem.min_seq_len, seq_len // 2)))
    return specs


@pytest.mark.parametrize("spec", _registered_specs(), ids=lambda s: f"{s.problem}-min{s.min_len}")
def test_compact_storage_round_trips_to_the_generated_float_arrays(spec, tmp_path):
    """Every registered problem: the file stores its declared encoding, and loading gives back exactly the float32
    (one-hot) arrays the generator made, whole and a batch of rows at a time."""
    x, y, lengths = datasets.generate_arrays(spec)
    path = tmp_path / "f.parquet"
    datasets.write_table(datasets.to_table(spec, x, y, lengths), str(path))
    loaded = dataset_store.load(str(path), expected=spec)
    codecs = spec.problem_def().codecs()
    assert loaded.stored_x.dtype == codecs["x"].dtype and loaded.stored_y.dtype == codecs["y"].dtype
    assert loaded.x.dtype == np.float32 and np.array_equal(loaded.x, x) and np.array_equal(loaded.y, y)
    rows = np.array([0, 3, 5])
    bx, by = loaded.rows(rows)
    assert np.array_equal(bx, x[rows]) and np.array_equal(by, y[rows])
    if codecs["x"].encoding != "float32":
        assert loaded.nbytes < x.nbytes  # what the cache and a job hold: the compact arrays


def test_token_problems_store_ids_and_real_valued_ones_float32():
    assert {c.encoding for c in datasets.get_problem("copy_sequence").codecs().values()} == {"one_hot", "int"}
    assert datasets.get_problem("copy_sequence").codecs()["x"].dtype == np.int8
    assert datasets.get_problem("mqar", {"vocab": 200}).codecs()["x"].dtype == np.int16  # ids up to 199
    for name in ("adding", "copy_memory", "sequential_digits"):
        assert datasets.get_problem(name).codecs()["x"].encoding == "float32"


def test_a_problem_that_declares_no_storage_keeps_float32():
    from tests.plugin_example import FirstBit

    assert {c.encoding for c in FirstBit().codecs().values()} == {"float32"}


def test_file_bytes_are_deterministic(tmp_path):
    """Same spec, same bytes: two writes of a token problem and a real-valued one."""
    for spec in (TOKEN_SPECS["copy_sequence"], SPECS["adding"], SETTING_SPECS["flip_flop"]):
        first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
        datasets.write_table(datasets.to_table(spec, *datasets.generate(spec)), str(first))
        datasets.write_table(datasets.to_table(spec, *datasets.generate(spec)), str(second))
        assert first.read_bytes() == second.read_bytes()


def test_an_old_format_file_is_refused_with_a_message_to_regenerate(tmp_path):
    spec = SPECS["adding"]
    table = datasets.to_table(spec, *datasets.generate(spec))
    meta = dict(table.schema.metadata)
    meta[b"rnnbench.format_version"] = b"2"
    path = tmp_path / "old.parquet"
    datasets.write_table(table.replace_schema_metadata(meta), str(path))
    with pytest.raises(ValidationError, match="format 2.*regenerate") as info:
        dataset_store.load(str(path))
    assert [f.check for f in info.value.failures] == ["format_version"]


def test_a_problem_whose_data_breaks_its_declared_encoding_is_refused_before_writing():
    from rnnbench.encoding import Codec

    with pytest.raises(ValueError, match="not one-hot"):
        Codec("one_hot", 3).encode(np.array([[[1.0, 1.0, 0.0]]], dtype=np.float32))
    with pytest.raises(ValueError, match="not integers in 0..3"):
        Codec("int", 1, 0, 3).encode(np.array([[[4.0]]], dtype=np.float32))
    with pytest.raises(ValueError, match="unknown storage encoding 'bits'"):
        Codec("bits", 1)


@pytest.mark.parametrize("spec", [TOKEN_SPECS["copy_sequence"], SETTING_SPECS["flip_flop"], SPECS["adding"],
                                  DatasetSpec("parity", 12, "train", 3, N, min_len=4)], ids=lambda s: s.problem)
def test_a_large_file_is_generated_a_chunk_at_a_time_deterministically_and_valid(spec):
    """Files too big to exist as one-hot floats are generated and encoded in chunks, each from its own stream; one
    chunk is the plain generator's output."""
    codecs = spec.problem_def().codecs()
    x, y, lengths = datasets.generate_arrays(spec)
    whole = datasets.generate_stored(spec, chunk_rows=N)
    assert np.array_equal(whole[0], codecs["x"].encode(x)) and np.array_equal(whole[1], codecs["y"].encode(y))
    chunked = datasets.generate_stored(spec, chunk_rows=7)
    again = datasets.generate_stored(spec, chunk_rows=7)
    assert all(np.array_equal(a, b) for a, b in zip(chunked, again, strict=True) if a is not None)
    assert chunked[0].shape == whole[0].shape and not np.array_equal(chunked[0][7:], whole[0][7:])
    validate_table(datasets.to_table(spec, *chunked, encoded=True), "chunked", expected=spec)
