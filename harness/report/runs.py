"""``reports/index.html``: every stored run in one table, and each scenario's figures over time.

Built from the run folders alone, reading each run's run.json and results.json (never its
history, so an index of many long runs stays quick). A run without results.json is listed as
*incomplete* — with what its history says so far (acknowledged writes, faults injected), from
one lean scan — and a folder that is not a run at all (no readable run.json) is listed as
unreadable with the reason: the index never fails because one run is broken.

Per scenario, a small chart shows the key figures run after run (acknowledged checkpoints,
throughput, slowest recovery), each point coloured by that run's verdict, so a regression is
a visible step rather than a number in an old folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import history, ops, store
from harness.report import markup, model, page, scan
from harness.report.markup import esc

INDEX_FILE = "index.html"
#: figures drawn per scenario: (attribute of RunSummary, axis title)
TREND_FIGURES: tuple[tuple[str, str], ...] = (
    ("acks", "acknowledged checkpoints"),
    ("per_s", "throughput, checkpoints/s"),
    ("slowest_recovery_s", "slowest recovery, s"),
)
STATUS_COLORS: Mapping[str, str] = {"valid": "#1e7b3c", "deviated": "#b3261e", "unknown": "#8a5a00",
                                    "errored": "#6d4c9f", "incomplete": "#9aa0a6"}


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of the index. ``status`` None: the folder could not be read as a run (see ``problem``)."""

    name: str
    status: model.Status | None
    summary: str
    scenario: str | None = None
    started: str | None = None
    seed: int | None = None
    cluster: str | None = None
    acks: int | None = None
    faults: int | None = None
    declared_faults: int | None = None
    slowest_recovery_s: float | None = None
    per_s: float | None = None
    mb_per_s: float | None = None
    report: str | None = None
    problem: str | None = None


def _checker(results: Mapping[str, object], name: str) -> Mapping[str, object]:
    checkers = results.get("checkers")
    entry = checkers.get(name) if isinstance(checkers, dict) else None
    details = entry.get("details") if isinstance(entry, dict) else None
    return details if isinstance(details, dict) else {}


