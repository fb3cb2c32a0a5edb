"""Learning-rate sweeps, iso-size races, subsets, presets and the plan printed before any work."""

from __future__ import annotations

import pytest

from flows import compare_args
from rnnbench.config import PRESETS, ProblemGrid, from_preset
from rnnbench.matching import model_size
from rnnbench.problems import PROBLEMS
from rnnbench.scheduling import plan_text


def config(*argv: str):
    return compare_args.config_from_args(compare_args.build_parser().parse_args([*argv, "--out", "/tmp/unused"]))


def test_every_cell_runs_at_every_learning_rate():
    c = config("--preset", "smoke", "--problems", "adding", "--archs", "gru", "--lrs", "3e-4,1e-3,3e-3")
    runs = c.runs()
    assert sorted({r.lr for r in runs}) == [3e-4, 1e-3, 3e-3] and len(runs) == 3
    assert len({r.run_id for r in runs}) == 3


@pytest.mark.parametrize("bad, message", [("0,1e-3", "learning rate 0.0 must be positive"),
                                          ("1e-3,x", "expected comma-separated numbers")])
def test_bad_learning_rates_are_refused(bad, message, capsys):
    with pytest.raises(SystemExit):
        compare_args.preflight(["--lrs", bad, "--out", "/tmp/unused"])
    assert message in capsys.readouterr().err


def test_iso_parameter_race_picks_each_archs_closest_hidden_size():
    c = config("--preset", "seed", "--problems", "adding", "--seq-lens", "50", "--archs", "rnn_tanh,lstm,lru",
               "--match", "params=20000", "--seeds", "1")
    hidden = {r.arch: r.hidden_size for r in c.runs()}
    for arch, h in hidden.items():
        size = model_size("params", arch, "adding", h, c.model)
        # no other hidden size comes closer to the target
        assert abs(size - 20000) <= min(abs(model_size("params", arch, "adding", k, c.model) - 20000)
                                        for k in (h - 1, h + 1))
        assert abs(size - 20000) <= 2000
    # the closed forms quoted in the issue (adding, H=64): lstm 17,473 and lru 25,345 parameters in all
    assert model_size("params", "lstm", "adding", 64, c.model) == 17473
    assert model_size("params", "lru", "adding", 64, c.model) == 25345
    assert hidden["rnn_tanh"] > hidden["lstm"] > hidden["lru"]


def test_iso_state_race():
    c = config("--preset", "seed", "--problems", "adding", "--seq-lens", "50", "--archs", "gru,lstm",
               "--match", "state=128", "--seeds", "1")
    assert {r.arch: r.hidden_size for r in c.runs()} == {"gru": 128, "lstm": 64}  # LSTM carries h and c


def test_several_state_targets_run_every_arch_at_each():
    """state=64,256: each arch at its closest hidden size for each target (Zoology's axis): two cells per arch, the
    same as the two single-target sweeps together."""
    args = ["--preset", "seed", "--problems", "mqar", "--seq-lens", "64", "--archs", "gru,lstm", "--seeds", "1"]
    both = {(r.arch, r.hidden_size) for r in config(*args, "--match", "state=64,256").runs()}
    assert both == {(r.arch, r.hidden_size) for t in (64, 256) for r in config(*args, "--match", f"state={t}").runs()}
    assert both == {("gru", 64), ("gru", 256), ("lstm", 32), ("lstm", 128)}


def test_full_matches_its_own_grids_by_state_and_keeps_each_cards_setting():
    """full's own grids race at equal state size (the LSTM's h and c at 128 units, the rest at 256); a card's grid keeps
    the hidden size its source ran; a --match given by the user replaces both."""
    from rnnbench.cards import CARDS

    runs = from_preset("full", out="/tmp/unused").runs()
    own = {(r.problem, r.arch): r.hidden_size for r in runs if r.clip_norm == 1.0 and r.batch_size == 64}
    assert own[("adding", "lstm")] == 128 and own[("adding", "gru")] == 256 and own[("mqar", "indrnn")] == 256
    for (problem, arch), hidden in own.items():
        assert model_size("state", arch, problem, hidden, from_preset("full").model) == 256
    gpu = from_preset("full", tier="gpu").every_stage()  # a card's own rate is not tuned: its runs are reported ones
    for card in CARDS:
        assert any(r.problem == card.problem and r.arch == card.run.arch and r.hidden_size == card.run.hidden_size
                   and r.seq_len == card.run.seq_len for r in gpu), card.id
    assert {r.hidden_size for r in from_preset("full", match="state=64").runs() if r.arch == "lstm"} == {32}


