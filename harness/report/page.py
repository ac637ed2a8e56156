"""``report.html`` of one run: verdicts first, then the timeline, the tables, and how to replay it.

The page is written into the run folder beside the evidence it was built from, links to that
evidence with relative links (so the folder can be moved or archived whole) and carries no
script or external resource. Built from the stored run alone: :func:`build` can be run again
at any time (``harness report RUN``) and gives the same page for the same folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import facts, store
from harness.report import markup, model, timeline
from harness.report.markup import esc

REPORT_FILE = "report.html"
#: problems listed per kind on the page (results.json holds up to durability's max_listed)
MAX_PROBLEMS_SHOWN = 50


def build(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from the stored run and return its path.

    Raises :class:`harness.store.StoreError` when ``run_dir`` is not a run folder (no readable
    run.json); a run with missing or broken evidence still gets a page that says what is missing.
    """
    view = model.load(run_dir)
    out = run_dir / REPORT_FILE
    store.atomic_write_text(out, render(view))
    return out


def render(view: model.RunView) -> str:
    started = time.perf_counter()
    drawn = timeline.draw(view.timeline)
    info = view.info
    sections = [
        _header(view),
        _verdicts(view),
        _timeline(view, drawn),
        _faults(view),
        _ordinals(view),
        _checkpoints(view),
        _run(view),
        _files(view),
        f'<p class="caption">built by harness.report in {time.perf_counter() - started:.2f}s from '
        f'{esc(view.path.name)}; rebuild: <code>harness report {esc(view.path)}</code></p>',
    ]
    return markup.page(f"{info.scenario} — {markup.WORDS[view.verdicts.status]} — {info.name}", "".join(sections))


def _header(view: model.RunView) -> str:
    info = view.info
    claim = info.settings.get("claim")
    when = f"started {esc(info.started)}" + (f", ended {esc(info.ended)}" if info.ended else ", never ended")
    return (
        f'<header><h1>{markup.badge(view.verdicts.status)} {esc(info.scenario)}</h1>'
        f'<p class="sub">run <code>{esc(info.name)}</code> · {when} · seed <code>{info.seed}</code> · '
        f'cluster {esc(info.cluster_kind)} · {view.n_ops:,} ops</p>'
        + (f'<p>{esc(str(claim).strip().splitlines()[0])}</p>' if isinstance(claim, str) and claim.strip() else "")
        + '<nav><a href="#verdicts">verdicts</a><a href="#timeline">timeline</a><a href="#faults">faults</a>'
          '<a href="#ordinals">ordinals</a><a href="#checkpoints">checkpoints</a><a href="#run">seed &amp; replay</a>'
          '<a href="#files">files</a></nav></header>'
    )


def _verdicts(view: model.RunView) -> str:
    v = view.verdicts
    out = ['<section id="verdicts"><h2>Verdicts</h2>']
    if not v.stored:
        present = [name for name in (store.RUN_FILE, facts.SCHEDULE_FILE, facts.FACTS_FILE)
                   if (view.path / name).exists()]
        out.append(
            f'<div class="banner incomplete" id="incomplete">{markup.badge("incomplete")} <b>Not judged.</b> '
            f"There is no {store.RESULTS_FILE}: the run stopped (crashed, was interrupted, or is still running) "
            f"before its checkers ran. Nothing here is a pass or a failure. Evidence there is: "
            f"{esc(', '.join(present)) or 'nothing but the folder'}; {len(view.history_files)} history files "
            f"with {view.n_ops:,} ops. <code>harness check {esc(view.path)}</code> judges it.</div>")
    else:
        out.append(f'<p id="overall">{markup.badge(v.status)} {esc(v.summary)}</p>')
        groups: Sequence[tuple[str, str, tuple[model.Status, ...]]] = (
            ("deviated", "Deviated — the system failed", ("deviated",)),
            ("undecided", "Could not decide — the run or the harness is at fault, not the system",
             ("errored", "unknown")),
            ("passed", "Valid", ("valid",)),
        )
        for cls, title, statuses in groups:
            rows = [r for r in v.checkers if r.status in statuses]
            if not rows:
                continue
            body = markup.table(
                ("checker", "verdict", "summary"),
                [(f"<b>{esc(r.name)}</b>", markup.badge(r.status),
                  esc(r.summary) + (f'<br><span class="muted">error: {esc(r.error)}</span>' if r.error else ""))
                 for r in rows],
                row_ids=[f"checker-{r.name}" for r in rows])
            out.append(f'<div class="group {cls}" id="group-{cls}"><h3>{esc(title)} ({len(rows)})</h3>{body}</div>')
        if not v.checkers:
            out.append('<p class="warn">results.json names no checker.</p>')
    if v.recheck:
        out.append(f'<p class="muted">re-checked since (<a href="{store.CHECK_RESULTS_FILE}">'
                   f"{store.CHECK_RESULTS_FILE}</a>): {esc(v.recheck)}</p>")
    if view.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in view.problems)
        out.append(f'<div class="banner problems" id="evidence-problems"><b>Missing or unreadable evidence</b>'
                   f"<ul>{items}</ul></div>")
    out.append("</section>")
    return "".join(out)


