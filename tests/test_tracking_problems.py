"""Tests for group_word, mqar and flip_flop (docs/PROBLEMS.md) and the problem options they brought.

The group tables are checked as groups (closure, identity, inverses, associativity, order, which commute); each
problem's worked example is built by hand and checked against the generator's layout, the semantic checks and
the masks; corruptions are refused naming column, check and rows; and problem options travel from the flag to
the run id, the data files and the metrics row.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from flows.compare_args import build_parser, config_from_args
from rnnbench import datasets
from rnnbench.config import RunSpec
from rnnbench.datasets import DatasetSpec
from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.problems.base import one_hot
from rnnbench.problems.flip_flop import FlipFlop
from rnnbench.problems.group_word import GroupWord
from rnnbench.problems.groups import GROUP_NAMES, group
from rnnbench.problems.mqar import MQAR
from rnnbench.problems.options import check_problem_options, parse_assignments, problem_option_columns
from rnnbench.rows import base_row
from schemas.dataset import validate_table
from schemas.errors import ValidationError
from schemas.metrics import CellKey, Metrics, metrics_frame, validated

pytestmark = pytest.mark.timeout(60)

ORDERS = {"z2": 2, "z60": 60, "s3": 6, "a5": 60, "s5": 120}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def failed_rows(checks, name):
    return np.flatnonzero(~checks[name][1]).tolist()


def all_ok(checks) -> bool:
    return all(bool(ok.all()) for _, ok in checks.values())


def classes(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)[:, :, None]


def rejected(spec: DatasetSpec, x: np.ndarray, y: np.ndarray, lengths=None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_table(datasets.to_table(spec, x, y, lengths), "mem", expected=spec)
    return info.value


# ---- the groups ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GROUP_NAMES)
def test_each_table_is_a_group_of_the_stated_order(name):
    g = group(name)
    t, k = g.table, g.order
    assert k == ORDERS[name] == len(g.elements)
    idx = np.arange(k)
    # closure, and cancellation: every row and column is a permutation of the elements
    assert t.shape == (k, k) and t.min() >= 0 and t.max() < k
    assert (np.sort(t, axis=0) == idx[:, None]).all() and (np.sort(t, axis=1) == idx[None, :]).all()
    # element 0 is the identity on both sides
    assert (t[0] == idx).all() and (t[:, 0] == idx).all()
    # every element has a two-sided inverse
    inverse = np.argmax(t == 0, axis=1)
    assert (t[idx, inverse] == 0).all() and (t[inverse, idx] == 0).all()
    # associativity, over every triple
    assert (t[t[:, :, None], idx[None, None, :]] == t[idx[:, None, None], t[None, :, :]]).all()


def test_which_groups_commute():
    commutes = {name: bool((group(name).table == group(name).table.T).all()) for name in GROUP_NAMES}
    assert commutes == {"z2": True, "z60": True, "s3": False, "a5": False, "s5": False}


@pytest.mark.parametrize("name", ["s3", "a5", "s5"])
def test_permutation_tables_compose_a_then_b(name):
    g = group(name)
    perms = [np.array(p) for p in g.elements]
    index = {tuple(p): i for i, p in enumerate(g.elements)}
    for a, b in itertools.islice(itertools.product(range(g.order), repeat=2), 0, None, 7):
        assert g.table[a, b] == index[tuple(perms[b][perms[a]])]  # (a·b)(i) = b(a(i))


def test_a5_is_the_even_half_of_s5_and_s3_is_hand_checked():
    parity = {p: sum(p[i] > p[j] for i in range(5) for j in range(i + 1, 5)) % 2 for p in group("s5").elements}
    assert set(group("a5").elements) == {p for p, odd in parity.items() if not odd}
    s3 = group("s3")
    assert s3.elements == ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
    assert (s3.table[1, 2], s3.table[2, 1], s3.table[3, 3], s3.table[4, 5]) == (3, 4, 4, 1)


def test_unknown_group_names_the_groups():
    with pytest.raises(ValueError, match="unknown group 'a4'; groups: z2, z60, s3, a5, s5"):
        group("a4")


# ---- group_word ------------------------------------------------------------------------------------------


def test_group_word_worked_example_and_mask():
    p = get_problem("group_word")  # s3 by default
    x = one_hot(np.array([[1, 2, 3, 5]]), 6)
    y = classes([[1, 3, 4, 1]])
    assert all_ok(p.semantic_checks(x, y))
    assert p.target_mask(4).tolist() == [False, True, True, True]
    assert p.baseline(4) == pytest.approx(1 / 6) and p.solved_rule().endswith(">= 0.99")
    swapped = one_hot(np.array([[2, 1, 3, 5]]), 6)  # order matters: 2·1 = 4, not 3
    assert failed_rows(p.semantic_checks(swapped, y), "target_is_running_product") == [0]
    assert all_ok(p.semantic_checks(swapped, classes([[2, 4, 0, 5]])))  # 2·1 = 4, 4·3 = 0, 0·5 = 5


@pytest.mark.parametrize("name", GROUP_NAMES)
def test_group_word_generator_is_the_running_product(name):
    p = get_problem("group_word", {"group": name})
    g = group(name)
    x, y = p.generate(300, 7, rng(1))
    ids = x.argmax(axis=-1)
    product = ids[:, 0]
    for t in range(1, 7):  # the product, one step at a time, from the table
        product = g.table[product, ids[:, t]]
        assert (y[:, t, 0] == product).all()
    assert (p.input_size, p.output_size, p.baseline(7)) == (g.order, g.order, 1 / g.order)
    assert all_ok(p.semantic_checks(x, y))


def test_group_word_variable_length_pads_and_masks():
    p = get_problem("group_word", {"group": "a5"})
    x, y, lengths = p.generate_variable(200, 9, 3, rng(2))
    assert all_ok(p.semantic_checks(x, y, lengths))
    padded = np.arange(9)[None, :] >= lengths[:, None]
    assert (x[padded] == 0).all() and (y[padded] == 0).all()
    mask = p.mask_for(9, lengths)
    assert (mask == (~padded & (np.arange(9)[None, :] >= 1))).all()
    y[0, 1, 0] = (y[0, 1, 0] + 1) % 60
    assert failed_rows(p.semantic_checks(x, y, lengths), "target_is_running_product") == [0]


def test_group_word_wrong_product_is_refused_by_validation():
    spec = DatasetSpec("group_word", 6, "train", 0, 20, options={"group": "a5"})
    x, y = datasets.generate(spec)
    y[[2, 9], 4, 0] = (y[[2, 9], 4, 0] + 1) % 60
    message = str(rejected(spec, x, y))
    assert "column 'y', check 'target_is_running_product': 2 of 20 rows failed" in message


# ---- mqar ------------------------------------------------------------------------------------------------


def mqar_example():
    """V = 8 (keys 1..3, values 4..7), N = Q = 2, T = 10: pairs 3 -> 6, 1 -> 4; queries 1 then 3."""
    p = get_problem("mqar", {"vocab": 8, "pairs": 2})
    x = one_hot(np.array([[3, 6, 1, 4, 0, 0, 1, 0, 3, 0]]), 8)
    y = classes([[0, 0, 0, 0, 0, 0, 0, 4, 0, 6]])
    return p, x, y


def test_mqar_worked_example_mask_and_baseline():
    p, x, y = mqar_example()
    assert p.queries == 2 and p.min_seq_len == 8
    assert all_ok(p.semantic_checks(x, y))
    assert np.flatnonzero(p.target_mask(10)).tolist() == [7, 9]
    assert p.baseline(10) == 0.25 and p.memoryless_class() == 4
    assert get_problem("mqar").baseline(64) == 1 / 32


def test_mqar_corruptions_name_their_check():
    p, x, y = mqar_example()
    dup = one_hot(np.array([[3, 6, 3, 4, 0, 0, 3, 0, 3, 0]]), 8)  # key 3 twice
    checks = p.semantic_checks(dup, classes([[0, 0, 0, 0, 0, 0, 0, 6, 0, 6]]))
    assert failed_rows(checks, "keys_distinct") == [0]
    wrong = y.copy()
    wrong[0, 9, 0] = 4  # key 3's answer given key 1's value
    assert failed_rows(p.semantic_checks(x, wrong), "answer_is_keys_value") == [0]
    stray = one_hot(np.array([[3, 6, 1, 4, 0, 2, 1, 0, 3, 0]]), 8)  # a key in the delay
    assert failed_rows(p.semantic_checks(stray, y), "blanks_between_and_at_answers") == [0]
    unknown = one_hot(np.array([[3, 6, 1, 4, 0, 0, 2, 0, 3, 0]]), 8)  # key 2 was never paired
    assert failed_rows(p.semantic_checks(unknown, y), "queries_ask_distinct_pair_keys") == [0]


def test_mqar_value_not_its_keys_is_refused_by_validation():
    spec = DatasetSpec("mqar", 40, "test", 0, 20)
    x, y = datasets.generate(spec)
    answers = get_problem("mqar").answer_steps(40)
    y[[1, 4, 7], answers[0], 0] = np.where(y[[1, 4, 7], answers[0], 0] == 63, 62, 63)
    message = str(rejected(spec, x, y))
    assert "column 'y', check 'answer_is_keys_value': 3 of 20 rows failed" in message


def test_mqar_generator_layout_and_variable_length():
    p = get_problem("mqar")
    x, y = p.generate(500, 40, rng(3))
    ids = x.argmax(axis=-1)
    assert all_ok(p.semantic_checks(x, y))
    assert (ids[:, 16:24] == 0).all()  # the delay between the 8 pairs (16 steps) and the 8 queries (16 steps)
    values = ids[:, 1:16:2]
    assert (np.sort(values, axis=1)[:, 1:] != np.sort(values, axis=1)[:, :-1]).all()
    x, y, lengths = p.generate_variable(300, 50, 32, rng(4))
    assert all_ok(p.semantic_checks(x, y, lengths))
    mask = p.mask_for(50, lengths)
    assert (mask.sum(axis=1) == 8).all() and (np.flatnonzero(mask[0])[-1] == lengths[0] - 1)


@pytest.mark.parametrize("given, message", [
    ({"vocab": 63}, "mqar.vocab=63: must be even"),
    ({"pairs": 32}, "mqar.pairs=32: keys must be distinct, and vocab=64 has 31 keys"),
    ({"queries": 9}, "mqar.queries=9: each query asks a distinct key of the 8 pairs; at most 8"),
    ({"pairs": 0}, r"mqar.pairs=0: out of range; expected an integer in \[1, inf\)"),
    ({"vocab": "many"}, "mqar.vocab='many': not a number"),
])
def test_mqar_bad_settings_are_named(given, message):
    with pytest.raises(ValueError, match=message):
        get_problem("mqar", given)


def test_mqar_queries_follow_pairs_unless_given():
    assert get_problem("mqar", {"pairs": 4}).option_values() == {"vocab": 64, "pairs": 4, "queries": 4}
    assert get_problem("mqar", {"pairs": 4, "queries": 2}).min_seq_len == 12
    with pytest.raises(ValueError, match=r"seq_len=15 is too short; this problem needs seq_len >= 16"):
        get_problem("mqar", {"pairs": 4}).check_seq_len(15)


# ---- flip_flop -------------------------------------------------------------------------------------------

WR, IG, RD, B0, B1 = range(5)


def flip_flop_example():
    """w 1 i 0 r 1 w 0 r 0: reads at steps 4 (-> 1) and 8 (-> 0)."""
    x = one_hot(np.array([[WR, B1, IG, B0, RD, B1, WR, B0, RD, B0]]), 5)
    y = classes([[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]])
    return get_problem("flip_flop"), x, y


def test_flip_flop_worked_example_mask_from_the_data():
    p, x, y = flip_flop_example()
    assert all_ok(p.semantic_checks(x, y))
    assert np.flatnonzero(p.mask_for(10, None, x)[0]).tolist() == [4, 8]
    assert p.baseline(10) == 0.5 and p.solved_rule() == "test accuracy at the reads >= 1"
    logits = np.zeros((1, 10, 2), dtype=np.float32)
    logits[0, 4, 1] = 1  # right at step 4, right at step 8 (class 0 by the tie)
    assert p.metrics(logits, y, p.mask_for(10, None, x))["accuracy"] == 1.0
    logits[0, 8, 1] = 1
    assert p.metrics(logits, y, p.mask_for(10, None, x))["accuracy"] == 0.5
    with pytest.raises(ValueError, match="flip_flop scores its reads, which the data places: mask_for needs"):
        p.mask_for(10)


def test_flip_flop_corruptions_name_their_check():
    p, x, y = flip_flop_example()
    contradicts = one_hot(np.array([[WR, B1, IG, B0, RD, B0, WR, B0, RD, B0]]), 5)  # reads 0 after writing 1
    checks = p.semantic_checks(contradicts, y)
    assert failed_rows(checks, "read_bit_is_last_written") == [0]
    assert failed_rows(checks, "target_is_read_bit") == [0]
    starts_ignoring = one_hot(np.array([[IG, B1, IG, B0, RD, B1, WR, B0, RD, B0]]), 5)
    assert failed_rows(p.semantic_checks(starts_ignoring, y), "first_instruction_is_w") == [0]
    ends_writing = one_hot(np.array([[WR, B1, IG, B0, RD, B1, WR, B0, WR, B0]]), 5)
    assert failed_rows(p.semantic_checks(ends_writing, classes([[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]])),
                       "last_instruction_is_r") == [0]


def test_flip_flop_read_contradicting_the_last_write_is_refused_by_validation():
    spec = DatasetSpec("flip_flop", 16, "train", 0, 20)
    x, y = datasets.generate(spec)
    # the final read of rows 3 and 11: flip the bit that follows it (and its target, so only the x rule can tell)
    for row in (3, 11):
        bit = x[row, 15].argmax() - B0
        x[row, 15] = 0
        x[row, 15, B0 + 1 - bit] = 1
        y[row, 14, 0] = 1 - bit
    message = str(rejected(spec, x, y))
    assert "column 'x', check 'read_bit_is_last_written': 2 of 20 rows failed" in message


def test_flip_flop_instructions_follow_p_i():
    for p_i in (0.8, 0.98, 0.1):
        x, _ = get_problem("flip_flop", {"p_i": p_i}).generate(4000, 52, rng(5))
        middle = x[:, 2:-2:2].argmax(axis=-1)  # neither the first w nor the last r
        share = np.bincount(middle.reshape(-1), minlength=3) / middle.size
        assert share == pytest.approx([(1 - p_i) / 2, p_i, (1 - p_i) / 2], abs=0.01)


def test_flip_flop_lengths_are_even_and_variable_sequences_end_on_a_read():
    p = get_problem("flip_flop")
    with pytest.raises(ValueError, match="seq_len=63 is odd"):
        p.check_seq_len(63)
    x, y, lengths = p.generate_variable(300, 20, 5, rng(6))
    assert set(lengths.tolist()) <= {6, 8, 10, 12, 14, 16, 18, 20} and len(set(lengths.tolist())) == 8
    assert all_ok(p.semantic_checks(x, y, lengths))
    assert (x[np.arange(300), lengths - 2, RD] == 1).all()
    assert (p.mask_for(20, lengths, x).sum(axis=1) >= 1).all()


def test_flip_flop_held_out_test_sets_are_this_problem_at_other_settings():
    spec = RunSpec(problem="flip_flop", arch="gru", seq_len=16, seed=2, hidden_size=8, steps=10, lr=1e-3,
                   batch_size=4, eval_every=5, n_train=8, n_test=30)
    held = spec.held_out_datasets()
    assert {k: (d.split, d.options, d.seq_len, d.seed) for k, d in held.items()} == {
        "sparse": ("test", (("p_i", 0.98),), 16, 2), "dense": ("test", (("p_i", 0.1),), 16, 2)}
    test = spec.datasets()[2]
    assert len({test.filename, held["sparse"].filename, held["dense"].filename}) == 3
    arrays = [datasets.generate(d)[0] for d in (test, held["sparse"], held["dense"])]
    reads = [(a[:, 0::2].argmax(axis=-1) == RD).mean() for a in arrays]
    assert reads[1] < reads[0] < reads[2]  # sparse has fewest reads, dense most
    parity = {**spec.model_dump(), "problem": "parity", "seq_len": 6, "problem_options": {}}
    assert RunSpec(**parity).held_out_datasets() == {}
    # a sweep stores and validates them with its other files
    stored = config("--problems", "flip_flop", "--archs", "gru", "--seeds", "1", "--seq-lens", "16").datasets()
    assert [d.filename for d in stored if d.split == "test"] == [
        "flip_flop/p_i=0.1/T16/test-seed0-n500.parquet", "flip_flop/p_i=0.8/T16/test-seed0-n500.parquet",
        "flip_flop/p_i=0.98/T16/test-seed0-n500.parquet"]


# ---- problem options: flag, run id, data files, metrics row ----------------------------------------------


def config(*argv):
    return config_from_args(build_parser().parse_args([*argv, "--out", "/tmp/unused"]))


def test_problem_option_flag_reaches_the_runs_and_their_files():
    c = config("--problems", "group_word,adding", "--archs", "gru", "--seeds", "1",
               "--problem-option", "group_word.group=a5")
    runs = {r.problem: r for r in c.runs()}
    assert runs["group_word"].problem_options == {"group": "a5"} and runs["adding"].problem_options == {}
    assert runs["group_word"].problem_def().input_size == 60
    assert all(d.filename.startswith("group_word/group=a5/T16/") for d in runs["group_word"].datasets())
    # a problem without options keeps the run id and spec it had before options existed
    assert "problem_options" not in runs["adding"].model_dump()
    default = config("--problems", "group_word", "--archs", "gru", "--seeds", "1").runs()[0]
    explicit = config("--problems", "group_word", "--archs", "gru", "--seeds", "1",
                      "--problem-option", "group_word.group=s3").runs()[0]
    assert default.run_id == explicit.run_id != runs["group_word"].run_id


@pytest.mark.parametrize("argv, message", [
    (["--problem-option", "group_word.group=a7"], "--problem-option: group_word.group='a7': expected one of z2, "
                                                  "z60, s3, a5, s5"),
    (["--problem-option", "group_word.size=5"], "problem 'group_word' has no option 'size'; its options: group"),
    (["--problem-option", "adding.group=a5"], re.escape("problem 'adding' takes no options; problems with options: "
                                                       "flip_flop (p_i), group_word (group), mqar (vocab, pairs, "
                                                       "queries)")),
    (["--problem-option", "group_word.group"], "expected PROBLEM.KEY=VALUE"),
    (["--problem-option", "group_word.group=a5,group_word.group=s5"], "given twice: a5 and s5"),
    (["--problem-option", "mqar.pairs=4"], "--problem-option for mqar, which this sweep does not run"),
])
def test_bad_problem_options_are_refused_before_any_work(argv, message):
    with pytest.raises(ValueError, match=message):
        config("--problems", "group_word", "--archs", "gru", *argv)


def test_check_problem_options_types_and_sorts():
    assert check_problem_options(parse_assignments(["mqar.pairs=4,flip_flop.p_i=0.9", "mqar.vocab=32"])) == {
        "flip_flop.p_i": 0.9, "mqar.pairs": 4, "mqar.vocab": 32}
    with pytest.raises(ValueError, match="mqar.queries=9: each query asks a distinct key of the 4 pairs"):
        check_problem_options({"mqar.pairs": 4, "mqar.queries": 9})


def test_the_metrics_row_records_every_setting_and_the_cell_keys_on_it():
    columns = problem_option_columns()
    assert sorted(columns) == ["opt_flip_flop_p_i", "opt_group_word_group", "opt_mqar_pairs", "opt_mqar_queries",
                               "opt_mqar_vocab"]
    assert set(columns) <= set(CellKey.to_schema().columns)
    spec = RunSpec(problem="mqar", arch="gru", seq_len=40, seed=0, hidden_size=8, steps=10, lr=1e-3, batch_size=4,
                   eval_every=5, n_train=8, n_test=10, problem_options={"pairs": 4})
    row = base_row(spec)
    assert (row["opt_mqar_vocab"], row["opt_mqar_pairs"], row["opt_mqar_queries"]) == (64, 4, 4)
    assert row["opt_group_word_group"] is None and row["baseline"] == 1 / 32
    other = base_row(RunSpec(**{**spec.model_dump(), "problem": "adding", "problem_options": {}}))
    assert all(other[c] is None for c in columns)
    validated(metrics_frame([row, other]), Metrics, "rows")
    bad = {**row, "opt_group_word_group": "a7"}
    with pytest.raises(ValidationError, match="opt_group_word_group"):
        validated(metrics_frame([bad]), Metrics, "rows")


def test_one_setting_names_one_file_and_its_own_stream():
    implicit = DatasetSpec("group_word", 8, "test", 0, 10)
    explicit = DatasetSpec("group_word", 8, "test", 0, 10, options={"group": "s3"})
    assert implicit == explicit and implicit.filename == "group_word/group=s3/T8/test-seed0-n10.parquet"
    a5 = DatasetSpec("group_word", 8, "test", 0, 10, options={"group": "a5"})
    assert not np.array_equal(implicit.rng().random(4), a5.rng().random(4))
    adding = DatasetSpec("adding", 8, "test", 0, 10)
    assert adding.options == () and adding.filename == "adding/T8/test-seed0-n10.parquet"
    assert "problem_options" not in datasets.table_meta(datasets.to_table(adding, *datasets.generate(adding)))


def test_a_file_of_another_setting_is_refused_naming_the_settings():
    a5 = DatasetSpec("group_word", 5, "test", 0, 6, options={"group": "a5"})
    z60 = DatasetSpec("group_word", 5, "test", 0, 6, options={"group": "z60"})
    table = datasets.to_table(a5, *datasets.generate(a5))
    with pytest.raises(ValidationError) as info:
        validate_table(table, "mem", expected=z60)
    assert "check 'matches_spec_problem_options'" in str(info.value) and "'group=a5'" in str(info.value)
    meta = dict(table.schema.metadata)
    meta[b"rnnbench.problem_options"] = b"group=a7"
    with pytest.raises(ValidationError, match="check 'problem_options'.*group_word.group='a7'"):
        validate_table(table.replace_schema_metadata(meta), "mem")


def test_registry_and_classes_agree():
    assert isinstance(PROBLEMS["group_word"], GroupWord) and isinstance(PROBLEMS["mqar"], MQAR)
    assert isinstance(PROBLEMS["flip_flop"], FlipFlop)
    assert get_problem("group_word") is PROBLEMS["group_word"]
    assert get_problem("group_word", {"group": "a5"}) is get_problem("group_word", {"group": "a5"})
    with pytest.raises(ValueError, match="problem option adding.p_i: problem 'adding' has no option 'p_i'; it "
                                         "takes no options"):
        get_problem("adding", {"p_i": 0.5})


@pytest.mark.e2e
def test_a_problem_option_travels_through_a_sweep(prefect_api, tmp_path):
    """--problem-option through the CLI, Ray workers and the stored files: group_word on a5 and flip_flop, each
    run recorded with its settings, its data under its own folder, its eval length scored."""
    import polars as pl

    from flows import compare

    out = tmp_path / "out"
    argv = ["--archs", "gru", "--problems", "group_word,flip_flop", "--seeds", "1", "--steps", "60", "--seq-lens",
            "8", "--eval-lens", "2x", "--problem-option", "group_word.group=a5", "--out", str(out)]
    assert compare.main(argv) == 0
    metrics = pl.read_parquet(out / "metrics.parquet").sort("problem", "eval_len", "test_split")
    assert metrics.select("problem", "eval_len", "test_split", "opt_group_word_group", "opt_flip_flop_p_i").rows() \
        == [("flip_flop", 8, "dense", None, 0.8), ("flip_flop", 8, "sparse", None, 0.8),
            ("flip_flop", 8, "test", None, 0.8), ("flip_flop", 16, "test", None, 0.8),
            ("group_word", 8, "test", "a5", None), ("group_word", 16, "test", "a5", None)]
    assert metrics.filter(pl.col("problem") == "group_word")["baseline"].to_list() == [1 / 60, 1 / 60]
    assert (out / "data" / "group_word" / "group=a5" / "T16").is_dir()
    assert (out / "data" / "flip_flop" / "p_i=0.8" / "T8").is_dir()
    assert (out / "data" / "flip_flop" / "p_i=0.98" / "T8" / "test-seed0-n500.parquet").is_file()
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary.filter(pl.col("problem") == "group_word")["opt_group_word_group"].to_list() == ["a5"]


def test_a_plugin_loads_whichever_registry_is_imported_first():
    """The problems' options do not import the architecture registry while the problem registry loads: that
    registry loads plugins, and a plugin importing the half-loaded problem package would fail."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for first in ("rnnbench.problems", "rnnbench.archs"):
        code = (f"import {first}; from rnnbench.problems import PROBLEMS; from rnnbench.archs import ARCHS; "
                "print(len(PROBLEMS) - 12, len(ARCHS) - 8)")
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "RNNBENCH_PLUGINS": "tests.plugin_example"})
        assert done.returncode == 0 and done.stdout.split() == ["1", "1"], (first, done.stderr[-500:])
