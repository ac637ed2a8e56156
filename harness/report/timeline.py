"""The run's timeline as inline SVG, drawn with matplotlib's SVG backend.

One figure, three panels sharing the time axis (seconds since the run's first op):
acknowledged writes per second (and unacknowledged ones), write latency p50/p99 per bucket,
and one lane per ordinal showing when the probe saw it available, expectedly unavailable or
unexpectedly unavailable, with lost / torn / unexpected checkpoints marked on their ordinal's
lane at the time of their write. Each fault is **one** shaded band across all three panels,
an SVG group ``id="fault-band-<n>"`` (``class="fault-band"``) with a ``<title>`` naming the
fault, its targets and its period, so a browser shows it on hover and a test can count them.

Why matplotlib (measured on a 100,000-op run, see ``harness bench report`` and
reports/README.md): its SVG is self-contained and lands in the DOM (no JavaScript, nothing to
load, nothing to fail in a console), it has the primitives this chart is made of (spans,
broken bars, stairs), and it renders the timeline in about a second. The figure is built on a
bare :class:`matplotlib.figure.Figure` (no pyplot: no global state) and ``svg.hashsalt`` is
fixed, so the same run gives the same bytes.

Buckets beyond :data:`MAX_POINTS` are merged for drawing (more points than pixels add bytes,
not information): a merged point's rate is the mean, its p99 the worst of its buckets' p99s
(a spike stays visible), its p50 the median of their p50s; the caption says so.
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
import re
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.report import model

if TYPE_CHECKING:
    from matplotlib import artist, axes

#: most points drawn per series (about one per horizontal pixel of the page)
MAX_POINTS = 1200
WIDTH_IN = 12.0
_LABEL_PT = 7.0
COLORS = {
    "acked": "#3a9a5b", "unacked": "#d9534f", "p50": "#3465a4", "p99": "#c4572a",
    "available": "#cfe8d4", "expected": "#f0b64a", "unexpected": "#d9534f",
    "fault": "#f28e2b", "lost": "#b2182b", "torn": "#7b3294", "unexpected_mark": "#111111",
}
MARKERS = {"lost": "X", "torn": "D", "unexpected": "P"}


@dataclasses.dataclass(frozen=True, slots=True)
class Drawn:
    """The SVG and what the caption must say about it."""

    svg: str
    merged: int
    bands: int


def merge(buckets: Sequence[model.Bucket], max_points: int = MAX_POINTS) -> tuple[list[model.Bucket], int]:
    """At most ``max_points`` buckets: consecutive groups of k merged (k returned; 1 = as stored)."""
    if len(buckets) <= max_points:
        return list(buckets), 1
    k = math.ceil(len(buckets) / max_points)
    out = []
    for i in range(0, len(buckets), k):
        group = buckets[i:i + k]
        width = sum(b.width for b in group)
        p50s = [b.p50_s for b in group if b.p50_s is not None]
        p99s = [b.p99_s for b in group if b.p99_s is not None]
        ok = sum(b.ok for b in group)
        out.append(model.Bucket(t=group[0].t, width=width, ok=ok, unacked=sum(b.unacked for b in group),
                                per_s=ok / width if width else 0.0,
                                p50_s=statistics.median(p50s) if p50s else None, p99_s=max(p99s) if p99s else None))
    return out, k


def draw(tl: model.Timeline) -> Drawn | None:
    """The timeline's SVG (None when there is nothing on a time axis to draw)."""
    if tl.t0 is None or (not tl.buckets and not tl.lanes and not tl.faults):
        return None
    import matplotlib as mpl
    from matplotlib import figure, patches, transforms

    buckets, merged = merge(tl.buckets)
    span = max(tl.span, 1e-3)
    x_max = span * 1.008  # room for the marks seen only at read-back (drawn at the end)
    lanes = tl.lanes
    lane_h = 0.32 * max(len(lanes), 1) + 0.45
    heights = [1.7, 1.5, lane_h]
    top_in, bottom_in, gap_in = 0.9, 0.55, 0.22
    total_h = sum(heights) + top_in + bottom_in + gap_in * 2
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "harness-report", "font.size": 8.0,
                         "axes.spines.top": False, "axes.spines.right": False, "path.simplify": True}):
        fig = figure.Figure(figsize=(WIDTH_IN, total_h))
        axes = []
        y = total_h - top_in
        for h in heights:
            y -= h
            axes.append(fig.add_axes((0.07, y / total_h, 0.915, h / total_h)))
            y -= gap_in
        ax_rate, ax_lat, ax_lanes = axes
        for ax in axes:
            ax.set_xlim(0, x_max)
            ax.patch.set_alpha(0.0)  # the fault bands sit beneath the panels
            ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
            ax.set_axisbelow(True)
        ax_rate.tick_params(labelbottom=False)
        ax_lat.tick_params(labelbottom=False)

        if buckets:
            edges = [b.t for b in buckets] + [buckets[-1].t + buckets[-1].width]
            ax_rate.stairs([b.per_s for b in buckets], edges, fill=True, color=COLORS["acked"], alpha=0.85,
                           gid="acked-per-s")
            unacked = [b.unacked / b.width if b.width else 0.0 for b in buckets]
            if any(unacked):
                ax_rate.stairs(unacked, edges, color=COLORS["unacked"], linewidth=0.9, gid="unacked-per-s")
            xs = [b.t for b in buckets]
            for name, values in (("p50", [b.p50_s for b in buckets]), ("p99", [b.p99_s for b in buckets])):
                ms = [math.nan if v is None else v * 1000 for v in values]
                ax_lat.step(xs, ms, where="post", color=COLORS[name], linewidth=0.9, gid=f"latency-{name}")
            ax_lat.set_ylim(bottom=0)
        else:
            for ax in (ax_rate, ax_lat):
                ax.text(0.5, 0.5, "no acknowledged write", transform=ax.transAxes, ha="center", va="center",
                        color="#777777")
        ax_rate.set_ylim(bottom=0)
        ax_rate.set_ylabel("acked writes/s")
        ax_lat.set_ylabel("write latency ms")

        _lanes(ax_lanes, lanes, tl.marks, span)
        ax_lanes.set_xlabel(f"seconds since the first op ({model.utc(tl.t0)})")

        # one band per fault, across the three panels: x in data, y in figure coordinates
        lo = ax_lanes.get_position().y0
        hi = ax_rate.get_position().y1
        blend = transforms.blended_transform_factory(ax_lanes.transData, fig.transFigure)
        pt_per_s = WIDTH_IN * 0.915 * 72 / x_max
        labels = _labels(tl.faults, pt_per_s)
        for f, placed in zip(tl.faults, labels, strict=True):
            end = span if f.end is None else f.end
            fig.add_artist(patches.Rectangle(
                (f.start, lo), max(end - f.start, span / 2000), hi - lo, transform=blend, zorder=-1,
                facecolor=COLORS["fault"], alpha=0.22, edgecolor=COLORS["fault"], linewidth=0.4,
                hatch="//" if f.end is None else None, gid=f"fault-band-{f.index}",
            ))
            if placed is not None:
                text, row = placed
                fig.text(f.start, hi + (0.04 + 0.15 * row) / total_h, text, transform=blend, fontsize=_LABEL_PT,
                         ha="left", va="bottom", color="#8a4b0f", gid=f"fault-label-{f.index}")
        fig.legend(handles=_legend(tl), loc="upper left", ncols=5, frameon=False, fontsize=7,
                   bbox_to_anchor=(0.065, 1.0))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return Drawn(_finish(buf.getvalue(), tl.faults), merged, len(tl.faults))


