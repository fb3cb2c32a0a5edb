"""The horizon search (rnnbench/horizon.py): doubling, bisection, cap, resolution, the non-monotone flag."""

from __future__ import annotations

import pytest

from rnnbench.horizon import HorizonSearch, bracket, horizon_rows, next_length


def run_search(search: HorizonSearch, solved_up_to: int | None, valid=lambda _: True,
               also_solved: tuple[int, ...] = ()) -> tuple[list[int], dict[int, bool]]:
    """Drive the search against a cell that solves every T <= solved_up_to (and `also_solved`)."""
    verdicts: dict[int, bool] = {}
    order = []
    while (length := next_length(search, verdicts, valid)) is not None:
        assert length not in verdicts, f"{length} asked twice"
        order.append(length)
        verdicts[length] = (solved_up_to is not None and length <= solved_up_to) or length in also_solved
    return order, verdicts


def test_doubles_while_solved_then_bisects_to_the_resolution():
    search = HorizonSearch(start=25, cap=1000, resolution=10)
    order, verdicts = run_search(search, solved_up_to=130)
    assert order[:4] == [25, 50, 100, 200]  # doubling until the first unsolved length
    assert order[4:] == [150, 125, 137, 131]  # then the middle of [low, high] each round
    low, high, above, _ = bracket(verdicts)
    assert (low, high, above) == (125, 131, ())
    assert high - low <= 10


def test_resolution_one_finds_the_exact_length():
    order, verdicts = run_search(HorizonSearch(start=8, cap=64, resolution=1), solved_up_to=21)
    assert bracket(verdicts)[:2] == (21, 22)
    assert order[:3] == [8, 16, 32]


def test_a_cell_solved_at_the_cap_stops_there_beyond_it():
    order, verdicts = run_search(HorizonSearch(start=25, cap=150, resolution=5), solved_up_to=10_000)
    assert order == [25, 50, 100, 150]  # the last step is cut to the cap, never past it
    assert bracket(verdicts) == (150, None, (), (25, 50, 100, 150))


def test_an_unsolved_start_ends_the_search_with_no_horizon():
    order, verdicts = run_search(HorizonSearch(start=25, cap=1000, resolution=5), solved_up_to=None)
    assert order == [25]
    assert bracket(verdicts)[:2] == (None, 25)


def test_only_valid_lengths_are_asked_for():
    even = lambda t: t % 2 == 0  # noqa: E731 - flip_flop wants an even T
    order, verdicts = run_search(HorizonSearch(start=8, cap=64, resolution=1), solved_up_to=21, valid=even)
    assert all(t % 2 == 0 for t in order)
    assert bracket(verdicts)[:2] == (20, 22)  # no even length lies between: done


def test_a_solved_length_above_an_unsolved_one_is_flagged_not_counted():
    found = bracket({25: True, 50: False, 100: True})
    assert found.low == 25 and found.high == 50
    assert found.above_gap == (100,) and found.non_monotone
    # and the search bisects below the first unsolved length, not past the flagged one
    assert next_length(HorizonSearch(start=25, cap=200, resolution=5), {25: True, 50: False, 100: True}) == 37


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"start": 200, "cap": 100, "resolution": 5}, "cap=100"),
    ({"start": 25, "cap": 100, "resolution": 0}, "resolution=0"),
    ({"start": 1, "cap": 100, "resolution": 5}, "start=1"),
])
def test_bad_settings_are_refused_naming_the_value(kwargs, named):
    with pytest.raises(ValueError, match=named):
        HorizonSearch(**kwargs)


def test_ladder_is_the_longest_a_search_can_run():
    assert HorizonSearch(start=25, cap=150, resolution=5).ladder() == [25, 50, 100, 150]


def cell(problem, arch, seq_len, verdict, **extra):
    return {"problem": problem, "arch": arch, "seq_len": seq_len, "verdict": verdict, "n_seeds": 3, "lr": 1e-3,
            "hidden_size": 32, "params": 100, "state_size": 32, "median_train_seconds": 2.0,
            "median_steps_done": 100.0, **extra}


def test_horizon_rows_from_a_grid_and_a_search():
    cells = [cell("adding", "lstm", 25, "solved"), cell("adding", "lstm", 50, "solved"),
             cell("adding", "lstm", 100, "at baseline"), cell("adding", "rnn_tanh", 25, "split"),
             cell("adding", "rnn_tanh", 50, "solved", lr=3e-3),
             cell("parity", "gru", 20, "solved"), cell("parity", "gru", 40, "solved")]
    searches = {"parity": HorizonSearch(start=20, cap=40, resolution=5)}
    rows = {(r["problem"], r["arch"]): r for r in horizon_rows(cells, searches, ["lr", "hidden_size"],
                                                              {("adding", "lstm"): (9, 12.5)})}
    lstm = rows[("adding", "lstm")]
    assert (lstm["horizon_low"], lstm["horizon_high"], lstm["beyond_cap"]) == (50, 100, False)
    assert lstm["lengths_tried"] == [25, 50, 100] and lstm["search"] == "grid" and lstm["cap"] == 100
    assert (lstm["jobs"], lstm["seconds"], lstm["seconds_per_update"]) == (9, 12.5, 0.02)
    tanh = rows[("adding", "rnn_tanh")]
    assert tanh["horizon_low"] is None and tanh["horizon_high"] == 25 and tanh["non_monotone"]
    assert tanh["lr"] is None  # the rate differs between its lengths
    gru = rows[("parity", "gru")]
    assert gru["beyond_cap"] and gru["horizon_high"] is None and gru["search"] == "search"
    assert gru["resolution"] == 5


