"""The comparison report: the answer first, then findings and details, as one Markdown file and one HTML page.

`build` turns validated metrics and curves into a `Report`: a short list of sections whose blocks (paragraphs,
lists, tables, figures, code) are rendered by two jinja2 templates in `rnnbench/report_templates/`, so the
Markdown and the HTML say the same thing. Numbers, verdicts and sentences come from `rnnbench.verdicts`; figures
from `rnnbench.report_figures`. The HTML embeds its images and stylesheet and requests nothing.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache

import jinja2
import polars as pl
from markdown_it import MarkdownIt
from markupsafe import Markup

from rnnbench import report_figures as figs
from rnnbench import sizing, theory, verdicts
from rnnbench.archs import ARCHS
from rnnbench.horizon import HorizonSearch, horizons_from_metrics
from rnnbench.problems import PROBLEMS, get_problem
from rnnbench.reproduction import reproduction_frame

TITLE = "rnnbench: which recurrent architecture remembers what, at which length, at what cost"
CELL = ["problem", "seq_len", "arch"]
# what else tells two cells of one (problem, T, arch) apart; the report shows one of them (chosen on validation)
SETTINGS = list(verdicts.SETTINGS)
ERROR_CHARS = 600  # per error message in the report; metrics.parquet keeps the whole text
MIN_SEEDS = 3  # docs/PROBLEMS.md, statistical rules: several seeds per cell (>= 3)
# where the rules are written out; named, not linked: a report is read away from the repository, and its page
# requests nothing
RULES_DOC = "docs/PROBLEMS.md"


# ---- the document model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Badge:
    """A table cell shown as a coloured verdict label in HTML, as plain text in Markdown."""

    text: str
    verdict: str

    @property
    def css(self) -> str:
        return slug(self.verdict)

    @property
    def head(self) -> str:
        """The coloured part: the verdict itself where the text starts with it (then `tail` holds the counts)."""
        return self.verdict if self.text.startswith(self.verdict) else self.text

    @property
    def tail(self) -> str:
        return self.text[len(self.head):]

    def __str__(self) -> str:
        return self.text


@dataclass
class Paragraph:
    text: str
    lead: str = ""  # set in bold before the text
    kind: str = "p"


@dataclass
class MarkdownParagraph:
    """Trusted inline Markdown (emphasis, code) written by this package, e.g. verdicts.RULES: kept as it is in
    report.md, rendered to HTML (its own HTML escaped) in report.html."""

    text: str
    lead: str = ""
    kind: str = "md"

    @property
    def html(self) -> Markup:
        return Markup(MarkdownIt("commonmark", {"html": False}).renderInline(self.text))


@dataclass
class Bullets:
    items: list[str]
    kind: str = "ul"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str | Badge]]
    caption: str = ""
    # per column, a CSS class: "num" (right-aligned), "name" (one line), "verdict", "err", "id", "" (plain text)
    columns: list[str] = field(default_factory=list)
    kind: str = "table"

    def __post_init__(self) -> None:
        self.columns = self.columns or [""] * len(self.header)
        widths = {len(self.header), len(self.columns), *(len(r) for r in self.rows)}
        if len(widths) != 1:
            raise ValueError(f"table {self.caption!r}: rows of different widths {sorted(widths)}")


@dataclass
class FigureBlock:
    name: str  # file name under plots/
    alt: str  # a few words: what the figure is
    caption: str  # how to read it
    rendered: figs.Rendered
    kind: str = "figure"

    @property
    def data(self) -> str:
        return base64.b64encode(self.rendered.png).decode()


@dataclass
class Code:
    text: str
    summary: str
    kind: str = "code"

    @property
    def fence(self) -> str:
        runs = re.findall(r"`{3,}", self.text)
        return "`" * max(3, *(len(r) + 1 for r in runs)) if runs else "```"


Block = Paragraph | MarkdownParagraph | Bullets | Table | FigureBlock | Code


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)

    @property
    def id(self) -> str:
        return slug(self.title)


@dataclass
class Report:
    """The report: render with `markdown()` and `html()`; `images` are the figures (PNG) the Markdown links to
    under plots/; `findings` the generated sentences; `summary` the per-cell frame and `comparisons` the per-pair
    frame from rnnbench.verdicts."""

    title: str
    facts: list[tuple[str, str]]
    sections: list[Section]
    findings: list[str]
    summary: pl.DataFrame = field(repr=False)
    comparisons: pl.DataFrame = field(repr=False)  # one row per pair of archs (rnnbench.verdicts.compare_archs)

    @property
    def images(self) -> dict[str, bytes]:
        out = {}
        for section in self.sections:
            for part in (section, *section.subsections):
                out.update({b.name: b.rendered.png for b in part.blocks if isinstance(b, FigureBlock)})
        return out

    def markdown(self) -> str:
        text = _templates().get_template("report.md.j2").render(report=self)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def html(self) -> str:
        return _templates().get_template("report.html.j2").render(report=self)


def slug(title: str) -> str:
    """GitHub's heading anchor, so the same links work in report.md on GitHub and in report.html."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


_MD_INLINE = re.compile(r"([\\`*\[\]<~|])")
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")  # intraword _ never emphasises (GFM)
_MD_LINE_START = re.compile(r"^([ \t]*)(>|#{1,6}(?=\s|$)|[-+](?=\s)|\d{1,9}[.)](?=\s|$))", re.MULTILINE)


def _md_inline(value) -> str:
    return _MD_UNDERSCORE.sub(r"\\_", _MD_INLINE.sub(r"\\\1", str(value)))


def _md_line_start(match: re.Match) -> str:
    """A line opening that would start a quote, heading or list: escape its punctuation."""
    indent, mark = match.groups()
    return indent + (mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark)


def md_text(value) -> str:
    """Escape text for Markdown prose: characters that would start emphasis, code, links, HTML, and line openings
    that would start a quote, heading or list."""
    return _MD_LINE_START.sub(_md_line_start, _md_inline(value))


