"""The report from synthetic metrics: escaped Markdown, Markdown and HTML saying the same, figures only where the
data supports them, a self-contained page, no pyplot."""

from __future__ import annotations

import base64
import html.parser
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from markdown_it import MarkdownIt

from rnnbench import report, report_figures
from rnnbench.archs import ARCHS
from rnnbench.problems import get_problem
from schemas.metrics import Curves, Metrics, curves_frame, metrics_frame, validated

ROOT = Path(__file__).resolve().parent.parent
NASTY_ERROR = "RuntimeError: worker died | exit code 137\nsecond line with <angle> and *stars* and `ticks`"

# where each architecture stops solving (longest solved T) in the synthetic sweep
HORIZONS = {"lstm": 100, "gru": 50, "rnn_tanh": 0, "mingru": 50, "lru": 100, "indrnn": 10}


# ---- synthetic frames with the columns of the metrics contract --------------------------------------------------
def sweep_frames(archs=("rnn_tanh", "gru", "lstm"), lengths=None, seeds=3, lrs=(3e-3,), failures=True,
                 eval_lens=None, steps=200, points=8, held_out=()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(metrics, curves) of a made-up sweep: one row per run with every column of the metrics contract, and
    validation curves. `lengths`: problem -> training lengths. `eval_lens`: add an eval_len column (one row per
    run and evaluation length). `held_out`: names of held-out test splits, one more row per run for each (its metric
    halfway to the baseline, not solved). Deterministic."""
    lengths = lengths or {"adding": [10, 50], "sequential_xor": [10]}
    rng = random.Random(0)
    rows, curve_rows = [], []
    for problem_name, ts in lengths.items():
        problem = get_problem(problem_name)
        hib = problem.higher_is_better
        for t in ts:
            baseline = problem.baseline(t)
            for arch in archs:
                for lr in lrs:
                    for seed in range(seeds):
                        run_id = f"{problem_name}-{t}-{arch}-{lr:g}-{seed}"
                        lr_ok = lr == max(lrs)  # the larger rate learns, the smaller lags
                        horizon = HORIZONS.get(arch, 10)
                        # gru: 2 of 3 seeds solve (still "solved"); mingru at its horizon: 1 of 3 ("split")
                        solved = (t <= horizon and lr_ok and not (arch == "gru" and seed == 1)
                                  and not (arch == "mingru" and t == horizon and seed > 0))
                        status, outcome, error = "ok", None, None
                        if failures and arch == archs[0] and seed == seeds - 1 and t == ts[-1]:
                            status, outcome, error = "failed", "failed", NASTY_ERROR
                        elif failures and arch == archs[-1] and seed == 0 and t == ts[-1] and lr == lrs[0]:
                            status, outcome, error = "diverged", "diverged", "loss became nan at update 37"
                        if status == "ok":
                            if solved:
                                metric = rng.uniform(0.992, 1.0) if hib else rng.uniform(0.0005, 0.006)
                                outcome = "solved"
                            elif (seed + t) % 2 == 0:
                                metric = baseline + (1 - baseline) * 0.4 if hib else baseline * 0.55
                                outcome = "beats_baseline"
                            else:
                                metric = baseline + rng.uniform(-0.004, 0.004)
                                outcome = "at_baseline"
                        else:
                            metric = None
                        done = steps if status == "ok" else 37
                        params = {"lstm": 4, "gru": 3, "mingru": 2}.get(arch, 1) * 300 + 17
                        seconds = params / 300 * t / 10 * rng.uniform(0.9, 1.1)
                        base_row = {
                            "run_id": run_id, "problem": problem_name, "arch": arch, "seq_len": t, "eval_len": t,
                            "test_split": "test", "min_len": 0,
                            "seed": seed, "hidden_size": 16, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
                            "bias": True, "proj_size": 0, "forget_bias": None, "recurrent_init": "default",
                            "steps": steps, "steps_done": done, "lr": lr, "batch_size": 32, "clip_norm": 1.0,
                            "n_train": 2048, "n_val": 256, "n_test": 256, "early_stop": False, "epochs": 3.1,
                            "params": params,
                            "state_size": 32 if arch == "lstm" else 16, "metric_name": problem.metric_name,
                            "higher_is_better": hib, "test_metric": metric,
                            "test_metric_last": None if metric is None else metric * 1.01,
                            "test_se": None if metric is None else 0.002, "val_metric_best":
                                None if metric is None else metric + (0.001 if lr == lrs[-1] else 0.0),
                            "best_step": done, "steps_to_solve": done // 2 if outcome == "solved" else None,
                            "outcome": outcome, "baseline": baseline,
                            "score": None if metric is None else problem.score(metric, t),
                            "solved": outcome == "solved", "solved_rule": problem.solved_rule(),
                            "within_tolerance": None, "final_train_loss": None if metric is None else 0.1,
                            "status": status, "error": error, "train_seconds": None if metric is None else seconds,
                            "steps_per_second": None if metric is None else steps / seconds, "device": "cpu",
                            "node": "node-a", "ray_node_id": None, "torch_version": "2.13.0",
                            "python_version": "3.11.7",
                        }
                        for eval_len in eval_lens or [None]:
                            row = dict(base_row)
                            if eval_lens:  # the same run scored at other lengths: one row per length
                                row["eval_len"] = eval_len
                                if metric is not None and eval_len != t:
                                    row["test_metric"] = metric + (baseline - metric) * min(1, eval_len / t / 4)
                            rows.append(row)
                        for split in held_out:
                            shifted = None if metric is None else (metric + baseline) / 2
                            rows.append({**base_row, "test_split": split, "test_metric": shifted,
                                         "solved": False, "outcome": outcome if metric is None else "beats_baseline"})
                        if metric is not None:
                            for i in range(1, points + 1):
                                step = steps * i // points
                                value = baseline + (metric - baseline) * (1 - 0.6 ** i)
                                curve_rows.append({"run_id": run_id, "step": step, "train_loss": 1 / i,
                                                   "val_metric": value})
    metrics = validated(metrics_frame(rows), Metrics, "synthetic metrics")  # exactly the metrics contract
    curves = validated(curves_frame(curve_rows), Curves, "synthetic curves")
    return metrics, curves


CONFIG = {"preset": "test", "archs": ["rnn_tanh", "gru", "lstm"], "seeds": 3}
ENVIRONMENT = {"python": "3.11.7", "packages": {"torch": "2.13.0"}, "devices": ["cpu"], "wall_seconds": 12.5}


def build(**kwargs) -> report.Report:
    metrics, curves = sweep_frames(**kwargs)
    return report.build(metrics, curves, CONFIG, ENVIRONMENT)


@pytest.fixture(scope="module")
def full() -> report.Report:
    return build(archs=("rnn_tanh", "gru", "lstm"), lengths={"adding": [10, 50, 100], "sequential_xor": [10]},
                 lrs=(1e-3, 3e-3))


# ---- helpers: tables and text as a reader sees them ----------------------------------------------------------------
class _Tables(html.parser.HTMLParser):
    """Every table of an HTML document as rows of whitespace-normalised cell texts; and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_html(document: str) -> _Tables:
    parser = _Tables()
    parser.feed(document)
    return parser


def markdown_as_html(text: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


# ---- tests -------------------------------------------------------------------------------------------------------
def test_markdown_cell_escaping_keeps_one_cell_per_value():
    cell = report.md_cell(NASTY_ERROR)
    assert "\n" not in cell and "|" not in cell.replace("\\|", "")
    rendered = parse_html(markdown_as_html(f"| a | b |\n|---|---|\n| {cell} | x |\n"))
    assert rendered.tables == [[["a", "b"], [" ".join(NASTY_ERROR.split()), "x"]]]
    assert report.md_text("rnn_tanh *and* _x_") == "rnn_tanh \\*and\\* \\_x\\_"


def test_failed_jobs_table_survives_newlines_and_pipes(full):
    md_tables = parse_html(markdown_as_html(full.markdown())).tables
    failed = next(t for t in md_tables if t[0][:3] == ["problem", "T", "arch"] and "error" in t[0])
    width = len(failed[0])
    assert all(len(row) == width for row in failed)
    errors = [row[failed[0].index("error")] for row in failed[1:]]
    assert " ".join(NASTY_ERROR.split()) in errors
    assert "loss became nan at update 37" in errors


def test_markdown_and_html_say_the_same(full):
    page = parse_html(full.html())
    md = parse_html(markdown_as_html(full.markdown()))
    assert page.tables == md.tables and len(page.tables) >= 5
    page_text = " ".join(" ".join(page.text).split())
    md_text = " ".join(" ".join(md.text).split())
    for sentence in full.findings:
        assert " ".join(sentence.split()) in page_text and " ".join(sentence.split()) in md_text
    for section in full.sections:
        for part in (section, *section.subsections):
            assert part.title in page_text and part.title in md_text
            for block in part.blocks:
                if isinstance(block, report.FigureBlock | report.Paragraph):
                    text = block.caption if isinstance(block, report.FigureBlock) else block.text
                    assert " ".join(text.split()) in page_text and " ".join(text.split()) in md_text
    for name in full.images:
        assert f"](plots/{name})" in full.markdown()


def test_answer_comes_first_with_overview_and_horizon(full):
    first = full.sections[0]
    assert first.title == "Answer" and isinstance(first.blocks[0], report.FigureBlock)
    # led by the horizons (adding ran at several lengths), then the verdict overview
    assert [b.name for b in first.blocks[:2]] == ["horizons.png", "overview.png"]
    brackets = first.blocks[-1]
    assert isinstance(brackets, report.Table) and "bracket" in brackets.caption
    lstm = next(row for row in brackets.rows if row[0] == "lstm")
    assert lstm[brackets.header.index("adding")].startswith("T=100")  # solved up to its longest length
    horizon = next(b for b in first.blocks if isinstance(b, report.Table))
    adding = horizon.header.index("adding")
    by_arch = {row[0]: row for row in horizon.rows}
    assert by_arch["lstm"][adding] == "T=100"  # the synthetic sweep's HORIZONS
    assert by_arch["gru"][adding] == "T=50"
    assert by_arch["rnn_tanh"][1:] == ["none solved", "none solved"]
    assert [s.title for s in full.sections[:2]] == ["Answer", "Findings"]
    assert "Failed and diverged jobs" in [s.title for s in full.sections]


def test_figures_only_where_the_data_supports_them(full):
    names = set(full.images)
    assert {"overview.png", "length_adding.png", "curves_adding.png", "curves_sequential_xor.png",
            "lr_adding.png", "lr_sequential_xor.png", "cost_adding.png", "cost_sequential_xor.png"} <= names
    assert "length_sequential_xor.png" not in names  # one length: no metric-vs-T plot
    assert not any(n.startswith("generalisation_") for n in names)  # no eval_len column
    single = build(lengths={"adding": [10]}, lrs=(3e-3,))
    assert not any(n.startswith(("length_", "lr_")) for n in single.images)
    assert not any(n.startswith("generalisation_") for n in build(lengths={"adding": [10]}, eval_lens=[10]).images)
    general = build(lengths={"adding": [10]}, eval_lens=[10, 20, 40])
    assert "generalisation_adding.png" in general.images


def _all_blocks(built: report.Report) -> list:
    return [b for s in built.sections for part in (s, *s.subsections) for b in part.blocks]


def test_held_out_splits_get_their_own_table_and_never_enter_the_verdicts(full):
    """Rows on held-out test sets (flip_flop's sparse and dense) are shown beside the own test set per arch and T;
    the verdicts and counts read the own test set only (the same report as without them)."""
    kwargs = {"lengths": {"flip_flop": [16]}, "failures": False}
    plain, shifted = build(**kwargs), build(held_out=("sparse", "dense"), **kwargs)
    tables = [b for b in _all_blocks(shifted) if isinstance(b, report.Table) and "sparse" in b.header]
    assert len(tables) == 1
    table = tables[0]
    assert table.header == ["T", "architecture", "test (own)", "dense", "sparse"]
    assert sorted(r[1] for r in table.rows) == ["gru", "lstm", "rnn_tanh"]
    assert "p_i=0.98" in table.caption and "p_i=0.1" in table.caption
    lstm = next(r for r in table.rows if r[1] == "lstm")
    assert lstm[2].endswith("(3/3 solved)") and lstm[3].endswith("(0/3 solved)")
    assert not [b for b in _all_blocks(plain) if isinstance(b, report.Table) and "sparse" in b.header]
    assert plain.sections[0] == shifted.sections[0]  # the answer: verdicts from the own test set alone


def test_a_sweep_over_state_sizes_draws_the_metric_against_state_size():
    """Every arch at two hidden sizes (a --match state=a,b sweep): one figure of the metric against state size, with
    both sizes of each arch drawn although the overview shows one cell per arch; one size only: no such figure."""
    metrics, curves = sweep_frames(lengths={"mqar": [64]}, failures=False)
    wider = pl.lit(64, metrics.schema["hidden_size"]).alias("hidden_size")
    bigger = metrics.with_columns(pl.col("run_id") + "-h64", wider, pl.col("state_size") * 4)
    more_curves = pl.concat([curves, curves.with_columns(pl.col("run_id") + "-h64")])
    two = report.build(pl.concat([metrics, bigger]), more_curves, CONFIG, ENVIRONMENT)
    assert "state_mqar.png" in two.images
    block = next(b for b in _all_blocks(two) if isinstance(b, report.FigureBlock) and b.name == "state_mqar.png")
    assert "state size" in block.caption and "Zoology" in block.caption
    assert "state_mqar.png" not in report.build(metrics, curves, CONFIG, ENVIRONMENT).images


def test_every_image_is_a_png_that_the_page_embeds(full):
    page = full.html()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(full.images)
    pngs = {base64.b64decode(s.split(",", 1)[1]) for s in sources if s.startswith("data:image/png;base64,")}
    assert pngs == set(full.images.values())
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs)


def test_page_requests_nothing():
    page = build(lengths={"adding": [10]}).html()
    body = page.split("<body>", 1)[1]
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page)
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)
    assert "url(" not in page and "@import" not in page
    assert "plots/" not in body.split("<pre>")[0]  # the Markdown's image paths never leak into the page