def test_match_counts_the_arch_options_a_run_builds_with():
    """lru.state_size=N changes LRU's parameter count (4NH + 3N per block instead of 4H^2 + 3H): the race
    counts the model each run builds, and refuses a state race that the option has fixed."""
    args = ["--preset", "seed", "--problems", "adding", "--seq-lens", "50", "--archs", "lstm,lru", "--seeds", "1"]
    plain = config(*args, "--match", "params=20000")
    small = config(*args, "--match", "params=20000", "--arch-option", "lru.state_size=8")
    h = {r.arch: r.hidden_size for r in small.runs()}["lru"]
    assert h > {r.arch: r.hidden_size for r in plain.runs()}["lru"]
    # the closed form with N = 8, plus the readout (H + 1): I*H + H + 2H^2 + 32H + 24 + 2H + 3H
    assert model_size("params", "lru", "adding", h, small.model) == 2 * h + h + 2 * h * h + 32 * h + 24 + 5 * h + h + 1
    assert abs(model_size("params", "lru", "adding", h, small.model) - 20000) <= 2000
    with pytest.raises(ValueError, match=r"--match state=128: lru's state size is 16 whatever its hidden size "
                                         r"\(set by lru.state_size\); leave lru.state_size out"):
        config(*args, "--match", "state=128", "--arch-option", "lru.state_size=8").runs()


def test_unreachable_match_is_refused_with_the_nearest_sizes(capsys):
    with pytest.raises(SystemExit):
        compare_args.preflight(["--preset", "seed", "--problems", "adding", "--archs", "lstm", "--match", "params=5",
                                "--out", "/tmp/unused"])
    err = capsys.readouterr().err
    assert "--match params=5" in err and "lstm (nearest 22)" in err and "within 10% of 5" in err


@pytest.mark.parametrize("bad", ["size=3", "params=-2", "params=abc", "state=64,64", "state=64,", "state=64,x"])
def test_bad_match_is_refused(bad, capsys):
    with pytest.raises(SystemExit):
        compare_args.preflight(["--match", bad, "--out", "/tmp/unused"])
    assert f"match {bad!r}" in capsys.readouterr().err


def test_subset_takes_every_nth_job_and_the_plan_prices_the_whole():
    whole = from_preset("full", out="/tmp/unused")
    part = from_preset("full", out="/tmp/unused", subset="2/100")
    assert [r.run_id for r in part.runs()] == [r.run_id for r in whole.runs()[1::100]]
    text = plan_text(part, 2)
    # full tunes its rates: the whole is both stages (tuning, then the reported runs)
    assert f"subset 2/100 of {len(whole.every_stage())} jobs in all" in text and "CPU-hours" in text


@pytest.mark.parametrize("bad", ["0/5", "6/5", "x", "1/0"])
def test_bad_subset_is_refused(bad):
    with pytest.raises(ValueError, match="subset"):
        from_preset("smoke", subset=bad)


def test_presets_have_at_least_three_seeds_except_smoke():
    for name, make in PRESETS.items():
        if name != "smoke":
            assert make()["seeds"] >= 3, name


def test_full_preset_covers_every_arch_problem_length_and_three_rates():
    c = from_preset("full", out="/tmp/unused")
    runs = c.runs()
    assert {r.arch for r in runs} == {"rnn_tanh", "rnn_relu", "gru", "lstm", "indrnn", "mingru", "minlstm", "lru"}
    assert {r.problem for r in runs} == set(PROBLEMS)
    assert {r.seq_len for r in runs if r.problem == "adding"} == {50, 100, 200, 500, 1000}
    # runs() is the tuning stage: every rate on seeds of its own, after the reported ones
    assert sorted({r.lr for r in runs}) == [3e-4, 1e-3, 3e-3] and {r.seed for r in runs} == {3, 4, 5}
    assert {r.role for r in runs} == {"tune"}
    reported = c.runs(1e-3)  # the reported stage (here every cell at one stand-in rate): seeds 0..2
    assert {r.seed for r in reported} == {0, 1, 2} and {r.role for r in reported} == {"report"}
    # the published regime: 20,000 updates at every length of adding (LSTM fails T=1000 within them)
    assert {r.steps for r in runs if r.problem == "adding"} == {20_000}


def test_any_problem_can_be_asked_for_by_name():
    for name in PROBLEMS:
        c = config("--preset", "seed", "--problems", name, "--archs", "gru", "--seeds", "1")
        assert {r.problem for r in c.runs()} == {name}
        # the preset's grid where it has one, else the problem's own
        assert c.grids == ([g for g in from_preset("seed").grids if g.problem == name] or [ProblemGrid.default(name)])