def md_cell(value) -> str:
    """Escape text for one GFM table cell: inline characters and pipes; line breaks become <br> (a row is one line)."""
    lines = str(value).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(_md_inline(line) for line in lines if line.strip() or len(lines) == 1).strip() or " "


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rnnbench", "report_templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = md_text
    env.filters["md_cell"] = md_cell
    return env


# ---- number formatting ---------------------------------------------------------------------------------------
def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def fmt_metric(value, row: dict) -> str:
    """Accuracies (in [0, 1]) with three decimals, so 0.9996 does not print as 1; losses with 3 significant digits."""
    if value is not None and row["metric_name"] == "accuracy":
        return f"{value:.3f}"
    return fmt(value)


def level_text(level: float) -> str:
    """A coverage probability with two decimals, never rounded up to the stated level from below it (0.9496
    prints 0.949, not 0.95)."""
    text = f"{level:.2f}"
    if level < verdicts.INTERVAL_LEVEL <= float(text):
        text = f"{math.floor(level * 1000) / 1000:.3f}"
    return text


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def interval_words(n: int) -> str:
    """What the interval over n seeds is and how likely it covers the median over seeds, e.g. 'range over 3
    seeds, covers the median with prob. 0.75'."""
    if n <= 1:
        return "1 seed: no interval"
    k, level = verdicts.order_statistic_rank(n)
    what = f"range over {n} seeds" if k == 1 else f"{_ordinal(k)} smallest to {_ordinal(k)} largest of {n} seeds"
    return f"{what}, covers the median with prob. {level_text(level)}"


def intervals_caption(rows: list[dict]) -> str:
    """The intervals these rows show, each kind once: 'range over 3 seeds, covers the median with prob. 0.75'."""
    sizes = sorted({r["n_ok"] for r in rows if r["n_ok"] and r["n_ok"] > 1})
    return "; ".join(interval_words(n) for n in sizes) or "no cell has two seeds with a test metric: no interval"


def median_interval(row: dict) -> str:
    """'median [low, high] (level)': the level is the interval's probability of covering the median over seeds."""
    if row["median"] is None:
        return "–"
    if row["n_ok"] <= 1 or row["ci_low"] is None:
        return f"{fmt_metric(row['median'], row)} (1 seed)" if row["n_ok"] == 1 else fmt_metric(row["median"], row)
    return (f"{fmt_metric(row['median'], row)} [{fmt_metric(row['ci_low'], row)}, "
            f"{fmt_metric(row['ci_high'], row)}] ({level_text(row['ci_level'])})")


def solved_threshold(problem_name: str, seq_len: int) -> float | None:
    """The metric value where the problem's solved rule flips, for drawing it: the threshold the problem declares
    (None where its rule reads another metric)."""
    return get_problem(problem_name).solved_threshold(seq_len)


# ---- the data behind the page ---------------------------------------------------------------------------------
@dataclass
class Data:
    metrics: pl.DataFrame
    curves: pl.DataFrame
    summary: pl.DataFrame
    comparisons: pl.DataFrame
    cells: list[dict]  # every summary row, plus "chosen" (the setting the report shows for its (problem, T, arch))
    varied: list[str]  # settings with several values within one (problem, T, arch): the report picks one of them
    problems: list[str]
    archs: list[str]  # ordered: most solved cells first
    lengths: dict[str, list[int]]
    thresholds: dict[tuple[str, int], float | None]
    horizon: dict[tuple[str, str], int | None]
    # per (arch, problem): solved lengths above an unsolved shorter one, with the first unsolved length below
    # them; flagged, never counted in the horizon
    beyond_gap: dict[tuple[str, str], tuple[list[int], int]]

    def chosen(self, problem: str | None = None) -> list[dict]:
        return [c for c in self.cells if c["chosen"] and (problem is None or c["problem"] == problem)]


def prepare(metrics: pl.DataFrame, curves: pl.DataFrame) -> Data:
    # a --lrs sweep's tuning runs only chose each cell's rate: no table, figure or sentence reads them
    metrics = verdicts.reported(metrics)
    curves = curves.join(metrics.select("run_id").unique(), on="run_id", how="semi")
    summary = verdicts.summarize(metrics)  # each (problem, T, arch)'s setting is chosen there, on validation
    comparisons = verdicts.compare_archs(metrics, summary)
    rows = summary.to_dicts()
    varied = [k for k in SETTINGS if k in summary.columns
              and summary.group_by(CELL).agg(pl.col(k).n_unique())[k].max() > 1]
    problems = sorted(summary["problem"].unique().to_list(), key=_problem_order)
    lengths = {p: sorted({r["seq_len"] for r in rows if r["problem"] == p}) for p in problems}
    chosen = [r for r in rows if r["chosen"]]
    horizon, beyond_gap = horizons(chosen)
    registry = list(ARCHS)

    def rank(arch: str) -> tuple:
        mine = [r for r in chosen if r["arch"] == arch]
        count = {v: sum(r["verdict"] == v for r in mine) for v in ("solved", "split", "beats baseline")}
        return (-count["solved"], -count["split"], -count["beats baseline"],
                registry.index(arch) if arch in registry else len(registry), arch)

    archs = sorted({r["arch"] for r in rows}, key=rank)
    thresholds = {(p, t): solved_threshold(p, t) for p in problems for t in lengths[p]}
    rows.sort(key=lambda r: (problems.index(r["problem"]), r["seq_len"], archs.index(r["arch"]),
                             *((r[k] is None, r[k]) for k in varied)))
    return Data(metrics, curves, summary, comparisons, rows, varied, problems, archs, lengths, thresholds, horizon,
                beyond_gap)