def test_a_sweep_where_every_job_failed_still_reports():
    metrics, curves = sweep_frames(archs=("gru",), lengths={"adding": [10]}, seeds=1)
    metrics = metrics.with_columns(pl.lit("failed").alias("status"), pl.lit("failed").alias("outcome"),
                                   pl.lit(None, pl.Float64).alias("test_metric"), pl.lit("boom").alias("error"))
    built = report.build(metrics, curves.clear(), CONFIG, ENVIRONMENT)
    assert "boom" in built.markdown() and "gru" in built.html()
    assert "overview.png" in built.images


def test_failures_section_when_all_ok():
    clean = build(lengths={"sequential_xor": [10]}, failures=False)
    section = next(s for s in clean.sections if s.title == "Failed and diverged jobs")
    assert "None" in section.blocks[0].text


def test_solved_threshold_matches_each_rule():
    assert report.solved_threshold("adding", 50) == pytest.approx(0.01, abs=1e-9)
    assert report.solved_threshold("sequential_xor", 10) == pytest.approx(0.99, abs=1e-9)
    assert report.solved_threshold("copy_memory", 10) == pytest.approx(1 / 120, abs=1e-9)


def test_architecture_styles_are_fixed_and_distinct():
    styles = [report_figures.arch_style(a) for a in ARCHS]
    for attr in ("color", "marker", "linestyle"):
        values = [getattr(s, attr) for s in styles]
        assert len(set(map(str, values))) == len(values), attr
    assert report_figures.arch_style("lstm") == report_figures.arch_style("lstm")