def _timeline(view: model.RunView, drawn: timeline.Drawn | None) -> str:
    tl = view.timeline
    if drawn is None:
        unreadable = any(p.startswith("history unreadable") for p in view.problems)
        why = "no op could be read (see the missing evidence above)" if unreadable else "the history holds no ops"
        return f'<section id="timeline"><h2>Timeline</h2><p class="muted">Nothing to draw: {why}.</p></section>'
    width = tl.buckets[0].width if tl.buckets else None
    notes = [f"{len(tl.faults)} faults as shaded bands (inject → healed; hatched: never healed)",
             f"{len(tl.lanes)} ordinal lanes from the availability probe"]
    if width is not None:
        notes.append(f"writes and latency per {width:g}s bucket")
    if drawn.merged > 1:
        notes.append(f"every {drawn.merged} buckets drawn as one point (rate: their mean; p99: the worst; p50: "
                     "the median of theirs)")
    if tl.marks:
        counts = {k: sum(1 for m in tl.marks if m.kind == k) for k in model.MARK_KINDS}
        notes.append("marks: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
                     + " checkpoints at their write's time (at the right edge: seen only at read-back)")
    notes.append(f"source: {tl.source}")
    return (f'<section id="timeline"><h2>Timeline</h2><figure>{drawn.svg}'
            f'<figcaption class="caption">{esc("; ".join(notes))}.</figcaption></figure></section>')


def _faults(view: model.RunView) -> str:
    tl = view.timeline
    head = '<section id="faults"><h2>Faults</h2>'
    declared = "" if view.declared_faults is None else f"{view.declared_faults} declared by the schedule; "
    if not tl.faults:
        return head + f'<p class="muted">{esc(declared)}no fault was injected.</p></section>'
    rows = []
    classes = []
    for f in tl.faults:
        expected = "; ".join(f"{o}: {why}" for o, why in sorted(f.expected_unavailable.items())) or "-"
        affected = [r for r in f.recoveries if r.affected]
        untouched = [r for r in f.recoveries if not r.affected]
        rec = [f"ordinal {r.ordinal}: " + (f"{r.recovery_s:.3f}s" if r.recovery_s is not None
                                           else '<span class="bad">never</span>')
               + (" (expected unavailable)" if r.expected_unavailable else "") for r in affected]
        if untouched:
            rec.append(f'<span class="muted">unaffected: {", ".join(str(r.ordinal) for r in untouched)}</span>')
        res = [f"ordinal {r.ordinal}: " + (f"{r.resumable_after_s:.3f}s" if r.resumable_after_s is not None
                                           else '<span class="bad">not resumed</span>')
               + (f" → step {r.resumed_step}" if r.resumed_step is not None else "") for r in f.resumes]
        lost = [f"ordinal {r.ordinal}: {markup.seconds(r.redo_s)}s since its last ack, {r.in_flight} in flight"
                for r in f.resumes]
        period = None if f.end is None else f.end - f.start
        heal = esc(f.heal) if f.heal == "ok" else f'<span class="bad">{esc(f.heal)}</span>'
        rows.append((
            str(f.index), esc(f.fault), esc(", ".join(f.targets)), markup.seconds(f.start),
            markup.seconds(f.end, none='<span class="bad">never</span>'), heal, markup.seconds(period),
            esc(expected), "<br>".join(rec) or "-", markup.seconds(f.slowest_recovery_s),
            "<br>".join(res) or "-", "<br>".join(esc(x) for x in lost) or "-",
        ))
        classes.append("fault-row")
    body = markup.table(
        ("#", "fault", "target", "injected s", "healed s", "heal", "period s", "expected unavailable",
         "recovery (heal → serving its newest ack)", "slowest s", "resumable after heal", "progress lost"),
        rows, numeric=(0, 3, 4, 6, 9), row_classes=classes, row_ids=[f"fault-{f.index}" for f in tl.faults])
    return (head + f'<p class="caption">{esc(declared)}{len(tl.faults)} injected. Times in seconds since the first '
            "op; recovery from the availability checker, resume and progress lost from the resume checker.</p>"
            + body + "</section>")


