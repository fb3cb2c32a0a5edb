"""The history of scheduled runs: two dated runs under a root (built from constructed frames) -> history.parquet and
history.html name both dates and show the one verdict made to differ, with what each run ran on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows import history as history_flow
from rnnbench import history
from schemas.history import History
from schemas.metrics import Metrics, read_validated, write_validated
from schemas.summary import Summary
from tasks.report import derived
from tests.test_report import sweep_frames

ROOT = Path(__file__).resolve().parent.parent
DATES = ("2026-12-01", "2026-12-02")
CHANGED = ("adding", 10, "gru")  # solved on the first date; made to diverge on the second


def _metrics(second: bool) -> pl.DataFrame:
    metrics, _ = sweep_frames(archs=("rnn_tanh", "gru", "lstm"), lengths={"adding": [10], "sequential_xor": [10]},
                              failures=False)
    metrics = metrics.with_columns(pl.lit("cpu").alias("device"), pl.lit("nn").alias("kernel"),
                                   pl.lit(1.5 if second else 1.0).alias("train_seconds"))
    if second:
        problem, seq_len, arch = CHANGED
        hit = (pl.col("problem") == problem) & (pl.col("seq_len") == seq_len) & (pl.col("arch") == arch)
        metrics = metrics.with_columns(
            pl.when(hit).then(pl.lit("diverged")).otherwise(pl.col("status")).alias("status"),
            pl.when(hit).then(pl.lit("diverged")).otherwise(pl.col("outcome")).alias("outcome"),
            pl.when(hit).then(None).otherwise(pl.col("test_metric")).alias("test_metric"),
            pl.when(hit).then(None).otherwise(pl.col("score")).alias("score"),
            pl.when(hit).then(False).otherwise(pl.col("solved")).alias("solved"),
            pl.when(hit).then(pl.lit("fastpath")).otherwise(pl.col("kernel")).alias("kernel"),
            pl.lit("2.99.0").alias("torch_version"))
    return metrics


def _write_run(folder: str, second: bool) -> None:
    metrics = _metrics(second)
    summary, _ = derived(metrics)
    write_validated(metrics, Metrics, f"{folder}/metrics.parquet")
    write_validated(summary, Summary, f"{folder}/summary.parquet")
    code = "v0.2.0" if second else "v0.1.0"
    Path(folder, "environment.json").write_text(json.dumps({"code_version": code}))


@pytest.fixture
def root(tmp_path) -> Path:
    for i, date in enumerate(DATES):
        (tmp_path / "runs" / date).mkdir(parents=True)
        _write_run(str(tmp_path / "runs" / date), second=i == 1)
    (tmp_path / "runs" / "data").mkdir()  # a folder that is not a run (datasets): ignored
    return tmp_path / "runs"


def test_history_names_both_dates_and_the_changed_verdict(root):
    written = history_flow.build(str(root))
    frame = read_validated(written["history"], History)
    assert set(frame["run"]) == set(DATES)
    changed = frame.filter(pl.col("changed"))
    assert changed.select("run", *history.CELL, "previous_verdict", "verdict").rows() == [
        (DATES[1], *CHANGED, "solved", "diverged")]
    # every other cell kept its verdict: changed is the only one flagged
    assert frame.filter(pl.col("run") == DATES[1]).height == frame.filter(pl.col("run") == DATES[0]).height == 6
    (change,) = history.verdict_changes(frame)
    assert (change["from_code_version"], change["to_code_version"]) == ("v0.1.0", "v0.2.0")
    assert change["from_kernel"] == "nn" and change["to_kernel"] == "fastpath"
    assert change["to_torch_version"] == "2.99.0" and change["from_torch_version"] != "2.99.0"
    page = Path(written["page"]).read_text()
    for needle in (*DATES, "solved → diverged", "v0.1.0 → v0.2.0", "nn → fastpath", "adding T=10 gru"):
        assert needle in page, needle
    # time per job over the dates: the second run's jobs took 1.5 s, the first's 1 s
    times = frame.group_by("run").agg(pl.col("median_train_seconds").median()).sort("run")
    assert times["median_train_seconds"].to_list() == [1.0, 1.5]


def test_a_run_breaking_the_schema_is_listed_not_read(root):
    bad = root / "2026-12-03"
    bad.mkdir()
    (bad / "summary.parquet").write_bytes(b"not parquet")
    (bad / "metrics.parquet").write_bytes(b"not parquet")
    written = history_flow.build(str(root))
    assert set(read_validated(written["history"], History)["run"]) == set(DATES)
    assert "2026-12-03" in Path(written["page"]).read_text()


def test_an_empty_root_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="no run under"):
        history_flow.build(str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    done = subprocess.run([sys.executable, "-m", "flows.command", "history", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no run under" in done.stderr, done.stderr


def test_the_schema_refuses_a_change_flag_that_does_not_match(root):
    frame = read_validated(history_flow.build(str(root))["history"], History)
    with pytest.raises(Exception, match="changed_means"):
        History.validate(frame.with_columns(pl.lit(False).alias("changed")), lazy=True)


@pytest.mark.slow
def test_history_page_in_headless_chromium(root, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM_FLAGS, chromium

    page_file = Path(history_flow.build(str(root))["page"])
    console, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(request_route):
                if request_route.request.url.startswith(("file:", "data:")):
                    request_route.continue_()
                else:
                    outside.append(request_route.request.url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: console.append(str(e)))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            text = page.inner_text("body")
            for needle in (*DATES, "Verdict changes", "solved → diverged", "Time per job"):
                assert needle in text, needle
            assert page.locator(".changed").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(tmp_path / "history.png"), full_page=True)
            page.emulate_media(color_scheme="dark")
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(22, 22, 22)"
        finally:
            browser.close()
    assert outside == [] and console == [], outside + console
    assert (tmp_path / "history.png").stat().st_size > 5_000