def test_no_pyplot_anywhere_in_the_report():
    for folder in ("rnnbench", "flows", "tasks", "schemas"):  # figures use Figure + FigureCanvasAgg, no global state
        for path in (ROOT / folder).rglob("*.py"):
            assert "pyplot" not in path.read_text().replace("no pyplot", ""), path
    code = ("import sys, json\n"
            "from tests.test_report import build\n"
            "build(lengths={'adding': [10, 20]}, lrs=(1e-3, 3e-3))\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('matplotlib.pyplot'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_reproduction_section_shows_every_card_with_its_source_n_differences_and_result():
    from rnnbench.cards import CARDS, get_card
    from tests.test_cards import card_rows
    from tests.test_verdicts import ADDING, frame, runs

    card = get_card("batzner-adding-100-lstm")
    section = next(s for s in build_report(card_rows(card, [0.001] * 3, 3_000)).sections
                   if s.title == "Reproduction of published results")
    rows = {r[0]: r for r in section.blocks[-1].rows}
    assert len(rows) == len(CARDS)
    # card, claim, result, found, source's n, source, differences, verified: the answer first
    assert rows[card.id][4] == "1 curve" and "clip_norm" in rows[card.id][6] and rows[card.id][2] == "agrees"
    assert rows[card.id][3].startswith("solved (3 of 3 solved), median 3,000 updates to solve")
    assert rows["batzner-adding-1000-lstm"][2] == "not run"
    # a sweep that ran no card has no section, unless its preset holds the cards
    other = frame(runs(dict(ADDING, seq_len=50), [0.001, 0.002, 0.003], "lstm"))
    assert "Reproduction of published results" not in [s.title for s in build_report(other).sections]
    for preset in ("full", "reproduce"):
        section = next(s for s in build_report(other, preset=preset).sections
                       if s.title == "Reproduction of published results")
        assert all(row[2] == "not run" for row in section.blocks[-1].rows)


def parity_report(eval_lens=(10, 40)):
    """mingru and lstm on parity T=10 (both solve it there); at length 40 mingru solves it and lstm does not."""
    metrics, curves = sweep_frames(archs=("mingru", "lstm"), lengths={"parity": [10]}, eval_lens=list(eval_lens),
                                   failures=False)
    longer = pl.col("eval_len") > pl.col("seq_len")
    metrics = metrics.with_columns(
        pl.when(longer & (pl.col("arch") == "mingru")).then(pl.lit(1.0)).otherwise(pl.col("test_metric"))
        .alias("test_metric"))
    metrics = metrics.with_columns(pl.when(longer).then(pl.col("test_metric") >= 0.99).otherwise(pl.col("solved"))
                                   .alias("solved"))
    metrics = metrics.with_columns(pl.when(longer).then(pl.when(pl.col("solved")).then(pl.lit("solved"))
                                                        .otherwise(pl.lit("at_baseline")))
                                   .otherwise(pl.col("outcome")).alias("outcome"))
    return report.build(metrics, curves, CONFIG, ENVIRONMENT)


def test_theory_beside_the_verdict_flags_a_solved_cannot_and_reads_an_unsolved_can_as_not_learned():
    built = parity_report()
    answer = next(s for s in built.sections if s.title == "Answer")
    theory_table = next(b for b in answer.blocks if isinstance(b, report.Table) and "verdict at T" in b.header)
    rows = {r[2]: r[-1] for r in theory_table.rows}
    assert rows["mingru"].startswith("⚠ theory: cannot") and "a bug or a leak until shown otherwise" in rows["mingru"]
    assert "at length 40: 3 of 3 seeds solved" in rows["mingru"]
    assert "not learned at this budget" in rows["lstm"] and "theory: can " in rows["lstm"]
    assert "cannot" not in rows["lstm"]
    lead = next(b for b in answer.blocks if isinstance(b, report.Paragraph) and b.lead.startswith("Theory"))
    assert "1 solved where theory says cannot: a bug or a leak" in lead.text
    # the per-problem table carries the same reading beside each verdict
    table = next(b for s in built.sections for p in s.subsections if p.title == "Problem: parity"
                 for b in p.blocks if isinstance(b, report.Table) and "theory" in b.header)
    column = table.header.index("theory")
    assert sorted(r[column].split(";")[0] for r in table.rows) == [
        "theory: can (parity beyond the training length)", "⚠ theory: cannot (parity beyond the training length)"]
    for text in (built.markdown(), built.html()):
        assert "a bug or a leak until shown otherwise" in text and "not learned at this budget" in text


def test_theory_says_untested_without_longer_lengths_and_stays_out_of_unpredicted_problems():
    built = parity_report(eval_lens=(10,))
    assert "not tested here" in built.markdown() and "a bug or a leak" not in built.markdown()
    plain = build(lengths={"adding": [10]})
    assert "theory:" not in plain.markdown()


def build_report(metrics, preset: str = "test"):
    from rnnbench.report import build as build_

    curves = validated(curves_frame([]), Curves, "no curves")
    return build_(metrics, curves, dict(CONFIG, preset=preset), ENVIRONMENT)


def test_cost_horizon_marks_split_cells_beyond_the_horizon():
    """mingru solves adding T=10 (3 of 3) and T=50 in 1 of 3 seeds: its horizon is 10, and the split cell at 50 is
    drawn apart (half-filled); lstm's cells are solved up to 100, nothing split."""
    metrics, curves = sweep_frames(archs=("mingru", "lstm"), lengths={"adding": [10, 50, 100]}, failures=False)
    data = report.prepare(metrics, curves)
    points = {p["arch"]: p for p in report._horizon_costs(data, "adding")}
    assert (points["mingru"]["horizon"], points["mingru"]["split"]) == (10, 50)
    assert (points["lstm"]["horizon"], points["lstm"]["split"]) == (100, None)
    fig = report_figures.cost_horizon("adding", list(points.values()), [10, 50, 100])
    assert "split: some seeds solved that T" in fig.get_suptitle()
    half = [line for ax in fig.axes for line in ax.get_lines() if line.get_fillstyle() == "bottom"]
    assert len(half) == 2  # mingru's split point in each panel, labelled with its count
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["split 1/3", "split 1/3"]


# ---- what the report claims, and at which level (issue 21) ----------------------------------------------------
def test_every_interval_prints_its_own_level_and_none_claims_95_percent(full):
    """Three seeds: each interval is the range, which covers the median over seeds with probability 0.75; the
    report says so, cell by cell and in words, and never calls an interval 95%."""
    for text in (full.markdown(), full.html()):
        assert "95%" not in text and "95 %" not in text and "bootstrap" not in text
    assert "range over 3 seeds, covers the median with prob. 0.75" in full.markdown()
    cells = [c for t in parse_html(markdown_as_html(full.markdown())).tables for row in t for c in row
             if re.fullmatch(r"[\d.e-]+ \[[\d.e-]+, [\d.e-]+\] \(.*\)", c)]
    assert cells and all(c.endswith(("(0.75)", "(0.50)")) for c in cells)
    assert set(full.summary.filter(pl.col("n_ok") == 3)["ci_level"]) == {0.75}
    # six seeds: the range covers with probability 1 - 2/64 = 0.97, at or above the level the rules ask for
    six = build(lengths={"adding": [10]}, seeds=6, failures=False)
    assert "range over 6 seeds, covers the median with prob. 0.97" in six.markdown()
    assert report.level_text(0.9496) == "0.949" and report.level_text(0.9375) == "0.94"


def test_horizon_counts_only_lengths_solved_together_with_every_shorter_one():
    def cell(arch, t, verdict):
        return {"arch": arch, "problem": "adding", "seq_len": t, "verdict": verdict}

    chosen = [cell("gru", 10, "solved"), cell("gru", 50, "split"), cell("gru", 100, "solved"),
              cell("lstm", 10, "solved"), cell("lstm", 50, "solved"), cell("lstm", 100, "at baseline"),
              cell("rnn_tanh", 10, "at baseline"), cell("rnn_tanh", 50, "solved")]
    horizon, beyond = report.horizons(chosen)
    assert horizon == {("gru", "adding"): 10, ("lstm", "adding"): 50, ("rnn_tanh", "adding"): None}
    assert beyond == {("gru", "adding"): ([100], 50), ("rnn_tanh", "adding"): ([50], 10)}
    metrics, curves = sweep_frames(archs=("gru", "lstm"), lengths={"adding": [10, 50, 100]}, failures=False)
    # gru's seeds at T=50 do not solve it (the synthetic gru solves up to 50): its T=100 becomes a gap above
    broken = metrics.with_columns(
        pl.when((pl.col("arch") == "gru") & (pl.col("seq_len") == 100)).then(pl.lit(0.001))
        .otherwise(pl.col("test_metric")).alias("test_metric"),
        pl.when((pl.col("arch") == "gru") & (pl.col("seq_len") == 100)).then(pl.lit("solved"))
        .when((pl.col("arch") == "gru") & (pl.col("seq_len") == 50)).then(pl.lit("at_baseline"))
        .otherwise(pl.col("outcome")).alias("outcome"))
    broken = broken.with_columns((pl.col("outcome") == "solved").alias("solved"))
    built = report.build(broken, curves, CONFIG, ENVIRONMENT)
    table = next(b for b in built.sections[0].blocks if isinstance(b, report.Table))
    row = {r[0]: r for r in table.rows}["gru"]
    assert row[1] == "T=10 (also solved: T=100, above unsolved T=50: not counted)"


def test_learning_curve_median_carries_a_stopped_run_forward():
    runs_ = [{"steps": [1, 2, 3, 4], "values": [0.2, 0.4, 0.6, 0.8]},
             {"steps": [1, 2], "values": [0.9, 1.0]},  # stopped early, solved
             {"steps": [1, 2, 3, 4], "values": [0.1, 0.1, 0.1, 0.1]}]
    steps, median = report_figures.median_curve(runs_)
    # dropping the stopped run would give 0.35 and 0.45 at steps 3 and 4: a median that falls as seeds finish
    assert steps == [1, 2, 3, 4] and median == [0.2, 0.4, 0.6, 0.8]
    caption = next(b.caption for s in build(lengths={"adding": [10]}).sections for p in (s, *s.subsections)
                   for b in p.blocks if isinstance(b, report.FigureBlock) and b.name == "curves_adding.png")
    assert "counts at its last value" in caption


def test_pairs_are_tabled_in_the_details_and_never_listed_in_the_findings(full):
    from schemas.comparisons import Comparisons

    validated(full.comparisons, Comparisons, "the report's comparisons")
    assert full.comparisons.height == 12  # 3 pairs at each of 4 (problem, T)
    tables = parse_html(markdown_as_html(full.markdown())).tables
    pairs = [t for t in tables if "p (Holm)" in t[0]]
    assert len(pairs) == 2 and sum(len(t) - 1 for t in pairs) == 12
    for sentence in full.findings:
        assert "better than" not in sentence and sentence.count("Ranking") <= 1
        assert "no pair distinguishable with" in sentence