def horizons(chosen: list[dict]) -> tuple[dict[tuple[str, str], int | None], dict[tuple[str, str], tuple]]:
    """Each (arch, problem)'s memory horizon, the longest T such that it and every shorter T run are solved
    (None: the shortest is not), and, where a longer T is solved above an unsolved one, (those T, the first
    unsolved T): a memory that fails at 100 and holds at 200 is not a horizon of 200 (luck, or a rule or data
    problem at one length), so it is flagged and not counted."""
    horizon: dict[tuple[str, str], int | None] = {}
    beyond: dict[tuple[str, str], tuple[list[int], int]] = {}
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in chosen:
        by_key.setdefault((r["arch"], r["problem"]), []).append(r)
    for key, cells in by_key.items():
        horizon[key], gap, above = None, None, []
        for r in sorted(cells, key=lambda c: c["seq_len"]):
            if r["verdict"] != "solved":
                gap = r["seq_len"] if gap is None else gap
            elif gap is None:
                horizon[key] = r["seq_len"]
            else:
                above.append(r["seq_len"])
        if above:
            beyond[key] = (above, gap)
    return horizon, beyond


def _problem_order(problem: str) -> tuple:
    names = list(PROBLEMS)
    return (names.index(problem) if problem in names else len(names), problem)


# ---- sections ------------------------------------------------------------------------------------------------------
def _facts(data: Data, environment: dict) -> list[tuple[str, str]]:
    m = verdicts.in_distribution(data.metrics)  # one row per job
    ok = int((m["status"] == "ok").sum())
    facts = [
        ("jobs", f"{m.height} ({ok} finished ok)"),
        ("architectures", ", ".join(data.archs)),
        ("problems", "; ".join(f"{p} (T = {', '.join(map(str, data.lengths[p]))})" for p in data.problems)),
        ("seeds per cell", _range_text(data.summary["n_seeds"].to_list())),
    ]
    for key in ("lr", "hidden_size", "steps"):
        values = sorted(data.summary[key].unique().to_list())
        facts.append(({"lr": "learning rates", "hidden_size": "hidden size", "steps": "updates per run"}[key],
                      ", ".join(fmt(v) for v in values)))
    if environment.get("wall_seconds") is not None:
        facts.append(("wall time", f"{environment['wall_seconds']:.0f} s"))
    if environment.get("devices"):
        facts.append(("devices", ", ".join(environment["devices"])))
    return facts


def _range_text(values: list[int]) -> str:
    return str(min(values)) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def _answer(data: Data) -> Section:
    cells = {(r["arch"], r["problem"], r["seq_len"]): figs.OverviewCell(r["verdict"], r["n_solved"], r["n_seeds"],
                                                                       r["n_diverged"]) for r in data.chosen()}
    fig = figs.overview(data.archs, data.lengths, cells, data.horizon)
    several = data.varied
    caption = ("Each cell is one architecture on one (problem, length T); its colour, hatch and words give the "
               "verdict over seeds (seeds solved / seeds run). 'horizon' is the longest T such that it and every "
               "shorter T run are solved; a T solved above an unsolved one is not counted (the table flags it).")
    if several:
        caption += (f" Where several settings ({', '.join(several)}) were run, a cell shows the one with the best "
                    "median validation metric.")
    runs = "; ".join(f"{p} " + ", ".join(map(str, data.lengths[p])) for p in data.problems)
    table = Table(["architecture", *data.problems],
                  [[a, *(_horizon_text(data, a, p) for p in data.problems)] for a in data.archs],
                  caption=f"Memory horizon: the longest training length T such that it and every shorter T run "
                          f"are solved (lengths run: {runs}); a T solved above an unsolved one is named, not "
                          "counted.")
    counts = {v: sum(r["verdict"] == v for r in data.chosen()) for v in figs.VERDICT_STYLES}
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    glance = f"{len(data.chosen())} cells: {tally}."
    few = [r for r in data.chosen() if r["n_seeds"] - r["n_failed"] < MIN_SEEDS]
    if few:
        who = "Every cell rests" if len(few) == len(data.chosen()) else f"{len(few)} of the cells rest"
        glance += (f" {who} on fewer than "
                   f"{MIN_SEEDS} seeds, which the fair-comparison rules ask for: their verdicts are indications, "
                   f"not results (run again with --seeds {MIN_SEEDS}).")
    return Section("Answer", [
        FigureBlock("overview.png", "Overview: verdict per architecture and (problem, T), and memory horizons", caption,
                    figs.render(fig)),
        Paragraph(glance, lead="At a glance:"),
        table,
        *_theory_table(data),
    ])


def _with_horizons(answer: Section, data: Data, rows: list[dict]) -> Section:
    """The answer led by "at which length": each arch's horizon bracket per problem (horizons.parquet) as the
    first figure, against what each arch costs, and the brackets as a table after the overview. Problems run at
    one length only have no bracket worth a figure and are left to the overview."""
    problems = [p for p in data.problems if any(r["problem"] == p and len(r["lengths_tried"]) > 1 for r in rows)]
    if not problems:
        return answer
    rows = [r for r in rows if r["problem"] in problems]
    fig = figs.horizons(rows, problems)
    by_key = {(r["arch"], r["problem"]): r for r in rows}
    how = "; ".join(_search_text(next(r for r in rows if r["problem"] == p)) for p in problems)
    table = Table(["architecture", *problems],
                  [[a, *(_bracket_text(by_key.get((a, p))) for p in problems)] for a in data.archs],
                  caption="Memory horizon bracket [low, high): low is the longest T solved with every shorter T "
                          "solved, high the first unsolved T above it (the horizon lies between); '> cap' where "
                          f"every length up to the cap is solved. Lengths: {how}.")
    caption = ("Each architecture's memory horizon on each problem (rows) against its parameter count, its state "
               "size and the seconds one update takes (columns): the marker is the horizon, the bar reaches the "
               "first unsolved length. A solved T above an unsolved one is marked x and not counted (docs/"
               "PROBLEMS.md, Horizon and learning curves).")
    figure = FigureBlock("horizons.png", "Memory horizon per architecture and problem, against parameters, state "
                         "size and seconds per update", caption, figs.render(fig))
    return Section(answer.title, [figure, *answer.blocks, table], answer.subsections)


def _search_text(row: dict) -> str:
    if row["search"] == "search":
        return (f"{row['problem']} searched from T={row['start']}, doubling up to T={row['cap']}, bisected to "
                f"{row['resolution']}")
    return f"{row['problem']} at T = {', '.join(map(str, row['lengths_tried']))}"


