"""`python -m flows.report OUT`: summary, comparisons and report rebuilt from a finished output, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows import report as rebuild
from rnnbench import report
from rnnbench.verdicts import compare_archs, summarize
from schemas.comparisons import Comparisons
from schemas.metrics import Curves, Metrics, read_validated, write_validated
from schemas.summary import Summary
from tests.test_report import CONFIG, ENVIRONMENT, sweep_frames


def finished_output(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What a sweep leaves for a rebuild: metrics, curves, config.json and environment.json."""
    metrics, curves = sweep_frames(lengths={"adding": [10, 50]}, lrs=(1e-3, 3e-3))
    write_validated(metrics, Metrics, str(out / "metrics.parquet"))
    write_validated(curves, Curves, str(out / "curves.parquet"))
    (out / "config.json").write_text(json.dumps(CONFIG))
    (out / "environment.json").write_text(json.dumps(ENVIRONMENT))
    return metrics, curves


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rebuild_writes_what_the_metrics_give_and_again_the_same(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    metrics, curves = finished_output(out)
    (out / "plots").mkdir()
    (out / "plots" / "length_parity.png").write_bytes(b"an earlier report's figure")
    assert rebuild.main([str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("summary.parquet", "comparisons.parquet", "report.md", "report.html"):
        assert str(out / name) in printed
    summary = read_validated(str(out / "summary.parquet"), Summary)
    comparisons = read_validated(str(out / "comparisons.parquet"), Comparisons)
    assert summary.equals(summarize(metrics)) and comparisons.equals(compare_archs(metrics))
    assert "ci_level" in summary.columns and comparisons.height == 6  # 3 pairs at each of 2 lengths
    expected = report.build(metrics, curves, CONFIG, ENVIRONMENT)
    assert (out / "report.md").read_text() == expected.markdown()
    assert (out / "report.html").read_text() == expected.html()
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(expected.images)  # the stale one is gone
    first = files(out)
    assert rebuild.main([str(out)]) == 0
    assert files(out) == first  # deterministic: a rebuild of a rebuild changes nothing
    assert not list(out.glob(".tmp-*")) and not list((out / "plots").glob(".tmp-*"))


def test_without_environment_json_the_report_still_builds(tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    finished_output(out)
    (out / "environment.json").unlink()
    (out / "config.json").unlink()
    assert rebuild.main([str(out)]) == 0
    assert "Run configuration and environment" in (out / "report.md").read_text()


@pytest.mark.parametrize("damage, named", [
    ("no_dir", ""), ("no_curves", "curves.parquet"), ("no_metrics", "metrics.parquet"),
    ("bad_metrics", "metrics.parquet"), ("bad_config", "config.json"),
])
def test_bad_input_is_named_exit_2_and_nothing_is_written(tmp_path, capsys, damage, named):
    out = tmp_path / "out"
    if damage != "no_dir":
        out.mkdir()
        metrics, _ = finished_output(out)
        if damage == "no_curves":
            (out / "curves.parquet").unlink()
        elif damage == "no_metrics":
            (out / "metrics.parquet").unlink()
        elif damage == "bad_metrics":  # a negative seed: the schema refuses it on read
            metrics.with_columns(pl.lit(-1).alias("seed")).write_parquet(out / "metrics.parquet")
        elif damage == "bad_config":
            (out / "config.json").write_text("{not json")
    before = files(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        rebuild.main([str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out / named).rstrip("/") in err and len(err.splitlines()) >= 1
    assert files(tmp_path) == before and not (damage == "no_dir" and out.exists())


@pytest.mark.e2e
def test_a_sweep_then_a_rebuild_gives_the_same_summary_comparisons_and_report(prefect_api, tmp_path):
    """`python -m flows.compare` then `python -m flows.report` on its output: the same files, byte for byte where
    they are text, equal frames where they are Parquet (a Parquet file's bytes carry its writer's metadata)."""
    from flows import compare

    out = tmp_path / "out"
    assert compare.main(["--preset", "smoke", "--out", str(out)]) == 0
    tables = {name: pl.read_parquet(out / name) for name in ("summary.parquet", "comparisons.parquet")}
    texts = {name: (out / name).read_bytes() for name in ("report.md", "report.html")}
    plots = {p.name: p.read_bytes() for p in (out / "plots").iterdir()}
    assert rebuild.main([str(out)]) == 0
    for name, frame in tables.items():
        assert pl.read_parquet(out / name).equals(frame), name
    for name, data in texts.items():
        assert (out / name).read_bytes() == data, name
    assert {p.name: p.read_bytes() for p in (out / "plots").iterdir()} == plots