def _ident(i: facts.OrdinalIdentity | None, field: str) -> str:
    return "" if i is None else str(getattr(i, field) or "")


def _ordinals(view: model.RunView) -> str:
    head = '<section id="ordinals"><h2>Ordinals before → after</h2>'
    if view.ordinals is None:
        return head + f'<p class="muted">No {facts.FACTS_FILE}: identity was not recorded.</p></section>'
    if not view.ordinals:
        return head + '<p class="muted">No ordinal was recorded (a run without a cluster keeps no identity).</p>' \
                      "</section>"

    def cell(row: model.OrdinalRow, field: str) -> str:
        b, a = _ident(row.before, field), _ident(row.after, field)
        if row.before is None or row.after is None or b == a:
            return esc(a or b or "-")
        cls = "muted" if field in ("pod", "node") else "bad"  # pods and nodes may move; the rest must not
        return f'<span class="{cls}">{esc(b or "-")} → {esc(a or "-")}</span>'

    rows = []
    for r in view.ordinals:
        stamp = "-" if r.stamp is None else f"{r.stamp.volume_id} (ordinal {r.stamp.ordinal}, {r.stamp.claim})"
        stamp_ok = r.stamp is None or (r.stamp.ordinal == r.ordinal and (
            r.after is None or (r.after.claim == r.stamp.claim
                                and (r.after.volume_id is None or r.after.volume_id == r.stamp.volume_id))))
        if r.before is None and r.after is None:
            change = '<span class="muted">volume only (no cluster identity recorded)</span>'
        elif r.before is None:
            change = "new after the run"
        elif r.after is None:
            change = '<span class="warn">gone after the run</span>'
        else:
            significant = [c for c in r.changed if c not in ("pod", "node")]
            change = (f'<span class="bad">{esc(", ".join(significant))}</span>' if significant
                      else "unchanged" + (f' <span class="muted">(moved: {esc(", ".join(r.changed))})</span>'
                                          if r.changed else ""))
        rows.append((str(r.ordinal), cell(r, "pod"), cell(r, "node"), cell(r, "claim"), cell(r, "claim_uid"),
                     cell(r, "volume"), cell(r, "volume_id"),
                     esc(stamp) if stamp_ok else f'<span class="bad">{esc(stamp)}</span>', change))
    body = markup.table(("ordinal", "pod", "node", "claim", "claim uid", "PV", "volume id", "volume stamp", "change"),
                        rows, row_ids=[f"ordinal-{r.ordinal}" for r in view.ordinals])
    return head + body + "</section>"