def _bracket_text(row: dict | None) -> str:
    if row is None:
        return "not run"
    low, high = row["horizon_low"], row["horizon_high"]
    if low is None:
        text = f"none (T={high} unsolved)"
    elif high is None:
        text = f"T={low} (> cap)" if row["beyond_cap"] else f"T={low}"
    else:
        text = f"[{low}, {high})"
    if row["non_monotone"]:
        above = [t for t in row["solved_lengths"] if high is not None and t > high]
        text += f"; also solved T={', '.join(map(str, above))}, not counted"
    return text


def _horizon_text(data: Data, arch: str, problem: str) -> str:
    if (arch, problem) not in data.horizon:
        return "not run"
    value = data.horizon[(arch, problem)]
    text = "none solved" if value is None else f"T={value}"
    if (arch, problem) in data.beyond_gap:
        above, gap = data.beyond_gap[(arch, problem)]
        text = ("none" if value is None else text) + (
            f" (also solved: {', '.join(f'T={t}' for t in above)}, above unsolved T={gap}: not counted)")
    return text


def _findings(data: Data, sentences: list[str]) -> Section:
    blocks: list[Block] = [Bullets(sentences) if sentences else Paragraph("No finding: no cell has a result.")]
    blocks.append(MarkdownParagraph(verdicts.RULES,
                                    lead="How outcomes and verdicts are decided (fixed before the runs):"))
    blocks.append(MarkdownParagraph(
        f"`{RULES_DOC}` in the rnnbench repository, section *Statistical rules* (`{RULES_DOC}#statistical-rules`), "
        "states these rules in full, with every problem's definition, baseline, solved rule, sources and theory's "
        "predictions; its section *Where the code does not yet follow these rules* lists where this version of "
        "rnnbench still departs from them.", lead="Where the rules are written:"))
    return Section("Findings", blocks)


def _reproduction(data: Data, preset: str | None = None) -> Section | None:
    """Every reproduction card (rnnbench.cards) with what this sweep found: shown when it ran any card, and always
    for the presets that hold them all (reproduce, full: a subset or a tier of them may have run none)."""
    rows = reproduction_frame(data.metrics).to_dicts()
    if all(r["result"] == "not run" for r in rows) and preset not in ("full", "reproduce"):
        return None
    counts = {v: sum(r["result"] == v for r in rows) for v in ("agrees", "disagrees", "not run")}
    gpu = sum(r["result"] == "not run" and r["tier"] == "gpu" for r in rows)
    lead = Paragraph(
        f"{len(rows)} cards: agrees {counts['agrees']}, disagrees {counts['disagrees']}, not run "
        f"{counts['not run']}" + (f" ({gpu} of them in the gpu tier, which runs with --tier gpu)" if gpu else "")
        + ". Each card is one published point, run with the source's own "
        "setting as far as rnnbench can match it; 'differences' lists where it cannot. The source's n is how many "
        "runs the published number rests on: a single curve is one run, which three seeds here can contradict by "
        "chance alone. A card that disagrees stays in the table with what was tried: it is a finding.",
        lead="Reproduction cards:")
    rules = Paragraph(
        "A 'solved within N updates' claim agrees when the cell is solved (at least 2/3 of its seeds) and its "
        "median updates to solve is at most the card's tolerance times N; 'solved' when the cell is solved; 'stays "
        "at baseline' only when the cell is at baseline, worse than baseline or diverged (a cell that beats the "
        "baseline learned something); 'beats the baseline' when it beats it, is split or is solved; 'accuracy at "
        "least x at length L' when the median over seeds of the test accuracy at L is at least x minus the "
        "tolerance ('at most x': at most x plus it). Pre-registered in "
        f"{RULES_DOC}, section Agreement rules.", lead="Agreement rules:")
    return Section("Reproduction of published results", [lead, rules, Table(
        ["card", "claim", "result", "this run found", "source's n", "source", "setting differences", "verified"],
        [[r["card_id"], r["claim"], r["result"], r["found"], r["source_n"], f"{r['source']}; {r['where']}; {r['url']}",
          r["differences"], r["verified"]] for r in rows],
        # the answer (result, found) before the long provenance columns: a narrow screen scrolls to those
        caption=f"Each reproduction card of {RULES_DOC} against the runs of this sweep with the card's settings "
                "(arch, T, hidden size, rate, batch, clipping, layers, forget bias, budget).",
        columns=["id", "", "verdict", "", "", "", "", ""])])


def _cell_key(data: Data) -> list[str]:
    return [k for k in verdicts.cell_columns(data.summary) if k in data.metrics.columns]


def _beyond_training(data: Data) -> dict[tuple, tuple[int, int, int]]:
    """Per cell (its key values): (the longest evaluation length beyond its training length, seeds solved there,
    seeds scored there); cells scored at no longer length are absent."""
    keys = _cell_key(data)
    runs = data.metrics.filter((pl.col("eval_len") > pl.col("seq_len")) & (pl.col("status") == "ok"))
    if "test_split" in runs.columns:
        runs = runs.filter(pl.col("test_split") == "test")
    if not runs.height:
        return {}
    longest = runs.group_by(keys).agg(pl.col("eval_len").max().alias("longest"))
    runs = runs.join(longest, on=keys, nulls_equal=True).filter(pl.col("eval_len") == pl.col("longest"))
    counts = runs.group_by([*keys, "eval_len"]).agg(pl.col("solved").fill_null(False).sum().alias("k"),
                                                    pl.len().alias("n"))
    return {tuple(r[k] for k in keys): (r["eval_len"], int(r["k"]), int(r["n"])) for r in counts.iter_rows(named=True)}