def _text_pt(text: str) -> float:
    """About how wide a label is, in points (0.6 em per character)."""
    return 0.6 * _LABEL_PT * len(text)


def _place(xs: Sequence[float], texts: Sequence[str], rows: int = 2) -> list[int | None]:
    """Greedy: each text on the first row where the previous text has ended (None: no room)."""
    free = [-math.inf] * rows
    out: list[int | None] = []
    for x, text in zip(xs, texts, strict=True):
        row = next((r for r in range(rows) if x >= free[r]), None)
        if row is not None:
            free[row] = x + _text_pt(text) + 3
        out.append(row)
    return out


def _labels(fault_rows: Sequence[model.Fault], pt_per_s: float) -> list[tuple[str, int] | None]:
    """Every fault named in full (fault and target, on two staggered rows) when all fit; else
    every fault by its number where it fits. A band always carries its full name as a hover
    title, and the faults table lists it under the same number."""
    xs = [f.start * pt_per_s for f in fault_rows]
    full = [f.label for f in fault_rows]
    rows = _place(xs, full)
    if all(r is not None for r in rows):
        return [(text, r) for text, r in zip(full, rows, strict=True) if r is not None]
    numbers = [f"#{f.index}" for f in fault_rows]
    return [None if r is None else (text, r) for text, r in zip(numbers, _place(xs, numbers), strict=True)]