@pytest.mark.parametrize(("flags", "named"), [
    (["--horizon", "200,100,25"], "cap=100"),
    (["--horizon", "25,100,0"], "resolution=0"),
    (["--horizon", "25,100"], "'25,100'"),
    (["--problems", "flip_flop", "--horizon", "5,64,4"], "start=5"),
    (["--problems", "flip_flop", "--horizon", "4,63,4"], "cap=63"),
    (["--problems", "adding", "--horizon", "25,100,5", "--lrs", "1e-3,3e-3"], "lrs="),
    (["--problems", "adding", "--horizon", "25,100,5", "--subset", "1/2"], "subset="),
])
def test_bad_horizon_flags_are_refused_before_any_work(flags, named, capsys, tmp_path, monkeypatch):
    from flows import compare_args

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # preflight starts no API then
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        compare_args.preflight([*flags, "--out", str(out)])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_horizon_flag_searches_every_grid_and_the_preset_has_its_own():
    from flows.compare_args import build_parser, config_from_args
    from rnnbench.config import from_preset

    config = config_from_args(build_parser().parse_args(["--problems", "adding,temporal_order", "--horizon",
                                                         "25,200,10"]))
    assert config.searches() == {p: HorizonSearch(start=25, cap=200, resolution=10)
                                 for p in ("adding", "temporal_order")}
    assert {s.seq_len for s in config.runs()} == {25}  # the first round: every cell at the start
    later = config.round_runs({("adding", "lstm"): [50]})
    assert {(s.problem, s.arch, s.seq_len) for s in later} == {("adding", "lstm", 50)}
    assert len(later) == config.seeds
    assert set(from_preset("horizon").searches()) == {"adding", "temporal_order", "flip_flop"}


def horizons_table(**changes):
    from schemas.horizons import horizons_frame

    rows = horizon_rows([cell("adding", "lstm", 25, "solved"), cell("adding", "lstm", 50, "at baseline"),
                         cell("adding", "gru", 25, "solved"), cell("adding", "gru", 50, "solved")], {},
                        ["lr", "hidden_size", "steps"], {("adding", "lstm"): (6, 3.0), ("adding", "gru"): (6, 2.0)})
    rows[0].update(changes)
    return horizons_frame(rows)


def test_the_horizons_schema_holds_for_written_rows_and_round_trips(tmp_path):
    from schemas.horizons import Horizons
    from schemas.metrics import read_validated, write_validated

    path = write_validated(horizons_table(), Horizons, str(tmp_path / "horizons.parquet"))
    back = read_validated(path, Horizons)
    assert back.equals(horizons_table())
    gru = back.filter(back["arch"] == "gru").row(0, named=True)
    assert gru["beyond_cap"] and gru["horizon_low"] == 50 and gru["lengths_tried"] == [25, 50]


@pytest.mark.parametrize(("changes", "check"), [
    ({"horizon_low": 50, "horizon_high": 50}, "low_below_high"),
    ({"beyond_cap": True}, "beyond_cap_has_no_high"),  # gru's row is first: solved to its cap
    ({"horizon_low": 200, "horizon_high": None}, "bracket_lengths_were_tried"),
    ({"lengths_tried": [25, 50, 400]}, "within_the_cap"),
    ({"search": "guess"}, "isin"),
    ({"jobs": -1}, "greater_than_or_equal_to"),
])
def test_the_horizons_schema_refuses_an_impossible_row(changes, check):
    from schemas.errors import ValidationError
    from schemas.horizons import Horizons
    from schemas.metrics import validated

    frame = horizons_table(**changes)
    if changes == {"beyond_cap": True}:
        frame = horizons_table(beyond_cap=True, horizon_low=25, horizon_high=50)
    with pytest.raises(ValidationError, match=check):
        validated(frame, Horizons, "test rows")


@pytest.mark.parametrize("solved_up_to", [None, 25, 37, 60, 130, 399, 400, 10_000])
def test_max_rounds_bounds_every_search(solved_up_to):
    search = HorizonSearch(start=25, cap=400, resolution=5)
    order, _ = run_search(search, solved_up_to)
    assert len(order) <= search.max_rounds()