def _theory(data: Data, row: dict, beyond: dict) -> tuple[str, str] | None:
    """(kind, words) of theory's prediction for one cell, read against what its runs did; None: no prediction."""
    prefix = f"{verdicts.OPTION_PREFIX}{row['problem']}_"
    options = {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix) and v is not None}
    prediction = theory.predict(row["problem"], row["arch"], options)
    if prediction is None:
        return None
    if not prediction.beyond_training_length:
        return theory.reading(prediction, row["verdict"] == "solved")
    at = beyond.get(tuple(row[k] for k in _cell_key(data)))
    if at is None:
        return theory.reading(prediction, None)
    length, k, n = at
    kind, words = theory.reading(prediction, k >= verdicts.SOLVED_SHARE * n - 1e-9)
    return kind, f"{words} (at length {length}: {k} of {n} seeds solved)"


def _theory_table(data: Data) -> list[Block]:
    """The overview's theory column: each chosen cell a prediction covers, its verdict and theory's reading."""
    beyond = _beyond_training(data)
    rows = [(r, _theory(data, r, beyond)) for r in data.chosen()]
    rows = [(r, t) for r, t in rows if t is not None]
    if not rows:
        return []
    counts = {kind: sum(t[0] == kind for _, t in rows)
              for kind in (theory.AGREES, theory.NOT_LEARNED, theory.FLAGGED, theory.UNTESTED)}
    flagged = counts[theory.FLAGGED]
    text = (f"{len(rows)} cells carry a prediction: {counts[theory.AGREES]} as predicted, "
            f"{counts[theory.NOT_LEARNED]} not learned at this budget (theory says they can be), "
            f"{counts[theory.UNTESTED]} not tested beyond the training length, {flagged} solved where theory says "
            "cannot" + (": a bug or a leak until shown otherwise, look closer." if flagged else "."))
    table = Table(["problem", "T", "architecture", "verdict at T", "theory's prediction, read against the runs"],
                  [[r["problem"], str(r["seq_len"]), r["arch"], Badge(r["verdict_text"], r["verdict"]),
                    ("⚠ " if t[0] == theory.FLAGGED else "") + t[1]] for r, t in rows],
                  caption=f"Theory's predictions ({RULES_DOC}, section Theory's predictions, with sources) beside "
                          "the verdicts: a length-generalisation prediction is read at the longest evaluation length "
                          "beyond T (solved there when at least 2/3 of the seeds met the solved rule).",
                  columns=["", "num", "name", "verdict", ""])
    return [Paragraph(text, lead="Theory beside the verdicts:"), table]


# beside T in a problem's table: a cell whose runs read more than sizing.MAX_EPOCHS epochs
DATA_LIMITED = "◔"


