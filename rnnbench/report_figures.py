"""The report's figures, drawn with matplotlib's object API (Figure + FigureCanvasAgg): no pyplot, no global state.

Every figure takes plain rows (dicts) prepared by `rnnbench.report`, so this module knows nothing about Parquet,
Prefect or the verdict rules. Each architecture keeps one colour, marker and line style in every figure (and in
every report: the style follows the architecture's place in the registry), and outcomes carry a hatch and a word
besides their colour, so a page printed in grey still reads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import offset_copy

from rnnbench.archs import ARCHS

DPI = 150  # saved resolution; pages show figures at 100 px per inch, so they stay sharp on high-density screens
SCREEN_DPI = 100
FONT = 9  # points: every text is set explicitly, so nothing reads matplotlib's global rcParams for sizes


# ---- styles -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchStyle:
    color: str
    marker: str
    linestyle: str | tuple


# Okabe & Ito's colour-blind-safe palette (yellow replaced by olive, which shows on white), then a few more;
# markers and dashes differ too, so lines stay apart in grey.
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933",
           "#882255", "#44AA99", "#777777", "#332288")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (5, 2, 1, 2)),
               (0, (8, 2)), (0, (2, 2, 6, 2)), (0, (4, 1, 1, 1)), (0, (6, 3)))


def arch_style(arch: str) -> ArchStyle:
    """Fixed per architecture: its index in the ARCHS registry (plugins come after the built-ins)."""
    names = list(ARCHS)
    i = names.index(arch) if arch in names else len(names) + sum(map(ord, arch))
    return ArchStyle(_COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)], _LINESTYLES[i % len(_LINESTYLES)])


@dataclass(frozen=True)
class VerdictStyle:
    fill: str
    hatch: str | None
    hatch_color: str
    text_color: str
    label: str  # the words inside an overview cell (first line)


# A cell's verdict: colour, and for grey print a hatch and the word itself. Keys are rnnbench.verdicts' verdicts.
VERDICT_STYLES: dict[str, VerdictStyle] = {
    "solved": VerdictStyle("#1b7837", None, "#1b7837", "#ffffff", "solved"),
    "split": VerdictStyle("#a6dba0", "///", "#4d9a48", "#000000", "split"),
    "beats baseline": VerdictStyle("#92c5de", "..", "#3f7fa8", "#000000", "beats\nbaseline"),
    "at baseline": VerdictStyle("#e0e0e0", None, "#e0e0e0", "#000000", "at\nbaseline"),
    "worse than baseline": VerdictStyle("#f4a582", "\\\\\\", "#c2653b", "#000000", "worse than\nbaseline"),
    "diverged": VerdictStyle("#b2182b", "xx", "#e07b86", "#ffffff", "diverged"),
    "no result": VerdictStyle("#ffffff", "--", "#bbbbbb", "#555555", "no result"),
}
VERDICT_ORDER = tuple(VERDICT_STYLES)

BASELINE_STYLE = {"color": "#666666", "linestyle": (0, (6, 3)), "linewidth": 1.2}
THRESHOLD_STYLE = {"color": "#000000", "linestyle": (0, (1, 2)), "linewidth": 1.4}
TRAINED_AT_STYLE = {"color": "#444444", "linestyle": (0, (4, 1, 1, 1)), "linewidth": 1.0}


# ---- units -------------------------------------------------------------------------------------------------
_METRIC_UNITS = {"mse": "MSE (squared target units)", "accuracy": "accuracy (fraction correct, 0–1)",
                 "cross_entropy": "cross-entropy (nats per target step)"}
LENGTH_LABEL = "training length T (time steps)"
UPDATE_LABEL = "update (optimizer steps)"
PARAMS_LABEL = "parameters (count, log scale)"
SECONDS_LABEL = "training time per run (s, median over seeds, log scale)"
LR_LABEL = "learning rate (Adam step size, log scale)"
EVAL_LEN_LABEL = "evaluation length (time steps)"


def metric_label(metric_name: str, what: str = "test") -> str:
    return f"{what} {_METRIC_UNITS.get(metric_name, metric_name)}"


# ---- output --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    png: bytes
    width_px: int  # the size to show it at (SCREEN_DPI), so text in every figure has the same size on the page
    height_px: int


def render(fig: Figure) -> Rendered:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    width, height = fig.get_size_inches()
    return Rendered(buffer.getvalue(), round(width * SCREEN_DPI), round(height * SCREEN_DPI))


def _new(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def _style_axes(ax) -> None:
    ax.tick_params(labelsize=FONT - 1)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _log_scale_helps(values: Iterable[float | None]) -> bool:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 30


def _length_axis(ax, lengths: Sequence[int]) -> None:
    lengths = sorted(set(lengths))
    if len(lengths) > 1 and lengths[-1] / lengths[0] >= 4:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(lengths))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in lengths])


def _reference_lines(ax, xs: Sequence[float], baselines: Sequence[float], thresholds: Sequence[float | None]) -> None:
    """Baseline and solved threshold as lines over x (they may depend on T); flat when x has one point."""
    xs = list(xs)
    if len(xs) == 1:
        ax.axhline(baselines[0], **BASELINE_STYLE)
        if thresholds[0] is not None:
            ax.axhline(thresholds[0], **THRESHOLD_STYLE)
        return
    ax.plot(xs, baselines, **BASELINE_STYLE)
    if all(t is not None for t in thresholds):
        ax.plot(xs, thresholds, **THRESHOLD_STYLE)


def _legend(fig: Figure, archs: Sequence[str], extra: Sequence[tuple[str, dict]] = (),
            ncols: int | None = None) -> None:
    handles = [Line2D([], [], color=arch_style(a).color, marker=arch_style(a).marker,
                      linestyle=arch_style(a).linestyle, label=a) for a in archs]
    handles += [Line2D([], [], label=label, **style) for label, style in extra]
    longest = max(len(h.get_label()) for h in handles)
    fits = max(1, int(fig.get_figwidth() / (0.7 + 0.055 * longest)))  # entries per row that fit the width
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols or min(len(handles), fits),
               fontsize=FONT - 1, frameon=False)


def _references(thresholds: Iterable[float | None]) -> tuple[tuple[str, dict], ...]:
    """Legend entries for the baseline, and the solved threshold where one was drawn (a rule on another metric,
    e.g. copy_sequence's recall accuracy beside its cross-entropy, has no line on this axis)."""
    base = (("baseline (no memory)", BASELINE_STYLE),)
    return (*base, ("solved threshold", THRESHOLD_STYLE)) if any(t is not None for t in thresholds) else base


def _grid(n: int, max_cols: int = 3, width: float = 3.3, height: float = 2.7, extra_height: float = 0.9,
          sharey: bool = False):
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig = _new(max(width * cols + 0.5, 6.0), height * rows + extra_height)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ---- the overview: verdict per architecture x (problem, T), and each architecture's memory horizon ---------
@dataclass(frozen=True)
class OverviewCell:
    verdict: str
    n_solved: int
    n_seeds: int
    n_diverged: int


OVERVIEW_UNITS = 13.5  # columns per row of the overview (about 9 inches of cells): wider sweeps wrap into rows


def overview(archs: Sequence[str], lengths: dict[str, list[int]], cells: dict[tuple[str, str, int], OverviewCell],
             horizon: dict[tuple[str, str], int | None]) -> Figure:
    """One row per architecture; per problem one column per T plus a "horizon" column (longest T solved with
    every shorter one). Problems that do not fit the width of a page go on to another block of rows below, with
    the architectures repeated."""
    chunks: list[dict[str, list[int]]] = [{}]
    used_units = 0.0
    for problem, ts in lengths.items():
        units = len(ts) + 1 + 0.45
        if chunks[-1] and used_units + units > OVERVIEW_UNITS:
            chunks.append({})
            used_units = 0.0
        chunks[-1][problem] = ts
        used_units += units
    widest = max(sum(len(ts) + 1.45 for ts in chunk.values()) - 0.45 for chunk in chunks)
    row_height = 0.95 + 0.56 * len(archs)
    fig = _new(max(1.7 + 1.05 * widest, 6.0), 0.95 + row_height * len(chunks))
    axes = fig.subplots(len(chunks), 1, squeeze=False)[:, 0]
    for ax, chunk in zip(axes, chunks, strict=True):
        _overview_block(fig, ax, archs, chunk, cells, horizon, widest)
    used = [v for v in VERDICT_ORDER if any(c.verdict == v for c in cells.values())] or ["no result"]
    handles = [Patch(facecolor=VERDICT_STYLES[v].fill, edgecolor=VERDICT_STYLES[v].hatch_color,
                     hatch=VERDICT_STYLES[v].hatch, label=v) for v in used]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), fontsize=FONT - 1,
               frameon=False, title="cell verdict over seeds; horizon = longest T such that it and every shorter "
                                    "T run are solved", title_fontsize=FONT - 1)
    return fig


