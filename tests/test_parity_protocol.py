"""parity as pre-registered: variable-length training, scoring at longer lengths, the verdict at the longest, and
no test string among the training strings of any preset's parity cell."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rnnbench.config import PRESETS, from_preset
from rnnbench.datasets import generate_stored
from rnnbench.verdicts import verdict_rows


def parity_runs(preset: str) -> list:
    """Seed 0 of each parity cell of a preset (the other seeds' files come from other streams of the same kind)."""
    config = from_preset(preset)
    specs = config.every_stage()
    return list({(s.seq_len, s.min_len, tuple(s.eval_lens), s.n_train): s for s in specs
                 if s.problem == "parity" and s.seed == 0}.values())


PARITY_PRESETS = [name for name in PRESETS if parity_runs(name)]


def test_full_runs_parity_as_pre_registered():
    assert "full" in PARITY_PRESETS
    # the problem's own grid (a reproduction card keeps its source's lengths: trained up to 40, scored at 500)
    own = [s for s in parity_runs("full") if s.min_len != 2]
    assert own
    for spec in own:
        assert spec.min_len > 0, "variable-length training"
        assert spec.eval_lens and min(spec.eval_lens) >= 2 * spec.seq_len and max(spec.eval_lens) == 10 * spec.seq_len


def strings(spec) -> set[bytes]:
    """Each row's bit string (its real steps only) as bytes, with its length: one entry per distinct string."""
    x, _, lengths = generate_stored(spec)  # as the file holds it: one token id a step, 1 for a 1 bit
    bits = x[..., 0] == 1
    lengths = np.full(len(bits), bits.shape[1]) if lengths is None else lengths
    return {int(n).to_bytes(4, "little") + np.packbits(row[:n]).tobytes() for row, n in zip(bits, lengths, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("preset", PARITY_PRESETS)
def test_no_test_string_is_a_training_string(preset):
    for spec in parity_runs(preset):
        train, _, test = spec.datasets()
        seen = strings(train)
        # the files the verdict reads (every longer length), and the run's own test set where its training lengths
        # are long enough for that to hold (a reproduction card trains from length 2, as its source did)
        checked = [*spec.eval_datasets(), *([test] if 2 ** spec.min_len > 1000 * train.n_rows else [])]
        assert checked
        for dataset in checked:
            shared = strings(dataset) & seen
            assert not shared, (f"{preset}: {len(shared)} test strings of parity T={dataset.seq_len} also in the "
                                f"training set of T={spec.seq_len} (min_len {spec.min_len}, {train.n_rows} rows)")


def row(run_id: str, eval_len: int, solved: bool, problem: str = "parity") -> dict:
    return {"run_id": run_id, "problem": problem, "arch": "lstm", "seq_len": 50, "eval_len": eval_len,
            "test_split": "test", "outcome": "solved" if solved else "at_baseline", "solved": solved}


def test_the_parity_verdict_reads_the_longest_scored_length():
    rows = [row("a", 50, True), row("a", 100, True), row("a", 500, False),
            row("b", 50, True), row("b", 500, True), row("c", 50, False),  # c: no longer length (failed)
            row("d", 50, True, problem="adding"), row("d", 100, False, problem="adding")]
    chosen = {(r["run_id"], r["eval_len"]) for r in verdict_rows(pl.DataFrame(rows)).iter_rows(named=True)}
    assert chosen == {("a", 500), ("b", 500), ("c", 50), ("d", 50)}


def test_a_parity_cell_solved_at_its_length_but_not_at_the_longest_is_not_solved():
    from tests.test_verdicts import cell, runs

    parity = {"problem": "parity", "metric_name": "accuracy", "higher_is_better": True, "baseline": 0.5,
              "solved_rule": "test accuracy >= 0.99", "seq_len": 50}
    own = runs(parity, [1.0, 1.0, 1.0])
    longest = [{**r, **longer, "eval_len": 500} for r, longer in
               zip(own, runs({**parity, "seq_len": 500}, [0.5, 0.51, 0.99]), strict=True)]
    for r in longest:
        r["seq_len"] = 50
    verdict = cell(own + longest)
    assert (verdict["verdict"], verdict["n_solved"]) == ("split", 1)  # 1 of 3 seeds hold at 500
    assert cell(own)["verdict"] == "solved"  # at its own length alone it would read solved