def _problem_section(data: Data, problem: str) -> Section:
    rows = [r for r in data.cells if r["problem"] == problem]
    chosen = data.chosen(problem)
    first = rows[0]
    lengths = data.lengths[problem]
    bases = sorted({r["baseline"] for r in rows})
    base_text = fmt(bases[0]) if len(bases) == 1 else "depends on T (see the table)"
    # a plugin's problem is defined in its own package, not in this repository's docs
    documented = type(get_problem(problem)).__module__.startswith("rnnbench.problems.")
    where = (f" Definition, baseline and rule: {RULES_DOC} in the rnnbench repository, section {problem} "
             f"({RULES_DOC}#{problem})." if documented else "")
    blocks: list[Block] = [Paragraph(
        f"Metric: test {first['metric_name']} on the stored test split, of the checkpoint best on validation "
        f"({'higher' if first['higher_is_better'] else 'lower'} is better). Baseline (no memory, analytic): "
        f"{base_text}. Score: 0 at the baseline, 1 perfect. Solved rule (pre-registered): {first['solved_rule']}."
        f"{where}")]
    several = any(sum(1 for s in rows if all(s[k] == r[k] for k in CELL)) > 1 for r in rows)
    settings = [k for k in SETTINGS if len({r[k] for r in rows}) > 1]  # the ones that differ within this problem
    # an arch's own option (null on other archs' rows) is shown where it differs between that arch's rows
    settings += [k for k in verdicts.cell_columns(data.summary) if k.startswith(verdicts.OPTION_PREFIX)
                 and any(len({r[k] for r in rows if r["arch"] == a}) > 1 for a in {r["arch"] for r in rows})]
    with_base = len(bases) > 1  # else the paragraph above gives it
    beyond = _beyond_training(data)
    readings = [_theory(data, r, beyond) for r in rows]
    with_theory = any(t is not None for t in readings)  # a column only where theory predicts a cell
    header = ["T", "arch (✓ shown)" if several else "arch", *(k.removeprefix(verdicts.OPTION_PREFIX) for k in settings),
              "seeds (ok)", f"{first['metric_name']} median [interval] (coverage)"] + (
        ["baseline"] if with_base else []) + ["score", "verdict"] + (["theory"] if with_theory else []) + [
        "solved at update", "params", "train s"]
    columns = ["num", "name"] + ["num"] * len(settings) + ["num", "num"] + (
        ["num"] if with_base else []) + ["num", "verdict"] + ([""] if with_theory else []) + ["num", "num", "num"]
    table_rows = []
    for r, reading in zip(rows, readings, strict=True):
        theory_cell = ["none registered for this arch" if reading is None
                       else ("⚠ " if reading[0] == theory.FLAGGED else "") + reading[1]]
        table_rows.append([
            str(r["seq_len"]) + (f" {DATA_LIMITED}" if sizing.data_limited(r.get("max_epochs")) else ""),
            r["arch"] + (" ✓" if several and r["chosen"] else ""), *(fmt(r[k]) for k in settings),
            f"{r['n_seeds']} ({r['n_ok']})", median_interval(r), *([fmt_metric(r["baseline"], r)] if with_base else []),
            "–" if r["score"] is None else f"{r['score']:.2f}", Badge(r["verdict_text"], r["verdict"]),
            *(theory_cell if with_theory else []),
            fmt(_int(r["median_steps_to_solve"])), fmt(_int(r["params"])), fmt(r["median_train_seconds"]),
        ])
    caption = ("Per cell: median over seeds of the test metric, with the order-statistic interval for the median "
               "over seeds and, in parentheses, its exact probability of covering that median (binomial; at least "
               f"that with tied values): {intervals_caption(rows)}. Solved at update: median first update where "
               "validation met the solved rule; train s: median seconds of training per run.")
    if several:
        caption += " ✓: the setting the figures and the overview show (the best median validation metric)."
    if any(sizing.data_limited(r.get("max_epochs")) for r in rows):
        caption += (f" {DATA_LIMITED} data-limited: its runs read their training set more than {sizing.MAX_EPOCHS} "
                    "times (updates x batch size / stored sequences), so a failure there may be too little distinct "
                    "data rather than too little memory.")
    blocks.append(Table(header, table_rows, caption=caption, columns=columns))

    references = "the no-memory baseline" + (
        " and the solved threshold" if any(data.thresholds[(problem, t)] is not None for t in lengths) else
        f" (the solved rule reads another metric: {first['solved_rule']})")
    if len(lengths) >= 2:
        fig = figs.metric_vs_length(problem, chosen, {t: data.thresholds[(problem, t)] for t in lengths})
        blocks.append(FigureBlock(f"length_{problem}.png", f"{problem}: test metric against T",
                                  f"{problem}: median test metric against training length T, with order-statistic "
                                  f"intervals over seeds ({intervals_caption(chosen)}), {references}.",
                                  figs.render(fig)))
    curves = _curve_panels(data, problem)
    if curves:
        fig = figs.learning_curves(problem, first["metric_name"], curves)
        how = ("thin: one seed; bold: median over seeds, where a run that stopped early (validation met the "
               "solved rule) counts at its last value from then on" if max(r["n_seeds"] for r in chosen) > 1
               else "one line per run")
        blocks.append(FigureBlock(f"curves_{problem}.png", f"{problem}: learning curves",
                                  f"{problem}: validation metric during training ({how}), with {references}.",
                                  figs.render(fig)))
    if len({r["lr"] for r in rows}) > 1:
        picked = {(r["arch"], r["seq_len"], r["lr"]) for r in chosen}
        fig = figs.lr_sensitivity(problem, rows, picked, {t: data.thresholds[(problem, t)] for t in lengths})
        blocks.append(FigureBlock(f"lr_{problem}.png", f"{problem}: learning-rate sensitivity",
                                  f"{problem}: median test metric against learning rate per T, with order-statistic "
                                  f"intervals over seeds ({intervals_caption(rows)}); a ring marks the rate chosen on "
                                  "validation.", figs.render(fig)))
    generalisation = _generalisation_panels(data, problem)
    if generalisation:
        fig = figs.length_generalisation(problem, first["metric_name"], generalisation)
        blocks.append(FigureBlock(f"generalisation_{problem}.png", f"{problem}: length generalisation",
                                  f"{problem}: median test metric against evaluation length, one panel per training "
                                  f"length (the vertical line), with {references}.",
                                  figs.render(fig)))
    blocks += _held_out_blocks(data, problem)
    blocks += _state_blocks(data, problem)
    if len(lengths) >= 2:
        fig = figs.cost_horizon(problem, _horizon_costs(data, problem), lengths)
        caption = (f"{problem}: each architecture's memory horizon (longest T solved with every shorter T) against "
                   "its parameter count and against the training time of one run at that length; the grey steps are "
                   "the frontier (the longest horizon reached at or below each cost).")
    else:
        fig = figs.cost(problem, chosen)
        caption = (f"{problem}: median test metric against parameter count and against training time per run, one "
                   f"point per architecture, with its interval over seeds ({intervals_caption(chosen)}); the grey "
                   "steps are the frontier (the best metric reached at or below each cost).")
    blocks.append(FigureBlock(f"cost_{problem}.png", f"{problem}: cost", caption, figs.render(fig)))
    blocks += _pair_blocks(data, problem)
    return Section(f"Problem: {problem}", blocks)


def _pair_blocks(data: Data, problem: str) -> list[Block]:
    """Every pair of archs at each T with its seed-level test: the table the findings' rankings come from."""
    pairs = data.comparisons.filter(pl.col("problem") == problem)
    if not pairs.height:
        return []
    ordered = int((pairs["order"] != "not distinguishable").sum())
    parts = []
    for (t,), part in pairs.group_by(["seq_len"], maintain_order=True):
        need = verdicts.seeds_needed(part.height)
        parts.append(f"T={t}: {part.height} pair{'s' * (part.height > 1)}, "
                     f"{_range_text(part['n_shared'].to_list())} shared seeds, a clean separation needs at least "
                     f"{need}")
    lead = Paragraph(
        f"{ordered} of {pairs.height} pairs ordered ({'; '.join(parts)}). Each pair is compared on the seeds both "
        "architectures ran: on how many seeds each one's run had the better test metric (a fact, seed by seed; a "
        "diverged run is the worst value), the share of all pairs of their runs in which A's is the better, the "
        "exact two-sided rank test's p-value, and that p-value after Holm's correction over every pair at that "
        f"T. 'A is above/below B' only where the corrected p is at most {verdicts.ALPHA:g}; otherwise not "
        "distinguishable with that many seeds.", lead="Head to head:")
    # each arch is compared at its own chosen cell: the settings where the two cells differ anywhere are shown
    extra = [k for k in SETTINGS if (pairs[f"{k}_a"] != pairs[f"{k}_b"]).any()
             or pairs[f"{k}_a"].n_unique() > 1 or pairs[f"{k}_b"].n_unique() > 1]
    rows = [[str(r["seq_len"]), *(_pair_setting(r, k) for k in extra), r["arch_a"], r["arch_b"], str(r["n_shared"]),
             str(r["a_better"]), str(r["b_better"]), f"{r['a_over_b']:.2f}", f"{r['p_value']:.3g}",
             f"{r['p_holm']:.3g}", r["order"]]
            for r in pairs.sort("seq_len", "arch_a", "arch_b").iter_rows(named=True)]
    table = Table(["T", *(f"{k} (A / B)" for k in extra), "architecture A", "architecture B", "shared seeds",
                   "A better", "B better", "A over B", "p", "p (Holm)", "A is"], rows,
                  caption="Head to head on the seeds both architectures ran (rules above).",
                  columns=["num", *["num"] * len(extra), "name", "name", "num", "num", "num", "num", "num", "num",
                           ""])
    return [lead, table]