def _lanes(ax: axes.Axes, lanes: Sequence[model.Lane], marks: Sequence[model.Mark], span: float) -> None:
    index = {lane.ordinal: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        if lane.first is None or lane.last is None:
            ax.text(span / 2, i, "not probed", ha="center", va="center", color="#777777", fontsize=7)
        else:
            ax.broken_barh([(lane.first, max(lane.last - lane.first, 0.0))], (i - 0.32, 0.64),
                           facecolors=COLORS["available"], gid=f"lane-{lane.ordinal}")
        for expected in (True, False):
            ws = [w for w in lane.windows if w.expected is expected]
            if ws:
                ax.broken_barh([(w.start, (span if w.end is None else w.end) - w.start) for w in ws],
                               (i - 0.32, 0.64), facecolors=COLORS["expected" if expected else "unexpected"],
                               hatch=None if all(w.end is not None for w in ws) else "xx",
                               gid=f"lane-{lane.ordinal}-{'expected' if expected else 'unexpected'}")
    for kind in model.MARK_KINDS:
        mine = [m for m in marks if m.kind == kind and m.ordinal in index]
        if mine:
            ax.scatter([span if m.t is None else m.t for m in mine], [index[m.ordinal] for m in mine],
                       marker=MARKERS[kind], s=28, zorder=5, color=COLORS["unexpected_mark" if kind == "unexpected"
                                                                           else kind],
                       edgecolors="white", linewidths=0.5, gid=f"marks-{kind}")
    ax.set_yticks(range(len(lanes)), [f"ordinal {lane.ordinal}" for lane in lanes])
    ax.set_ylim(len(lanes) - 0.5 if lanes else 0.5, -0.5)
    ax.grid(False)


def _legend(tl: model.Timeline) -> list[artist.Artist]:
    from matplotlib import lines as mlines
    from matplotlib import patches as mpatches

    handles: list[artist.Artist] = [
        mpatches.Patch(color=COLORS["acked"], label="acknowledged/s"),
        mlines.Line2D([], [], color=COLORS["unacked"], label="unacknowledged/s"),
        mlines.Line2D([], [], color=COLORS["p50"], label="latency p50"),
        mlines.Line2D([], [], color=COLORS["p99"], label="latency p99"),
        mpatches.Patch(color=COLORS["fault"], alpha=0.35, label="fault (inject → healed)"),
        mpatches.Patch(color=COLORS["available"], label="available"),
        mpatches.Patch(color=COLORS["expected"], label="unavailable, expected"),
        mpatches.Patch(color=COLORS["unexpected"], label="unavailable, unexpected"),
    ]
    kinds = {m.kind for m in tl.marks}
    handles += [mlines.Line2D([], [], linestyle="none", marker=MARKERS[k],
                              color=COLORS["unexpected_mark" if k == "unexpected" else k], label=f"{k} checkpoint")
                for k in model.MARK_KINDS if k in kinds]
    return handles


_SVG_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _finish(svg: str, fault_rows: Sequence[model.Fault]) -> str:
    """Inline-ready: no XML prologue, scales to the page, each fault band titled for hover."""
    svg = svg[svg.index("<svg"):]
    svg = _SVG_SIZE.sub(r'<svg\1 class="timeline" role="img" aria-label="run timeline" '
                        r'style="width:100%;height:auto"', svg, count=1)
    for f in fault_rows:
        end = "never healed" if f.end is None else f"{f.end:.3f}s (heal {f.heal})"
        title = html.escape(f"{f.label}: {f.start:.3f}s → {end}")
        svg = svg.replace(f'<g id="fault-band-{f.index}">',
                          f'<g id="fault-band-{f.index}" class="fault-band"><title>{title}</title>', 1)
    return svg