def test_presets_built_from_the_registries_keep_their_grids():
    """What each preset ran before it was built from the registries: quick and full take every registered arch,
    full every registered problem at every length of 50..1000 it is defined at (adding first, so that a --subset
    of full picks the jobs it did; the problems whose sources use other lengths at those), smoke, seed and quick's
    problems are chosen."""
    archs = ["rnn_tanh", "rnn_relu", "gru", "lstm", "indrnn", "mingru", "minlstm", "lru"]

    def grids(name):  # the preset's own grids: not the reproduction cards' (each with its own archs), which follow
        return [(g.problem, g.seq_lens, g.hidden_size, g.steps, g.n_val, g.n_test) for g in from_preset(name).grids
                if g.archs is None]

    from rnnbench.cards import CARDS
    from rnnbench.config import card_grid

    assert from_preset("full").grids[-len(CARDS):] == [card_grid(c) for c in CARDS]

    lengths = [50, 100, 200, 500, 1000]
    assert grids("full") == [(p, lengths, 128, 20_000, None, None) for p in (
        "adding", "copy_memory", "sequential_xor", "copy_sequence")] + [
        # selective_copy where its context holds filler (>= 64), parity scored up to 10x (tests/test_parity_protocol)
        ("selective_copy", [100, 200, 500, 1000], 128, 20_000, None, None),
        ("temporal_order", lengths, 128, 20_000, None, None), ("parity", [50, 100, 200], 128, 20_000, None, None)] + [
        (p, [64], 128, 20_000, 180, 360) for p in ("sequential_digits", "sequential_digits_permuted")] + [
        # the lengths their sources use (Problem.full_lengths), appended so a --subset of full keeps its old jobs
        ("group_word", [20, 50, 100, 200], 128, 20_000, None, None),
        ("mqar", [64, 128, 256, 512], 128, 20_000, None, None), ("flip_flop", [512], 128, 20_000, None, None)]
    assert grids("quick") == [("adding", [12, 25, 50], 32, 1500, None, None),
                              ("temporal_order", [25, 50, 100], 32, 1000, None, None),
                              ("flip_flop", [64], 32, 600, None, None)]
    assert grids("seed") == [("copy_memory", [50], 64, 1000, None, None), ("sequential_xor", [20], 32, 500, None, None),
                             ("adding", [50, 100, 200], 64, 500, None, None)]
    assert grids("smoke") == [("copy_memory", [10], 16, 100, None, None), ("sequential_xor", [10], 16, 150, None, None),
                              ("adding", [10], 16, 100, None, None)]
    assert from_preset("full").archs == from_preset("quick").archs == archs
    assert from_preset("seed").archs == from_preset("smoke").archs == ["rnn_tanh", "gru", "lstm"]
    assert [len(from_preset(name).runs()) for name in ("full", "quick", "seed", "smoke")] == [3096, 168, 45, 9]


def test_plan_is_printed_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no API is started by preflight then
    compare_args.preflight(["--preset", "seed", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err.startswith("plan: 45 jobs") and "CPU-hours by the cost model" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_quick_is_the_default_and_names_the_eight_archs():
    c = config()
    assert c.preset == "quick" and len(c.archs) == 8 and c.seeds == 3
    # three lengths on two problems (a horizon each), and flip_flop's recall
    assert {(g.problem, tuple(g.seq_lens)) for g in c.grids} == {("adding", (12, 25, 50)),
                                                                ("temporal_order", (25, 50, 100)), ("flip_flop", (64,))}


def test_separating_problems_needs_a_solved_cell_beside_one_never_solved():
    from rnnbench.verdicts import separating_problems, summarize
    from tests.test_verdicts import ADDING, XOR, frame, runs

    apart = frame(runs(ADDING, [0.001, 0.002, 0.003], "lstm"), runs(ADDING, [0.16, 0.17, 0.165], "rnn_tanh", se=0.01),
                  runs(XOR, [1.0, 1.0, 1.0], "lstm"), runs(XOR, [1.0, 0.6, 0.6], "rnn_tanh"))
    # adding: lstm solved, rnn_tanh in no seed; xor: rnn_tanh solved one seed, so the two are not apart there
    assert separating_problems(summarize(apart)) == ["adding"]


@pytest.mark.e2e
def test_a_reduced_quick_preset_runs_end_to_end(prefect_api, tmp_path):
    """The quick preset's settings, cut to two archs, one problem and one seed (the full preset run is timed by
    benchmarks/preset_time.py and quoted in the README)."""
    import polars as pl

    from flows import compare

    out = tmp_path / "out"
    argv = ["--archs", "gru,rnn_tanh", "--problems", "temporal_order", "--seq-lens", "50", "--seeds", "1",
            "--steps", "300", "--out", str(out)]
    assert compare.main(argv) == 0
    summary = pl.read_parquet(out / "summary.parquet")
    assert set(summary["arch"]) == {"gru", "rnn_tanh"} and set(summary["seq_len"]) == {50}
    assert summary["lr"].to_list() == [3e-3, 3e-3] and (out / "report.html").is_file()


def test_a_sweep_that_cannot_fit_is_refused_with_the_estimate_before_anything_is_written(capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        compare_args.preflight(["--preset", "seed", "--problems", "adding", "--seq-lens", "100000000",
                                "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "the datasets of this sweep need about" in err and "TiB on disk" in err and "free" in err
    assert not out.exists()


def test_a_job_that_would_not_fit_in_memory_is_refused(capsys, tmp_path):
    from rnnbench import sizing

    config = from_preset("seed", out=str(tmp_path / "out"), batch_size=4096, n_train=4096,
                         grids=[ProblemGrid.default("adding").model_copy(update={"seq_lens": [200_000]})])
    with pytest.raises(ValueError, match=r"one job \(adding, T=200000, rnn_tanh\) needs about .* of memory and this "
                                         r"machine has"):
        sizing.check_fits(config)