def _pair_setting(row: dict, key: str) -> str:
    a, b = row[f"{key}_a"], row[f"{key}_b"]
    return fmt(a) if a == b else f"{fmt(a)} / {fmt(b)}"


def _horizon_costs(data: Data, problem: str) -> list[dict]:
    out = []
    for arch in data.archs:
        mine = sorted((r for r in data.chosen(problem) if r["arch"] == arch), key=lambda r: r["seq_len"])
        if not mine:
            continue
        horizon = data.horizon.get((arch, problem))
        at = next((r for r in mine if r["seq_len"] == horizon), mine[-1])
        # a split cell beyond the horizon: some seeds solved a longer T, too few for the solved verdict
        split = max((r for r in mine if r["verdict"] == "split" and r["seq_len"] > (horizon or 0)),
                    key=lambda r: r["seq_len"], default=None)
        out.append({"arch": arch, "horizon": horizon, "split": None if split is None else split["seq_len"],
                    "split_seeds": None if split is None else f"{split['n_solved']}/{split['n_seeds']}",
                    "params": max((r["params"] or 0) for r in mine) or None, "seconds": at["median_train_seconds"]})
    return out


def _int(value) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(round(value))


def _chosen_runs(data: Data, problem: str) -> pl.DataFrame:
    keys = [k for k in verdicts.cell_columns(data.summary) if k in data.metrics.columns]
    picked = pl.DataFrame([{k: r[k] for k in keys} for r in data.chosen(problem)],
                          schema={k: data.metrics.schema[k] for k in keys})
    return data.metrics.join(picked, on=keys, how="semi", nulls_equal=True)


def _curve_panels(data: Data, problem: str) -> list[dict]:
    runs = _chosen_runs(data, problem).filter(pl.col("status") == "ok")
    if not runs.height or not data.curves.height:
        return []
    points = (data.curves.join(runs.select("run_id", "arch", "seq_len", "seed"), on="run_id", how="inner")
              .filter(pl.col("val_metric").is_not_null() & pl.col("val_metric").is_finite())
              .sort("run_id", "step"))
    panels = []
    for t in data.lengths[problem]:
        part = points.filter(pl.col("seq_len") == t)
        if not part.height:
            continue
        order = {a: i for i, a in enumerate(data.archs)}
        runs_out = [{"arch": g["arch"][0], "steps": g["step"].to_list(), "values": g["val_metric"].to_list()}
                    for _, g in part.group_by("run_id", maintain_order=True)]
        runs_out.sort(key=lambda r: order.get(r["arch"], len(order)))
        base = next(r["baseline"] for r in data.chosen(problem) if r["seq_len"] == t)
        panels.append({"seq_len": t, "baseline": base, "threshold": data.thresholds[(problem, t)], "runs": runs_out})
    return panels


def _generalisation_panels(data: Data, problem: str) -> list[dict]:
    """Only where runs were also scored at lengths other than their training length (--eval-lens)."""
    runs = _chosen_runs(data, problem).filter(pl.col("status") == "ok")
    if "test_split" in runs.columns:
        runs = runs.filter(pl.col("test_split") == "test")
    if not runs.filter(pl.col("eval_len") != pl.col("seq_len")).height:
        return []
    grouped = (runs.group_by("seq_len", "arch", "eval_len")
               .agg(pl.col("test_metric").median().alias("median"), pl.col("baseline").first())
               .sort("seq_len", "arch", "eval_len"))
    panels = []
    for t in data.lengths[problem]:
        points = grouped.filter(pl.col("seq_len") == t).to_dicts()
        if points:
            panels.append({"seq_len": t, "points": points,
                           "threshold": {p["eval_len"]: solved_threshold(problem, p["eval_len"]) for p in points}})
    return panels


def _state_blocks(data: Data, problem: str) -> list[Block]:
    """Where the sweep ran an architecture at several state sizes (e.g. `--match state=64,256,1024`): its metric
    against state size, every cell drawn (not only the chosen ones): what a given state holds (Zoology's axis for
    mqar: recall falls as the pairs outgrow the state)."""
    cells = [r for r in data.cells if r["problem"] == problem and r["state_size"] is not None]
    sizes: dict[tuple[str, int], set[int]] = {}
    for r in cells:
        sizes.setdefault((r["arch"], r["seq_len"]), set()).add(r["state_size"])
    if not any(len(s) > 1 for s in sizes.values()):
        return []
    order = {a: i for i, a in enumerate(data.archs)}
    cells.sort(key=lambda r: (order.get(r["arch"], len(order)), r["seq_len"], r["state_size"]))
    lengths = sorted({r["seq_len"] for r in cells})
    fig = figs.metric_vs_state(problem, cells, {t: data.thresholds[(problem, t)] for t in lengths})
    return [FigureBlock(f"state_{problem}.png", f"{problem}: metric against state size",
                        f"{problem}: median test metric against state size, one point per hidden size an architecture "
                        f"ran at, with order-statistic intervals over seeds ({intervals_caption(cells)}); the "
                        "dashed line is the memoryless baseline, the dotted one the solved rule. State size, not "
                        "parameter count, is the axis on which associative recall is predicted to fail (Arora et "
                        "al. 2023, Zoology).", figs.render(fig))]