def _checkpoints(view: model.RunView) -> str:
    head = '<section id="checkpoints"><h2>Checkpoints</h2>'
    cp = view.checkpoints
    if cp is None:
        why = (f"no {facts.FACTS_FILE}: the volumes were never read back" if view.ordinals is None
               else "the durability checker did not run or crashed")
        return head + f'<p class="muted">No durability figures: {esc(why)}.</p></section>'
    cols = ("ordinal", "acknowledged", "present (valid)", "lost", "recovered", "torn", "unexpected", "retired",
            "newest acked step", "latest valid step")

    def bad(n: int) -> str:
        return f'<span class="bad">{n:,}</span>' if n else "0"

    rows = [(esc(r.ordinal), f"{r.acknowledged:,}", f"{r.present:,}", bad(r.lost), f"{r.recovered:,}", bad(r.torn),
             bad(r.unexpected), f"{r.retired:,}", markup.number(r.newest_acknowledged),
             markup.number(r.latest_valid)) for r in cp.rows]
    t = cp.totals
    rows.append(("all", f"{t.get('acknowledged', 0):,}", f"{t.get('acknowledged_present', 0):,} acked",
                 bad(t.get("lost", 0)), f"{t.get('recovered', 0):,}", bad(t.get("torn", 0)),
                 bad(t.get("unexpected", 0)), f"{t.get('retired_by_retention', 0):,}", "", ""))
    body = markup.table(cols, rows, numeric=range(1, 10), row_classes=[""] * len(cp.rows) + ["total"])
    attempts = (f"{t.get('attempted', 0):,} write attempts: {t.get('acknowledged', 0):,} acknowledged, "
                f"{t.get('failed', 0):,} failed, {t.get('indeterminate', 0):,} indeterminate; "
                f"{t.get('excused', 0):,} excused by the PVC retention policy")
    listed = []
    for kind in (*model.MARK_KINDS, "recovered", "excused"):
        mine = [p for p in cp.problems if p.kind == kind]
        if not mine:
            continue
        more = len(mine) - MAX_PROBLEMS_SHOWN + cp.omitted.get(kind, 0)
        items = "".join(f"<li>ordinal {p.ordinal} step {markup.number(p.step)}"
                        + (f" <code>{esc(p.name)}</code>" if p.name else "") + f": {esc(p.reason)}</li>"
                        for p in mine[:MAX_PROBLEMS_SHOWN])
        tail = f"<li class=muted>… and {more:,} more (see results.json)</li>" if more > 0 else ""
        opened = " open" if kind in model.MARK_KINDS else ""
        listed.append(f'<details{opened} id="problems-{kind}"><summary>{len(mine) + cp.omitted.get(kind, 0):,} '
                      f"{kind}</summary><ul>{items}{tail}</ul></details>")
    return head + f'<p class="caption">{esc(attempts)}.</p>' + body + "".join(listed) + "</section>"


def _run(view: model.RunView) -> str:
    info = view.info
    kv = [("scenario", esc(info.scenario)), ("seed", f"<code>{info.seed}</code>"),
          ("cluster", esc(info.cluster_kind)), ("started", esc(info.started)), ("ended", esc(info.ended or "never")),
          ("ops", f"{view.n_ops:,}: " + esc(", ".join(f"{k} {n:,}" for k, n in view.op_counts.items())))]
    out = ['<section id="run"><h2>Seed, replay, settings</h2>',
           f'<p>Replay (same seed, same fault schedule):</p><pre id="replay"><code>{esc(view.replay)}</code></pre>',
           markup.table(("", ""), [(f"<b>{k}</b>", v) for k, v in kv], cls="kv")]
    schedule = _schedule(view.path)
    if schedule:
        out.append("<h3>Schedule (schedule.json)</h3>" + markup.table(
            ("#", "delay s", "fault", "target"),
            [(str(i), esc(step.get("delay_s")), esc(step.get("fault")), esc(step.get("target")))
             for i, step in enumerate(schedule)],
            numeric=(0, 1)))
    for title, data in (("Settings", info.settings), ("Expectations", info.expectations),
                        ("Versions", info.versions)):
        out.append(f"<details><summary>{title}</summary><pre>{esc(json.dumps(data, indent=2, sort_keys=True))}"
                   "</pre></details>")
    out.append("</section>")
    return "".join(out)


def _schedule(run_dir: Path) -> list[Mapping[str, object]]:
    try:
        raw = json.loads((run_dir / facts.SCHEDULE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []


def _files(view: model.RunView) -> str:
    def link(f: model.FileLink) -> str:
        return f'<a href="{esc(f.href)}">{esc(f.label)}</a>' + (f' <span class="muted">{markup.size(f.size)}</span>'
                                                                if f.size is not None else "")

    out = ['<section id="files"><h2>Evidence</h2><ul>']
    out.append("<li>history: " + (", ".join(link(f) for f in view.history_files) or "none") + "</li>")
    out.append("<li>locust's own report: " + (f'<a href="{esc(view.locust_html)}" id="locust-html">'
                                            f"{esc(view.locust_html)}</a>" if view.locust_html
                                            else '<span class="muted">no load/locust.html</span>') + "</li>")
    out.append("<li>cluster logs: " + (f'<a href="{esc(view.cluster_logs)}" id="cluster-logs">'
                                      f"{esc(view.cluster_logs)}</a>" if view.cluster_logs
                                      else f'<span class="muted">no {model.CLUSTER_LOGS_DIR}/ folder</span>')
               + "</li>")
    others = [f for f in view.files if f.href != REPORT_FILE]
    out.append("<li>the run folder: " + ", ".join(link(f) for f in others) + "</li></ul></section>")
    return "".join(out)