def _overview_block(fig: Figure, ax, archs: Sequence[str], lengths: dict[str, list[int]],
                    cells: dict[tuple[str, str, int], OverviewCell], horizon: dict[tuple[str, str], int | None],
                    width_units: float) -> None:
    columns: list[tuple[str, int | None, float]] = []  # (problem, T or None for the horizon column, x)
    x = 0.0
    for problem, ts in lengths.items():
        for t in ts:
            columns.append((problem, t, x))
            x += 1
        columns.append((problem, None, x))
        x += 1.45
    for row, arch in enumerate(archs):
        for problem, t, cx in columns:
            if t is None:
                value = horizon.get((arch, problem))
                ax.add_patch(Rectangle((cx - 0.5, row - 0.5), 1, 1, facecolor="#f7f7f7", edgecolor="#999999",
                                       linewidth=0.8))
                ax.text(cx, row, "none" if value is None else f"T={value}", ha="center", va="center",
                        fontsize=FONT, fontweight="bold", color="#000000" if value is not None else "#666666")
                continue
            cell = cells.get((arch, problem, t))
            style = VERDICT_STYLES[cell.verdict if cell else "no result"]
            ax.add_patch(Rectangle((cx - 0.5, row - 0.5), 1, 1, facecolor=style.fill, edgecolor=style.hatch_color,
                                   hatch=style.hatch, linewidth=0))
            ax.add_patch(Rectangle((cx - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=2.5))
            text = style.label if cell else "not run"
            if cell and cell.verdict in ("solved", "split"):
                text = f"{style.label}\n{cell.n_solved}/{cell.n_seeds} seeds"
            elif cell and cell.verdict == "diverged":
                text = f"{style.label}\n{cell.n_diverged}/{cell.n_seeds} seeds"
            ax.text(cx, row, text, ha="center", va="center", fontsize=FONT - 0.5, color=style.text_color,
                    linespacing=1.1, bbox={"boxstyle": "round,pad=0.15", "facecolor": style.fill, "edgecolor": "none"}
                    if style.hatch else None)
        style = arch_style(arch)  # the architecture's marker, as in every other figure, left of its name
        ax.plot([0], [row], marker=style.marker, color=style.color, markersize=7, clip_on=False, linestyle="",
                transform=offset_copy(ax.get_yaxis_transform(), fig=fig, x=-9, units="points"))
    ax.set_xlim(-0.55, width_units - 0.45)  # every block as wide as the widest, so cells keep one size
    ax.set_ylim(len(archs) - 0.5, -0.5)
    ax.set_yticks(range(len(archs)), archs, fontsize=FONT)
    ax.tick_params(axis="y", length=0, pad=18)
    ax.set_xticks([cx for _, _, cx in columns], [f"T={t}" if t is not None else "horizon" for _, t, _ in columns],
                  fontsize=FONT - 1)
    ax.tick_params(axis="x", length=0)
    for label, (_, t, _) in zip(ax.get_xticklabels(), columns, strict=True):
        if t is None:
            label.set_fontweight("bold")
    secondary = ax.secondary_xaxis("top")
    starts: dict[str, list[float]] = {}
    for problem, _, cx in columns:
        starts.setdefault(problem, []).append(cx)
    secondary.set_xticks([sum(xs) / len(xs) for xs in starts.values()], list(starts), fontsize=FONT, fontweight="bold")
    secondary.tick_params(length=0)
    for spine in (*ax.spines.values(), *secondary.spines.values()):
        spine.set_visible(False)


# ---- per problem ------------------------------------------------------------------------------------------------
def metric_vs_length(problem: str, rows: list[dict], thresholds: dict[int, float | None]) -> Figure:
    """Median test metric (order-statistic interval over seeds; the caption states its level) against T, one
    line per architecture."""
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    lengths = sorted({r["seq_len"] for r in rows})
    fig = _new(6.4, 4.0)
    ax = fig.add_subplot()
    _style_axes(ax)
    log_x = len(lengths) > 1 and lengths[-1] / lengths[0] >= 4
    for i, arch in enumerate(archs):
        style = arch_style(arch)
        pts = sorted((r for r in rows if r["arch"] == arch and r["median"] is not None), key=lambda r: r["seq_len"])
        if not pts:
            continue
        dodge = 1 + 0.025 * (i - (len(archs) - 1) / 2) if log_x else 1.0
        xs = [r["seq_len"] * dodge for r in pts]
        ys = [r["median"] for r in pts]
        err = [[r["median"] - (r["ci_low"] if r["ci_low"] is not None else r["median"]) for r in pts],
               [(r["ci_high"] if r["ci_high"] is not None else r["median"]) - r["median"] for r in pts]]
        ax.errorbar(xs, ys, yerr=err, color=style.color, marker=style.marker, linestyle=style.linestyle, capsize=3,
                    linewidth=1.5, markersize=6)
    base = {r["seq_len"]: r["baseline"] for r in rows}
    _reference_lines(ax, lengths, [base[t] for t in lengths], [thresholds.get(t) for t in lengths])
    if _log_scale_helps([r["median"] for r in rows] + [r["ci_low"] for r in rows]):
        ax.set_yscale("log")
    _length_axis(ax, lengths)
    ax.set_xlabel(LENGTH_LABEL, fontsize=FONT)
    ax.set_ylabel(metric_label(rows[0]["metric_name"]) + "\nmedian over seeds, order-statistic interval",
                  fontsize=FONT)
    ax.set_title(f"{problem}: test metric against length", fontsize=FONT + 1)
    _legend(fig, archs, _references(thresholds.values()))
    return fig


def learning_curves(problem: str, metric_name: str, panels: list[dict]) -> Figure:
    """One panel per T: validation metric against update, thin lines per seed and a bold median per architecture.
    A panel is {"seq_len", "baseline", "threshold", "runs": [{"arch", "steps": [...], "values": [...]}, ...]}."""
    fig, axes = _grid(len(panels), sharey=True)
    archs: list[str] = []
    seeds = 0
    every = [v for p in panels for run in p["runs"] for v in run["values"]] + [p["baseline"] for p in panels]
    log_y = metric_name == "mse" and _log_scale_helps(every)
    for ax, panel in zip(axes, panels, strict=True):
        _style_axes(ax)
        by_arch: dict[str, list[dict]] = {}
        for run in panel["runs"]:
            by_arch.setdefault(run["arch"], []).append(run)
        for arch, runs in by_arch.items():
            archs.append(arch)
            style = arch_style(arch)
            for run in runs:
                ax.plot(run["steps"], run["values"], color=style.color, linewidth=0.7, alpha=0.35,
                        linestyle=style.linestyle)
            steps, median = median_curve(runs)
            ax.plot(steps, median, color=style.color, linestyle=style.linestyle, linewidth=1.8, marker=style.marker,
                    markersize=4.5, markevery=max(1, len(steps) // 6))
        ax.axhline(panel["baseline"], **BASELINE_STYLE)
        if panel["threshold"] is not None:
            ax.axhline(panel["threshold"], **THRESHOLD_STYLE)
        if log_y:
            ax.set_yscale("log")
        seeds = max(seeds, *(len(r) for r in by_arch.values()))
        ax.set_title(f"T={panel['seq_len']}", fontsize=FONT)
        ax.set_xlabel(UPDATE_LABEL, fontsize=FONT)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(metric_label(metric_name, "validation"), fontsize=FONT)
    how = (f"\nthin: one seed; bold: median over {seeds} seeds, a run that stopped early counted at its last value"
           if seeds > 1 else "")
    fig.suptitle(f"{problem}: learning curves on the validation split{how}", fontsize=FONT + 1)
    _legend(fig, list(dict.fromkeys(archs)), _references(p["threshold"] for p in panels))
    return fig


def median_curve(runs: Sequence[dict]) -> tuple[list[int], list[float]]:
    """(steps, median over runs) at every step any run evaluated. A run with no point at a step (it stopped
    early, having met the solved rule on validation, or that point was not finite) counts at its last value
    before that step: dropping it would leave the median to the runs still training, the unsolved ones, and the
    curve would fall as seeds finish. Before a run's first point it does not count."""
    steps = sorted({s for run in runs for s in run["steps"]})
    median = []
    for s in steps:
        vals = []
        for run in runs:
            before = [v for st, v in zip(run["steps"], run["values"], strict=True) if st <= s]
            if before:
                vals.append(before[-1])
        median.append(_median(sorted(vals)))
    return steps, median


def lr_sensitivity(problem: str, rows: list[dict], chosen: set[tuple], thresholds: dict[int, float | None]) -> Figure:
    """Median test metric against learning rate, one panel per T; a ring marks the rate chosen on validation."""
    lengths = sorted({r["seq_len"] for r in rows})
    fig, axes = _grid(len(lengths), sharey=True)
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    log_y = _log_scale_helps([r["median"] for r in rows])
    for ax, t in zip(axes, lengths, strict=True):
        _style_axes(ax)
        part = [r for r in rows if r["seq_len"] == t]
        for arch in archs:
            style = arch_style(arch)
            pts = sorted((r for r in part if r["arch"] == arch and r["median"] is not None), key=lambda r: r["lr"])
            if not pts:
                continue
            _median_line(ax, pts, "lr", style)
            for r in pts:
                if (r["arch"], r["seq_len"], r["lr"]) in chosen:
                    ax.plot([r["lr"]], [r["median"]], marker="o", markersize=13, markerfacecolor="none",
                            markeredgecolor=style.color, markeredgewidth=1.5, linestyle="")
        ax.axhline(part[0]["baseline"], **BASELINE_STYLE)
        if thresholds.get(t) is not None:
            ax.axhline(thresholds[t], **THRESHOLD_STYLE)
        ax.set_xscale("log")
        lrs = sorted({r["lr"] for r in part})
        ax.xaxis.set_major_locator(FixedLocator(lrs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{lr:g}" for lr in lrs])
        if log_y:
            ax.set_yscale("log")
        ax.set_title(f"T={t}", fontsize=FONT)
        ax.set_xlabel(LR_LABEL, fontsize=FONT)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(metric_label(rows[0]["metric_name"]) + "\nmedian, interval over seeds", fontsize=FONT)
    fig.suptitle(f"{problem}: sensitivity to the learning rate\nring: the rate chosen on validation", fontsize=FONT + 1)
    _legend(fig, archs, _references(thresholds.values()))
    return fig


def length_generalisation(problem: str, metric_name: str, panels: list[dict]) -> Figure:
    """Metric against evaluation length, one panel per training T (marked). A panel is {"seq_len", "points":
    [{"arch", "eval_len", "median", "baseline"}], "threshold": {eval_len: value or None}}."""
    fig, axes = _grid(len(panels), sharey=True)
    archs: list[str] = []
    for ax, panel in zip(axes, panels, strict=True):
        _style_axes(ax)
        pts = panel["points"]
        for arch in dict.fromkeys(p["arch"] for p in pts):
            archs.append(arch)
            style = arch_style(arch)
            line = sorted((p for p in pts if p["arch"] == arch), key=lambda p: p["eval_len"])
            ax.plot([p["eval_len"] for p in line], [p["median"] for p in line], color=style.color,
                    marker=style.marker, linestyle=style.linestyle, linewidth=1.5, markersize=5)
        lens = sorted({p["eval_len"] for p in pts})
        base = {p["eval_len"]: p["baseline"] for p in pts}
        _reference_lines(ax, lens, [base[e] for e in lens], [panel["threshold"].get(e) for e in lens])
        ax.axvline(panel["seq_len"], **TRAINED_AT_STYLE)
        _length_axis(ax, lens)
        ax.set_xlabel(EVAL_LEN_LABEL, fontsize=FONT)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(metric_label(metric_name) + "\nmedian over seeds", fontsize=FONT)
        ax.set_title(f"trained at T={panel['seq_len']}", fontsize=FONT)
    fig.suptitle(f"{problem}: length generalisation", fontsize=FONT + 1)
    drawn = [t for p in panels for t in p["threshold"].values()]
    _legend(fig, list(dict.fromkeys(archs)), (*_references(drawn), ("training length T", TRAINED_AT_STYLE)))
    return fig


def cost(problem: str, rows: list[dict]) -> Figure:
    """One length: median test metric against parameters and against training seconds, one point per
    architecture; the grey steps are the frontier (the best metric reached at or below each cost)."""
    fig = _new(9.0, 3.9)
    axes = fig.subplots(1, 2, sharey=True)
    hib = bool(rows[0]["higher_is_better"])
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    log_y = _log_scale_helps([r["median"] for r in rows] + [r["ci_low"] for r in rows])
    for ax, key, label in ((axes[0], "params", PARAMS_LABEL), (axes[1], "median_train_seconds", SECONDS_LABEL)):
        _style_axes(ax)
        pts = [r for r in rows if r["median"] is not None and r.get(key) is not None and r[key] > 0]
        for r in pts:
            style = arch_style(r["arch"])
            low = r["ci_low"] if r["ci_low"] is not None else r["median"]
            high = r["ci_high"] if r["ci_high"] is not None else r["median"]
            ax.errorbar([r[key]], [r["median"]], yerr=[[r["median"] - low], [high - r["median"]]], color=style.color,
                        marker=style.marker, markersize=7, capsize=3, linestyle="")
        _frontier_line(ax, [(r[key], r["median"]) for r in pts], hib)
        ax.axhline(rows[0]["baseline"], **BASELINE_STYLE)
        _plain_log_axis(ax, [r[key] for r in pts], "{:,.0f}" if key == "params" else "{:.3g}")
        ax.set_xlabel(label, fontsize=FONT)
        if log_y:
            ax.set_yscale("log")
    axes[0].set_ylabel(metric_label(rows[0]["metric_name"]) + "\nmedian over seeds, interval over seeds",
                       fontsize=FONT)
    fig.suptitle(f"{problem} at T={rows[0]['seq_len']}: what each result costs", fontsize=FONT + 1)
    _legend(fig, archs, (("baseline (no memory)", BASELINE_STYLE), ("frontier: best at ≤ this cost", FRONTIER_STYLE)))
    return fig


def cost_horizon(problem: str, points: list[dict], lengths: Sequence[int]) -> Figure:
    """Several lengths: each architecture's memory horizon (longest T solved with every shorter one) against its
    parameter count and against the training time of one run at that T (at the longest T run when it solved
    none). A point is {"arch", "horizon" (T or None), "split" (a longer T whose cell is split, or None),
    "split_seeds" ("solved/run"), "params", "seconds"}; a split cell is a half-filled marker labelled "split k/n",
    joined to the horizon by a dotted line."""
    fig = _new(9.0, 3.9)
    axes = fig.subplots(1, 2, sharey=True)
    levels = [None, *sorted(lengths)]  # categorical: "none" below the shortest length
    for ax, key, label in ((axes[0], "params", PARAMS_LABEL), (axes[1], "seconds",
                            "training time per run at the horizon's T\n(s, median over seeds, log scale)")):
        _style_axes(ax)
        pts = [p for p in points if p.get(key) is not None and p[key] > 0]
        for p in pts:
            style = arch_style(p["arch"])
            solved = p["horizon"] is not None
            ax.plot([p[key]], [levels.index(p["horizon"])], marker=style.marker, markersize=8, linestyle="",
                    color=style.color, markerfacecolor=style.color if solved else "white", markeredgewidth=1.5)
            if p.get("split") is not None:
                ax.plot([p[key]] * 2, [levels.index(p["horizon"]), levels.index(p["split"])], linestyle=":",
                        color=style.color, linewidth=1.2, zorder=1)
                ax.plot([p[key]], [levels.index(p["split"])], marker=style.marker, markersize=8, linestyle="",
                        color=style.color, fillstyle="bottom", markerfacecoloralt="white", markeredgewidth=1.5)
                # the marker's half fill does not show on every shape: the words say it
                ax.annotate(f"split {p.get('split_seeds') or ''}".strip(), (p[key], levels.index(p["split"])),
                            xytext=(7, 4), textcoords="offset points", fontsize=FONT - 1, color=style.color)
        _frontier_line(ax, [(p[key], levels.index(p["horizon"])) for p in pts], True)
        _plain_log_axis(ax, [p[key] for p in pts], "{:,.0f}" if key == "params" else "{:.3g}")
        ax.set_xlabel(label, fontsize=FONT)
    axes[0].set_yticks(range(len(levels)), ["none solved" if t is None else f"T={t}" for t in levels])
    axes[0].set_ylim(-0.5, len(levels) - 0.5)
    axes[0].set_ylabel("memory horizon\n(longest T solved, with every shorter T)", fontsize=FONT)
    keys = ["hollow: solved no length"] + (["split: some seeds solved that T"]
                                           if any(p.get("split") is not None for p in points) else [])
    fig.suptitle(f"{problem}: how long a memory each budget buys ({'; '.join(keys)})", fontsize=FONT + 1)
    _legend(fig, list(dict.fromkeys(p["arch"] for p in points)),
            (("frontier: best at ≤ this cost", FRONTIER_STYLE),))
    return fig


FRONTIER_STYLE = {"color": "#888888", "linewidth": 1.2}


STATE_LABEL = "state size (numbers carried between steps, log scale)"


def metric_vs_state(problem: str, rows: list[dict], thresholds: dict[int, float | None]) -> Figure:
    """Zoology's axis: median test metric against state size, one line per architecture (each point a hidden size
    the sweep ran it at), one panel per T. Rows: summary rows with "arch", "seq_len", "state_size", "median",
    "ci_low", "ci_high", "baseline", "metric_name"."""
    lengths = sorted({r["seq_len"] for r in rows})
    fig, axes = _grid(len(lengths), sharey=True)
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    for ax, t in zip(axes, lengths, strict=True):
        _style_axes(ax)
        part = [r for r in rows if r["seq_len"] == t]
        for arch in archs:
            style = arch_style(arch)
            pts = sorted((r for r in part if r["arch"] == arch and r["median"] is not None and r["state_size"]),
                         key=lambda r: r["state_size"])
            if not pts:
                continue
            _median_line(ax, pts, "state_size", style)
        ax.axhline(part[0]["baseline"], **BASELINE_STYLE)
        if thresholds.get(t) is not None:
            ax.axhline(thresholds[t], **THRESHOLD_STYLE)
        sizes = sorted({r["state_size"] for r in part if r["state_size"]})
        _plain_log_axis(ax, sizes, "{:,.0f}")
        if len(sizes) <= 6:  # the sizes run (often powers of two) read better than 1-2-5 steps between them
            ax.xaxis.set_major_locator(FixedLocator(sizes))
            ax.set_xticklabels([f"{v:,}" for v in sizes])
        ax.set_title(f"T={t}", fontsize=FONT)
        ax.set_xlabel(STATE_LABEL, fontsize=FONT)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(metric_label(rows[0]["metric_name"]) + "\nmedian, interval over seeds", fontsize=FONT)
    fig.suptitle(f"{problem}: what each state size holds", fontsize=FONT + 1)
    _legend(fig, archs, _references(thresholds.values()))
    return fig


def _median_line(ax, pts: list[dict], x: str, style: ArchStyle) -> None:
    """One arch's medians against `x`, each with its interval over seeds (a bound that is missing: none drawn)."""
    err = [[r["median"] - (r["ci_low"] if r["ci_low"] is not None else r["median"]) for r in pts],
           [(r["ci_high"] if r["ci_high"] is not None else r["median"]) - r["median"] for r in pts]]
    ax.errorbar([r[x] for r in pts], [r["median"] for r in pts], yerr=err, color=style.color, marker=style.marker,
                linestyle=style.linestyle, capsize=3, linewidth=1.4, markersize=5)


def _frontier_line(ax, points: list[tuple[float, float]], higher_is_better: bool) -> None:
    frontier = _frontier(points, higher_is_better)
    if len(frontier) > 1:
        ax.step([p[0] for p in frontier], [p[1] for p in frontier], where="post", zorder=0, **FRONTIER_STYLE)


def _plain_log_axis(ax, values: Sequence[float], pattern: str) -> None:
    """A log x axis labelled with plain numbers at 1-2-5 steps (or at the data where those are too few)."""
    ax.set_xscale("log")
    values = [v for v in values if v and v > 0]
    if not values:
        return
    low, high = min(values), max(values)
    ax.set_xlim(low / 1.35, high * 1.35)
    ticks = [m * 10**k for k in range(math.floor(math.log10(low / 1.35)), math.ceil(math.log10(high * 1.35)) + 1)
             for m in (1, 2, 5) if low / 1.35 <= m * 10**k <= high * 1.35]
    if len(ticks) < 2:
        ticks = sorted({low, high})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([pattern.format(t) for t in ticks])


def _frontier(points: list[tuple[float, float]], higher_is_better: bool) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for x, y in sorted(points):
        if not out or (y > out[-1][1] if higher_is_better else y < out[-1][1]):
            out.append((x, y))
    return out


def _median(values: Sequence[float]) -> float:
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


__all__ = ["VERDICT_STYLES", "ArchStyle", "OverviewCell", "Rendered", "arch_style", "cost", "cost_horizon",
           "learning_curves", "length_generalisation", "lr_sensitivity", "median_curve", "metric_vs_length",
           "metric_vs_state", "overview", "render"]


# ---- the horizons: each arch's bracket per problem against what it costs -------------------------------------
HORIZON_COSTS = (("params", PARAMS_LABEL, "{:,.0f}"), ("state_size", STATE_LABEL, "{:,.0f}"),
                 ("seconds_per_update", "seconds per update (median over runs, log scale)", "{:.3g}"))


def horizons(rows: list[dict], problems: Sequence[str]) -> Figure:
    """One row of panels per problem, one panel per cost (parameters, state size, seconds per update): each arch's
    memory horizon as a marker at horizon_low with a bar up to horizon_high (the bracket: the horizon lies in
    [low, high)); a hollow marker at "none" where the shortest length is unsolved; an arrow above the cap where
    every length up to it is solved; a cross where a solved length lies above an unsolved one. Rows are
    horizons.parquet's (rnnbench.horizon.horizon_rows)."""
    fig = _new(9.6, 2.5 * len(problems) + 1.0)
    grid = fig.subplots(len(problems), len(HORIZON_COSTS), squeeze=False, sharey="row")
    for problem, axes in zip(problems, grid, strict=True):
        mine = [r for r in rows if r["problem"] == problem]
        tried = sorted({t for r in mine for t in r["lengths_tried"]})
        none_at = tried[0] / 2 if tried else 1  # where "none solved" sits, below the shortest length
        top = max(r["cap"] for r in mine) * 1.6 if mine else 2
        for ax, (key, label, pattern) in zip(axes, HORIZON_COSTS, strict=True):
            _style_axes(ax)
            pts = [r for r in mine if r.get(key) is not None and r[key] > 0]
            xs = _spread([r[key] for r in pts])  # archs of one size (state 32) side by side, not on top
            for r, x in zip(pts, xs, strict=True):
                style = arch_style(r["arch"])
                low = r["horizon_low"] if r["horizon_low"] is not None else none_at
                high = r["horizon_high"] if r["horizon_high"] is not None else top
                ax.plot([x] * 2, [low, high], color=style.color, linewidth=2.2, alpha=0.45, zorder=1,
                        solid_capstyle="butt")
                ax.plot([x], [low], marker=style.marker, markersize=7, linestyle="", color=style.color,
                        markerfacecolor=style.color if r["horizon_low"] is not None else "white",
                        markeredgewidth=1.4, zorder=3)
                if r["beyond_cap"]:
                    ax.annotate("", (x, top), xytext=(x, r["cap"]),
                                arrowprops={"arrowstyle": "->", "color": style.color, "linewidth": 1.2})
                if r["non_monotone"]:
                    ax.plot([x], [low], marker="o", markersize=14, markerfacecolor="none", color="#CC0000",
                            markeredgewidth=1.4, zorder=4)
            _plain_log_axis(ax, [r[key] for r in pts], pattern)
            ax.set_yscale("log", base=2)
            ticks = [none_at, *tried]
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_yticklabels(["none", *(str(t) for t in tried)])
            ax.set_ylim(none_at / 1.25, top)
            ax.set_xlabel(label, fontsize=FONT - 1)
        axes[0].set_ylabel(f"{problem}\nhorizon T", fontsize=FONT)
    fig.suptitle("Memory horizon per architecture: marker = longest T solved with every shorter T, bar = up to the "
                 "first unsolved T\n(hollow: none solved; arrow: solved up to the cap; red ring: a longer T solved "
                 "above an unsolved one, not counted)", fontsize=FONT + 1)
    _legend(fig, list(dict.fromkeys(r["arch"] for r in sorted(rows, key=lambda r: r["arch"]))))
    return fig


def _spread(values: Sequence[float]) -> list[float]:
    """Log-scale x values with equal ones moved apart by a few percent each, in order, so that no marker hides
    another (several archs share one state size)."""
    seen: dict[float, int] = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    placed: dict[float, int] = {}
    out = []
    for v in values:
        k, n = placed.get(v, 0), seen[v]
        placed[v] = k + 1
        out.append(v * 1.06 ** (k - (n - 1) / 2))
    return out