def _held_out_blocks(data: Data, problem: str) -> list[Block]:
    """Where runs were also scored on the problem's held-out test sets (flip_flop's sparse and dense mixes, at the
    training length): each split's median and solved count beside the run's own test set, per arch and T."""
    runs = _chosen_runs(data, problem).filter(pl.col("eval_len") == pl.col("seq_len"))
    if "test_split" not in runs.columns or not runs.filter(pl.col("test_split") != "test").height:
        return []
    splits = ["test", *sorted(set(runs["test_split"].to_list()) - {"test"})]
    cells = {(r["seq_len"], r["arch"], r["test_split"]): r for r in
             runs.group_by("seq_len", "arch", "test_split")
             .agg(pl.col("test_metric").median().alias("median"), pl.col("solved").sum().alias("solved"),
                  pl.len().alias("n"), pl.col("metric_name").first()).iter_rows(named=True)}
    order = {a: i for i, a in enumerate(data.archs)}
    keys = sorted({(t, a) for t, a, _ in cells}, key=lambda k: (k[0], order.get(k[1], len(order))))

    def cell(key: tuple, split: str) -> str:
        c = cells.get((*key, split))
        return "–" if c is None else f"{fmt(c['median'])} ({c['solved']}/{c['n']} solved)"

    settings = get_problem(problem).held_out
    described = "; ".join(f"{name}: {', '.join(f'{k}={v}' for k, v in settings.get(name, {}).items())}"
                          for name in splits[1:])
    metric = next(iter(cells.values()))["metric_name"]
    return [Table(["T", "architecture", *(f"{s} (own)" if s == "test" else s for s in splits)],
                  [[str(t), a, *(cell((t, a), s) for s in splits)] for t, a in keys],
                  caption=f"{problem}: the best-on-validation model of each run scored on its own test set and on "
                          f"held-out test sets of the same length drawn at other settings ({described}): median "
                          f"{metric} over seeds, and on how many seeds each met the solved rule. The verdicts above "
                          "read the own test set only.",
                  columns=["num", "name", *["num"] * len(splits)])]


def _architectures(data: Data) -> Section:
    rows = (data.metrics.group_by("arch", "problem", "hidden_size")
            .agg(pl.col("params").max(), pl.col("state_size").max()).to_dicts())
    rows.sort(key=lambda r: (data.archs.index(r["arch"]), data.problems.index(r["problem"]), r["hidden_size"]))
    return Section("Architectures", [Table(
        ["arch", "problem", "hidden", "params (with readout)", "state size", "source"],
        [[r["arch"], r["problem"], str(r["hidden_size"]), fmt(r["params"]), fmt(r["state_size"]),
          ARCHS[r["arch"]].source if r["arch"] in ARCHS else "–"] for r in rows],
        columns=["", "", "num", "num", "num", ""])])


def _failures(data: Data) -> Section:
    m = verdicts.in_distribution(data.metrics)
    bad = m.filter((pl.col("status") != "ok") | pl.col("outcome").is_in(["diverged", "failed"]))
    if not bad.height:
        return Section("Failed and diverged jobs", [Paragraph("None: every job finished and none diverged.")])
    bad = bad.sort("problem", "seq_len", "arch", "seed")
    extra = [k for k in SETTINGS if k != "steps" and k in bad.columns and m[k].n_unique() > 1]
    rows = []
    for r in bad.iter_rows(named=True):
        error = (r["error"] or "").strip()
        if len(error) > ERROR_CHARS:
            error = error[:ERROR_CHARS] + f"… ({len(error) - ERROR_CHARS} more characters in metrics.parquet)"
        rows.append([r["problem"], str(r["seq_len"]), r["arch"], str(r["seed"]), *(fmt(r[k]) for k in extra),
                     Badge(r["outcome"] or r["status"], "diverged" if r["outcome"] == "diverged" else "no result"),
                     f"{r['steps_done']:,} of {r['steps']:,}", error or "–", r["run_id"]])
    failed = int((bad["status"] == "failed").sum())
    text = (f"{bad.height} of {m.height} jobs: {failed} failed (infrastructure: counted apart, not as a result) and "
            f"{bad.height - failed} diverged (counted as not solved).")
    return Section("Failed and diverged jobs", [Paragraph(text), Table(
        ["problem", "T", "arch", "seed", *extra, "outcome", "updates done", "error", "run"], rows,
        columns=["", "num", "", "num", *["num"] * len(extra), "", "num", "err", "id"])])


def _configuration(config: dict, environment: dict) -> Section:
    # sorted keys: the same text whether the config comes from the flow or back from OUT/config.json (flows.report)
    text = json.dumps({"config": config, "environment": environment}, indent=2, default=str, sort_keys=True)
    return Section("Run configuration and environment", [
        Paragraph("Everything needed to run this sweep again: the flow's configuration and the software it ran on "
                  "(package versions include torch)."),
        Code(text, "config and environment (JSON)")])


def build(metrics: pl.DataFrame, curves: pl.DataFrame, config: dict, environment: dict,
          horizons: pl.DataFrame | None = None) -> Report:
    """The report of validated metrics (one row per run) and curves (validation metric per update); `horizons`:
    the run's horizons.parquet (None: derived here from the metrics, the grid's lengths)."""
    data = prepare(metrics, curves)
    searches = {g["problem"]: HorizonSearch(**g["horizon"]) for g in config.get("grids", [])
                if isinstance(g, dict) and g.get("horizon")}
    horizon_rows = horizons.to_dicts() if horizons is not None else horizons_from_metrics(metrics, searches)
    sentences = list(verdicts.findings(data.summary, data.comparisons))
    details = Section("Details per problem", [Paragraph(
        "Per problem: every cell with its interval and verdict, then only the figures the data supports (metric "
        "against T where there are two or more lengths, learning-rate sensitivity where rates were swept).")],
        [_problem_section(data, p) for p in data.problems])
    sections = [_with_horizons(_answer(data), data, horizon_rows), _findings(data, sentences),
                _reproduction(data, config.get("preset")), details,
                _architectures(data),
                _failures(data), _configuration(config, environment)]
    sections = [s for s in sections if s is not None]
    return Report(TITLE, _facts(data, environment), sections, sentences, data.summary, data.comparisons)


__all__ = ["Badge", "Bullets", "Code", "FigureBlock", "MarkdownParagraph", "Paragraph", "Report", "Section", "Table",
           "build", "md_cell", "md_text", "prepare", "slug", "solved_threshold"]
