"""The comparison report: plots, tables and findings derived from the metrics, rendered to Markdown and HTML."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field

import polars as pl

from rnnbench.archs import ARCHS
from rnnbench.summary import SINGLE_SEED_MARGIN, summarize


# ---- a tiny document model, so Markdown and HTML say exactly the same thing ----------------------
@dataclass
class Doc:
    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", header, rows))

    def image(self, name: str, alt: str) -> None:
        self.blocks.append(("img", name, alt))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                header, rows = block[1], block[2]
                lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
                out.append("\n".join(lines))
            elif kind == "img":
                out.append(f"![{block[2]}](plots/{block[1]})")
            elif kind == "code":
                out.append("```\n" + block[1] + "\n```")
        return "\n\n".join(out) + "\n"

    def html(self, images: dict[str, bytes], title: str) -> str:
        """Self-contained: every plot is embedded as a data URI."""
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
               "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
               "text-align:right}th{background:#eee}img{max-width:100%}pre{background:#f6f6f6;padding:1em;"
               "overflow-x:auto}</style></head><body>"]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "p":
                out.append(f"<p>{html.escape(block[1])}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block[1])
                body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                               for row in block[2])
                out.append(f"<table><tr>{head}</tr>{body}</table>")
            elif kind == "img":
                data = base64.b64encode(images[block[1]]).decode()
                out.append(f"<img alt='{html.escape(block[2])}' src='data:image/png;base64,{data}'>")
            elif kind == "code":
                out.append(f"<pre>{html.escape(block[1])}</pre>")
        out.append("</body></html>")
        return "\n".join(out)


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def interval(row: dict) -> str:
    if row["mean"] is None:
        return "–"
    if row["low"] is None:
        return f"{fmt(row['mean'])} (1 seed)"
    return f"{fmt(row['mean'])} [{fmt(row['low'])}, {fmt(row['high'])}]"


# ---- findings: sentences generated from the summary, never fixed text ------------------------------
def findings(summary: list[dict], metrics: pl.DataFrame) -> list[str]:
    out: list[str] = []
    cells: dict[tuple, list[dict]] = {}
    for row in summary:
        cells.setdefault((row["problem"], row["seq_len"]), []).append(row)
    for (problem, seq_len), rows in cells.items():
        first = rows[0]
        head = f"{problem} at T={seq_len} ({first['metric_name']}, baseline {fmt(first['baseline'], 3)})"
        groups: dict[str, list[str]] = {}
        for r in rows:
            label = r["arch"] + (f" ({r['frac_solved']:.0%} of seeds solved)" if r["frac_solved"] else "")
            groups.setdefault(r["verdict"], []).append(label)
        parts = [f"{name}: {', '.join(archs)}" for name, archs in groups.items()]
        scored = [r for r in rows if r["mean"] is not None]
        if scored:
            best = max(scored, key=lambda r: r["score"])
            parts.append(f"best mean {best['arch']} {fmt(best['mean'], 3)} (score {best['score']:.2f})")
        if not any(v in groups for v in ("solved", "beats baseline")):
            parts.insert(0, "no architecture beat the baseline")
        out.append(f"{head}: " + "; ".join(parts) + ".")
    by_problem: dict[str, dict[str, list[dict]]] = {}
    for row in summary:
        by_problem.setdefault(row["problem"], {}).setdefault(row["arch"], []).append(row)
    for problem, archs in by_problem.items():
        for arch, rows in archs.items():
            rows = sorted((r for r in rows if r["score"] is not None), key=lambda r: r["seq_len"])
            if len(rows) >= 2:
                a, b = rows[0], rows[-1]
                change = b["score"] - a["score"]
                trend = "stays within 0.1" if abs(change) < 0.1 else ("falls" if change < 0 else "rises")
                out.append(f"{arch} on {problem}: score {trend} from {a['score']:.2f} at T={a['seq_len']} "
                           f"to {b['score']:.2f} at T={b['seq_len']}.")
    for problem, archs in by_problem.items():
        speeds = {arch: sum(r["steps_per_second"] for r in rows) / len(rows)
                  for arch, rows in archs.items() if all(r["steps_per_second"] for r in rows)}
        if len(speeds) >= 2:
            fastest = max(speeds, key=speeds.get)
            ranked = sorted(speeds.items(), key=lambda kv: -kv[1])
            others = ", ".join(f"{a} {speeds[fastest] / s:.1f}x" for a, s in ranked if a != fastest)
            out.append(f"Cost on {problem}: {fastest} ran the most updates per second ({speeds[fastest]:.0f}/s); "
                       f"time per update relative to it: {others}.")
    bad = metrics.filter(pl.col("status") != "ok")
    if bad.height:
        out.append(f"{bad.height} of {metrics.height} jobs did not finish ok "
                   f"({', '.join(f'{s}: {n}' for s, n in bad['status'].value_counts().iter_rows())}); see 'Failed and "
                   "diverged jobs'.")
    seeds = metrics.group_by("problem", "seq_len", "arch").len()["len"]
    if seeds.len() and seeds.max() == 1:
        out.append(f"Every cell has a single seed, so there are no intervals; a lone run counts as beating the "
                   f"baseline only with a score of at least {SINGLE_SEED_MARGIN}. Run with --seeds 3 or more "
                   "for intervals.")
    return out


# ---- plots ------------------------------------------------------------------------------------------
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display, safe off the main thread). Imported on first
    use: it costs about a second, which a caller may spend early, in a thread, while it waits for other work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def plots(summary: list[dict], metrics: pl.DataFrame, curves: pl.DataFrame) -> dict[str, bytes]:
    plt = pyplot()

    images: dict[str, bytes] = {}
    problems = list(dict.fromkeys(r["problem"] for r in summary))
    archs = list(dict.fromkeys(r["arch"] for r in summary))
    colors = {a: plt.cm.tab10(i % 10) for i, a in enumerate(archs)}
    joined = curves.join(metrics.select("run_id", "problem", "arch", "seq_len", "baseline", "metric_name"),
                         on="run_id", how="inner")
    for problem in problems:
        rows = [r for r in summary if r["problem"] == problem]
        lens = sorted({r["seq_len"] for r in rows})
        fig, axes = plt.subplots(1, len(lens), figsize=(4.5 * len(lens), 3.4), squeeze=False)
        for ax, seq_len in zip(axes[0], lens, strict=True):
            part = joined.filter((pl.col("problem") == problem) & (pl.col("seq_len") == seq_len))
            for arch in archs:
                line = (part.filter(pl.col("arch") == arch).group_by("step").agg(pl.col("test_metric").mean())
                        .sort("step"))
                if line.height:
                    ax.plot(line["step"], line["test_metric"], label=arch, color=colors[arch])
            if part.height:
                ax.axhline(part["baseline"][0], ls="--", color="gray", label="baseline")
                ax.set_ylabel(f"test {part['metric_name'][0]} (probe set)")
            ax.set_title(f"{problem}, T={seq_len}")
            ax.set_xlabel("update")
            ax.legend(fontsize=7)
        images[f"curves_{problem}.png"] = _png(fig)

        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for arch in archs:
            pts = sorted((r for r in rows if r["arch"] == arch and r["mean"] is not None), key=lambda r: r["seq_len"])
            if not pts:
                continue
            xs, ys = [r["seq_len"] for r in pts], [r["mean"] for r in pts]
            err = [[r["mean"] - r["low"] if r["low"] is not None else 0 for r in pts],
                   [r["high"] - r["mean"] if r["high"] is not None else 0 for r in pts]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=arch, color=colors[arch])
        ax.axhline(rows[0]["baseline"], ls="--", color="gray", label="baseline")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(f"test {rows[0]['metric_name']} (mean, 95% interval over seeds)")
        ax.set_title(problem)
        ax.legend(fontsize=7)
        images[f"length_{problem}.png"] = _png(fig)

    columns = [(r["problem"], r["seq_len"]) for r in summary]
    columns = list(dict.fromkeys(columns))
    grid = [[next((r["frac_solved"] for r in summary if r["arch"] == a and (r["problem"], r["seq_len"]) == c),
                  float("nan")) for c in columns] for a in archs]
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2, 0.5 * len(archs) + 1.5))
    ax.imshow(grid, vmin=0, vmax=1, cmap="Greens", aspect="auto")
    ax.set_xticks(range(len(columns)), [f"{p}\nT={t}" for p, t in columns], fontsize=7)
    ax.set_yticks(range(len(archs)), archs)
    for i, line in enumerate(grid):
        for j, value in enumerate(line):
            ax.text(j, i, "–" if value != value else f"{value:.0%}", ha="center", va="center", fontsize=8)
    ax.set_title("fraction of seeds solved")
    images["solved_map.png"] = _png(fig)
    return images


# ---- the document -------------------------------------------------------------------------------------
def build(metrics: pl.DataFrame, curves: pl.DataFrame, config: dict, environment: dict) -> tuple[Doc, dict, list]:
    """(document, images, summary) from validated metrics and curves."""
    summary = summarize(metrics)
    images = plots(summary, metrics, curves)
    doc = Doc()
    doc.h(1, "rnnbench: which recurrent architecture remembers what, at which length, at what cost")
    doc.p(f"{metrics.height} jobs: {metrics['arch'].n_unique()} architectures x "
          f"{metrics.select('problem', 'seq_len').n_unique()} (problem, length) cells x "
          f"{metrics['seed'].n_unique()} seed(s). Metrics: metrics.parquet (one row per job); curves: curves.parquet.")
    doc.h(2, "Findings")
    doc.bullets(findings(summary, metrics))
    doc.h(2, "Solved map")
    doc.image("solved_map.png", "fraction of seeds solved per architecture and (problem, length)")
    for problem in dict.fromkeys(r["problem"] for r in summary):
        rows = [r for r in summary if r["problem"] == problem]
        doc.h(2, f"Problem: {problem}")
        doc.p(f"Metric: test {rows[0]['metric_name']} on the stored test split "
              f"({'higher' if rows[0]['higher_is_better'] else 'lower'} is better). Analytic baseline (no memory): "
              f"{fmt(rows[0]['baseline'])}. Score = normalised distance from baseline (0) to perfect (1). "
              f"Solved rule (pre-registered): {rows[0]['solved_rule']}.")
        doc.table(
            ["T", "arch", "seeds (ok)", f"{rows[0]['metric_name']} mean [95% CI]", "best seed", "baseline", "score",
             "solved", "verdict", "params", "train s", "updates/s"],
            [[r["seq_len"], r["arch"], f"{r['seeds']} ({r['ok']})", interval(r), fmt(r["best"]), fmt(r["baseline"]),
              fmt(r["score"], 3), f"{r['frac_solved']:.0%}", r["verdict"], fmt(r["params"]),
              fmt(r["train_seconds"], 3), fmt(r["steps_per_second"], 3)] for r in rows],
        )
        doc.image(f"length_{problem}.png", f"{problem}: test metric against sequence length")
        doc.image(f"curves_{problem}.png", f"{problem}: learning curves")
    doc.h(2, "Architectures")
    arch_rows = (metrics.group_by("arch", "problem", "hidden_size").agg(pl.col("params").max(),
                 pl.col("state_size").max()).sort("arch", "problem"))
    doc.table(["arch", "problem", "hidden", "params (with readout)", "state size", "source"],
              [[a, p, h, fmt(n), fmt(s), ARCHS[a].source] for a, p, h, n, s in arch_rows.iter_rows()])
    bad = metrics.filter(pl.col("status") != "ok")
    doc.h(2, "Failed and diverged jobs")
    if bad.height:
        doc.table(["run", "status", "steps done", "error"],
                  [[r["run_id"], r["status"], r["steps_done"], (r["error"] or "")[:300]]
                   for r in bad.iter_rows(named=True)])
    else:
        doc.p("None: every job finished ok.")
    doc.h(2, "Run configuration and environment")
    doc.code(json.dumps({"config": config, "environment": environment}, indent=2, default=str))
    return doc, images, summary