def _num(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def summarize(run_dir: Path) -> RunSummary:
    """The index row of one folder; never raises for a broken run (it says what is wrong)."""
    name = run_dir.name
    try:
        run = store.open_run(run_dir)
    except store.StoreError as exc:
        return RunSummary(name, None, "not a readable run folder", problem=str(exc))
    info = run.info
    report = f"{name}/{page.REPORT_FILE}" if (run_dir / page.REPORT_FILE).is_file() else None
    base = RunSummary(name, "incomplete", "", scenario=info.scenario, started=info.started, seed=info.seed,
                      cluster=info.cluster_kind, report=report)
    try:
        results = run.results()
    except store.StoreError as exc:
        return dataclasses.replace(base, summary="results.json unreadable", problem=str(exc))
    declared = _declared(run_dir)
    if results is None:
        return _incomplete(run_dir, dataclasses.replace(base, declared_faults=declared))
    verdicts = model.read_verdicts(results, None)
    not_valid = [f"{c.name}: {c.summary}" for c in verdicts.checkers if c.status != "valid"]
    summary = "; ".join(not_valid) or f"all {len(verdicts.checkers)} checkers valid"
    overall = _checker(results, "perf").get("overall")
    overall = overall if isinstance(overall, dict) else {}
    faults = _checker(results, "faults")
    recoveries = _checker(results, "availability").get("recoveries")
    times = [t for r in recoveries if isinstance(r, dict) and (t := _num(r.get("recovery_s"))) is not None] \
        if isinstance(recoveries, list) else []
    acks = _int(overall.get("acknowledged"))
    if acks is None:
        counts = _checker(results, "durability").get("counts")
        acks = _int(counts.get("acknowledged")) if isinstance(counts, dict) else None
    return dataclasses.replace(
        base, status=verdicts.status, summary=summary, acks=acks,
        faults=_int(faults.get("took_effect")), declared_faults=_int(faults.get("declared")) or declared,
        slowest_recovery_s=max(times) if times else None, per_s=_num(overall.get("checkpoints_per_s")),
        mb_per_s=_num(overall.get("mb_per_s")),
    )


def _declared(run_dir: Path) -> int | None:
    try:
        raw = json.loads((run_dir / "schedule.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return len(raw) if isinstance(raw, list) else None


def _incomplete(run_dir: Path, base: RunSummary) -> RunSummary:
    """An unjudged run: what its history says so far (never a verdict)."""
    try:
        sc = scan.scan_run(run_dir)
    except history.HistoryError as exc:
        return dataclasses.replace(base, summary="not judged (no results.json); history unreadable", problem=str(exc))
    acks = sc.counts.get(f"{ops.WRITE} ok", 0)
    faults = sc.counts.get(f"{ops.FAULT_START} ok", 0)
    return dataclasses.replace(base, acks=acks, faults=faults,
                               summary=f"not judged (no results.json): {len(sc.times):,} ops recorded")


def collect(reports_dir: Path) -> list[RunSummary]:
    """Every run folder under ``reports_dir`` (not ``latest``, not hidden), newest first."""
    if not reports_dir.is_dir():
        return []
    rows = [summarize(d) for d in sorted(reports_dir.iterdir())
            if d.is_dir() and not d.is_symlink() and not d.name.startswith(".") and d.name != store.LATEST]
    return sorted(rows, key=lambda r: (r.started or "", r.name), reverse=True)


def build_index(reports_dir: Path) -> Path:
    """Write ``reports_dir/index.html`` and return its path."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(reports_dir)
    out = reports_dir / INDEX_FILE
    store.atomic_write_text(out, render(rows))
    return out


def render(rows: Sequence[RunSummary]) -> str:
    scenarios = sorted({r.scenario for r in rows if r.scenario is not None})
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    counts = {s: sum(1 for r in rows if r.status == s) for s in markup.WORDS}
    tally = ", ".join(f"{n} {markup.WORDS[s]}" for s, n in counts.items() if n)
    unreadable = sum(1 for r in rows if r.status is None)
    if unreadable:
        tally += f", {unreadable} unreadable"
    parts = [f"<header><h1>Runs</h1><p class=\"sub\">{len(rows)} runs of {len(scenarios)} scenarios"
             f"{': ' + esc(tally) if tally else ''} · built {now} · rebuild: <code>harness report --index</code>"
             "</p><nav><a href=\"#runs\">all runs</a><a href=\"#trends\">trends per scenario</a></nav></header>"]
    parts.append('<section id="runs"><h2>All runs, newest first</h2>')
    if rows:
        parts.append(markup.table(
            ("verdict", "scenario", "started", "seed", "cluster", "acked", "faults", "slowest recovery s",
             "checkpoints/s", "MB/s", "report", "summary"),
            [_row(r) for r in rows], numeric=(5, 7, 8, 9), row_ids=[f"run-{r.name}" for r in rows],
            row_classes=[f"run st-row-{r.status or 'unreadable'}" for r in rows]))
    else:
        parts.append('<p class="muted">No run folders yet: <code>make run</code> makes some.</p>')
    parts.append("</section>")
    parts.append('<section id="trends"><h2>Trends per scenario</h2>'
                 '<p class="caption">Oldest run left, newest right; each point coloured by its run\'s verdict '
                 "(green valid, red INVALID, amber unknown, purple checker crashed, grey incomplete).</p>")
    for scenario in scenarios:
        mine = sorted((r for r in rows if r.scenario == scenario), key=lambda r: (r.started or "", r.name))
        latest = mine[-1]
        badge = markup.badge(latest.status) if latest.status is not None else ""
        parts.append(f'<div class="trend-block" id="trend-{esc(scenario)}"><h3>{esc(scenario)} '
                     f'<span class="muted">{len(mine)} run{"s" if len(mine) != 1 else ""}; latest</span> '
                     f'{badge}</h3>{_trend(scenario, mine)}</div>')
    parts.append("</section>")
    return markup.page("harness runs", "".join(parts))


def _row(r: RunSummary) -> tuple[str, ...]:
    if r.status is None:
        return ('<span class="badge st-incomplete">unreadable</span>', "", "", "", "", "", "", "", "", "",
                f'<a href="{esc(r.name)}/">{esc(r.name)}/</a>', esc(r.problem or r.summary))
    report = (f'<a href="{esc(r.report)}">report</a>' if r.report is not None
              else f'<span style="white-space:nowrap"><a href="{esc(r.name)}/" title="no report.html yet: '
                   f'harness report reports/{esc(r.name)}">folder</a> <span class="muted">(no report)</span></span>')
    faults = "-" if r.faults is None and r.declared_faults is None else \
        f"{markup.number(r.faults)}" + (f"/{r.declared_faults}" if r.declared_faults is not None else "")
    summary = esc(r.summary) + (f'<br><span class="warn">{esc(r.problem)}</span>' if r.problem else "")
    started = (r.started or "").replace("T", " ")
    started = started[:19] + "Z" if len(started) > 19 else started
    return (markup.badge(r.status), esc(r.scenario), f'<span title="{esc(r.started)}">{esc(started)}</span>',
            esc(r.seed), esc(r.cluster),
            markup.number(r.acks), faults, markup.seconds(r.slowest_recovery_s),
            "-" if r.per_s is None else f"{r.per_s:.1f}", "-" if r.mb_per_s is None else f"{r.mb_per_s:.2f}",
            report, summary)


def _trend(scenario: str, runs: Sequence[RunSummary]) -> str:
    """Small multiples of the scenario's figures over its runs, as inline SVG (matplotlib, as the timeline)."""
    import matplotlib as mpl
    from matplotlib import figure

    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "harness-index", "font.size": 7.0,
                         "axes.spines.top": False, "axes.spines.right": False}):
        fig = figure.Figure(figsize=(10.5, 1.55))
        xs = list(range(len(runs)))
        for i, (attr, title) in enumerate(TREND_FIGURES):
            ax = fig.add_axes((0.05 + i * 0.325, 0.2, 0.27, 0.62))
            values = [getattr(r, attr) for r in runs]
            ys = [math.nan if v is None else float(v) for v in values]
            ax.plot(xs, ys, color="#9aa0a6", linewidth=0.8, zorder=1)
            ax.scatter(xs, ys, s=14, zorder=2, c=[STATUS_COLORS.get(r.status or "", "#9aa0a6") for r in runs])
            ax.set_title(title, fontsize=7, loc="left")
            ax.set_xticks(xs if len(xs) <= 12 else xs[:: max(1, len(xs) // 12)])
            ax.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))
            ax.set_ylim(bottom=0)
            if all(v is None for v in values):
                ax.text(0.5, 0.5, "no figure", transform=ax.transAxes, ha="center", va="center", color="#777777")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    return svg.replace("<svg ", f'<svg class="trend" id="trend-svg-{esc(scenario)}" ', 1)
