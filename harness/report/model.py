"""What a run report shows, read from a stored run folder alone.

Everything the page and its timeline draw is gathered here into frozen values, so rendering
is a plain function of them and the tests can look at the figures without parsing HTML. The
sources, in order of trust:

* ``results.json`` — the live run's verdicts and the checkers' details (fault periods,
  unavailability windows, recoveries, resumes, perf buckets, durability counts and problems);
* the history — the clock (``t0`` is the first op, as every checker takes it), the probe's
  coverage per ordinal, and the time of each op a durability problem names;
* ``facts.json`` — each ordinal's pod, node, claim, PV and volume stamp before and after;
* ``run.json`` / ``schedule.json`` — seed, settings, cluster, the declared faults.

A run that stopped before it was judged has no results.json: it is *incomplete*, never shown
as a pass or a failure. Its timeline and tables are then computed from the history (and the
facts, when there are any) by the same pure checkers, whose verdicts are deliberately dropped —
a report is not a judge; ``harness check`` is. Any piece of evidence that is missing or
unreadable is named in :attr:`RunView.problems` and the rest is still shown.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, TypeAlias

from harness import facts, history, store
from harness.checkers import availability, durability, expect, faults, perf, resume, verdict
from harness.report import scan

#: what the page says about the run (or one checker): the system failed is kept apart from
#: "could not decide", and both from a run that was never judged
Status: TypeAlias = Literal["valid", "deviated", "unknown", "errored", "incomplete"]
MarkKind: TypeAlias = Literal["lost", "torn", "unexpected"]
MARK_KINDS: tuple[MarkKind, ...] = ("lost", "torn", "unexpected")
SCENARIOS_DIR = "scenarios"
CLUSTER_LOGS_DIR = "cluster-logs"
LOCUST_HTML = Path("load") / "locust.html"
#: run.json settings keys that name the pytest node a run came from (first found wins)
NODEID_KEYS = ("pytest_nodeid", "nodeid", "node_id")


@dataclasses.dataclass(frozen=True, slots=True)
class CheckerRow:
    name: str
    status: Status
    summary: str
    #: the checker crashed: its error line (the traceback stays in results.json)
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Verdicts:
    """The run's verdicts; ``stored`` False when there is no results.json (an incomplete run)."""

    stored: bool
    status: Status
    summary: str
    checkers: tuple[CheckerRow, ...] = ()
    #: ``harness check --write``'s later verdict (results.check.json), if any
    recheck: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    t: float
    width: float
    ok: int
    unacked: int
    per_s: float
    p50_s: float | None
    p99_s: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Recovery:
    ordinal: int
    recovery_s: float | None
    affected: bool
    expected_unavailable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Resume:
    ordinal: int
    resumable_after_s: float | None
    redo_s: float | None
    in_flight: int
    resumed_step: int | None
    required_step: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One fault period (times in seconds since ``t0``), with what followed its heal."""

    index: int
    fault: str
    targets: tuple[str, ...]
    start: float
    end: float | None
    heal: str
    expected_unavailable: Mapping[str, str]
    recoveries: tuple[Recovery, ...] = ()
    resumes: tuple[Resume, ...] = ()

    @property
    def label(self) -> str:
        return f"#{self.index} {self.fault} {' '.join(self.targets)}".strip()

    @property
    def slowest_recovery_s(self) -> float | None:
        times = [r.recovery_s for r in self.recoveries if r.recovery_s is not None]
        return max(times) if times else None


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    ordinal: int
    start: float
    end: float | None
    expected: bool
    reasons: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Lane:
    """One ordinal's availability: probed from ``first`` to ``last`` (None: never probed)."""

    ordinal: int
    first: float | None
    last: float | None
    samples: int
    windows: tuple[Window, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Mark:
    """A lost, torn or unexpected checkpoint; ``t`` is its write's time, None when no op names it
    (then it was only seen at read-back, after the run)."""

    kind: MarkKind
    ordinal: int
    step: int | None
    t: float | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Timeline:
    t0: float | None
    span: float
    buckets: tuple[Bucket, ...]
    lanes: tuple[Lane, ...]
    faults: tuple[Fault, ...]
    marks: tuple[Mark, ...]
    #: where the figures came from (results.json, or which parts the report computed)
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class OrdinalRow:
    ordinal: int
    before: facts.OrdinalIdentity | None
    after: facts.OrdinalIdentity | None
    stamp: facts.IdentityStamp | None
    #: fields of OrdinalIdentity that differ before → after
    changed: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointRow:
    ordinal: str
    acknowledged: int
    present: int
    lost: int
    recovered: int
    torn: int
    unexpected: int
    retired: int
    newest_acknowledged: int | None
    latest_valid: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    ordinal: int
    step: int | None
    reason: str
    name: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoints:
    rows: tuple[CheckpointRow, ...]
    totals: Mapping[str, int]
    problems: tuple[Problem, ...]
    #: problems counted but not listed in results.json (durability's max_listed)
    omitted: Mapping[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class FileLink:
    href: str
    label: str
    size: int | None
    is_dir: bool


@dataclasses.dataclass(frozen=True, slots=True)
class RunView:
    path: Path
    info: store.RunInfo
    verdicts: Verdicts
    timeline: Timeline
    ordinals: tuple[OrdinalRow, ...] | None
    checkpoints: Checkpoints | None
    replay: str
    history_files: tuple[FileLink, ...]
    files: tuple[FileLink, ...]
    locust_html: str | None
    cluster_logs: str | None
    n_ops: int
    op_counts: Mapping[str, int]
    declared_faults: int | None
    #: missing or unreadable evidence, one line each
    problems: tuple[str, ...]


# --- reading JSON of unknown shape ---------------------------------------------------------------

def _map(raw: object) -> Mapping[str, object]:
    return raw if isinstance(raw, dict) else {}


def _list(raw: object) -> list[object]:
    return raw if isinstance(raw, list) else []


def _num(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _str(raw: object, default: str = "") -> str:
    return raw if isinstance(raw, str) else default


# --- the pieces ------------------------------------------------------------------------------------

def status_of(valid: object, details: Mapping[str, object] | None = None, summary: str = "") -> Status:
    """A stored validity as the page's word: crashed checkers are "errored", not merely unknown."""
    if valid is True:
        return "valid"
    if valid is False:
        return "deviated"
    if (details is not None and "traceback" in details) or summary.startswith("checker crashed"):
        return "errored"
    return "unknown"


def read_verdicts(results: Mapping[str, object] | None, recheck: Mapping[str, object] | None) -> Verdicts:
    recheck_line = None
    if recheck is not None:
        recheck_line = f"{verdict.describe(_validity(recheck.get('valid')))}: {_str(recheck.get('summary'))}"
    if results is None:
        return Verdicts(stored=False, status="incomplete",
                        summary="not judged: the run stopped before its checkers wrote results.json",
                        recheck=recheck_line)
    rows: list[CheckerRow] = []
    for name, raw in _map(results.get("checkers")).items():
        v = _map(raw)
        details = _map(v.get("details"))
        summary = _str(v.get("summary"))
        status = status_of(v.get("valid"), details, summary)
        error = _str(details.get("error")) or None if status == "errored" else None
        rows.append(CheckerRow(name, status, summary, error))
    overall = status_of(results.get("valid"))
    if overall == "unknown" and any(r.status == "errored" for r in rows):
        overall = "errored"
    return Verdicts(True, overall, _str(results.get("summary")), tuple(rows), recheck_line)


def _validity(raw: object) -> verdict.Validity:
    return raw if raw is True or raw is False else verdict.UNKNOWN


def _details(results: Mapping[str, object] | None, name: str) -> Mapping[str, object] | None:
    """A checker's stored details, or None when it did not run (or crashed: its details are the error)."""
    if results is None:
        return None
    entry = _map(_map(results.get("checkers")).get(name))
    details = entry.get("details")
    if not isinstance(details, dict) or "traceback" in details:
        return None
    return details


def _computed(name: str, ops_: Sequence[history.Op], run_facts: facts.RunFacts,
              exp: expect.Expectations, problems: list[str]) -> Mapping[str, object] | None:
    """A checker's details computed from the evidence (its verdict is dropped: not ours to give)."""
    checks = {"perf": perf.check, "availability": availability.check, "resume": resume.check,
              "durability": durability.check}
    try:
        return checks[name](ops_, run_facts, exp).details
    except Exception as exc:  # the report still renders what else there is
        problems.append(f"{name} figures could not be computed from the history: {type(exc).__name__}: {exc}")
        return None


def _buckets(details: Mapping[str, object] | None) -> tuple[Bucket, ...]:
    if details is None:
        return ()
    width = _num(details.get("bucket_s")) or 1.0
    out = []
    for raw in _list(details.get("series")):
        b = _map(raw)
        t = _num(b.get("t"))
        if t is None:
            continue
        ok = _int(b.get("ok")) or 0
        out.append(Bucket(t=t, width=width, ok=ok, unacked=(_int(b.get("fail")) or 0) + (_int(b.get("info")) or 0),
                          per_s=_num(b.get("checkpoints_per_s")) or ok / width,
                          p50_s=_num(b.get("latency_p50_s")), p99_s=_num(b.get("latency_p99_s"))))
    return tuple(out)


def _faults(avail: Mapping[str, object] | None, perf_details: Mapping[str, object] | None,
            resumes: Mapping[str, object] | None, ops_: Sequence[history.Op] | None,
            t0: float | None) -> tuple[Fault, ...]:
    """Fault periods as the checkers stored them (else from the full ops, when the report read them)."""
    if avail is not None or perf_details is not None:
        raw_faults = _list((avail or {}).get("faults")) or _list((perf_details or {}).get("faults"))
    elif ops_ and t0 is not None:
        raw_faults = [p.to_json(t0) for p in faults.fault_periods(ops_)]
    else:
        raw_faults = []
    recoveries: dict[int, list[Recovery]] = collections.defaultdict(list)
    for raw in _list((avail or {}).get("recoveries")):
        r = _map(raw)
        index, ordinal = _int(r.get("fault")), _int(r.get("ordinal"))
        if index is None or ordinal is None:
            continue
        recoveries[index].append(Recovery(ordinal, _num(r.get("recovery_s")), r.get("affected") is True,
                                          r.get("expected_unavailable") is True))
    after: dict[int, list[Resume]] = collections.defaultdict(list)
    for raw in _list((resumes or {}).get("resumes")):
        r = _map(raw)
        index, ordinal = _int(r.get("after_fault")), _int(r.get("ordinal"))
        if index is None or ordinal is None:
            continue  # the final resume belongs to no fault
        after[index].append(Resume(ordinal, _num(r.get("resumable_after_s")), _num(r.get("redo_s")),
                                   _int(r.get("in_flight_at_fault")) or 0, _int(r.get("resumed_step")),
                                   _int(r.get("required_step"))))
    out = []
    for i, raw in enumerate(raw_faults):
        f = _map(raw)
        start = _num(f.get("start"))
        if start is None:
            continue
        out.append(Fault(
            index=i, fault=_str(f.get("fault"), "?"), targets=tuple(str(t) for t in _list(f.get("targets"))),
            start=start, end=_num(f.get("end")), heal=_str(f.get("heal"), "?"),
            expected_unavailable={str(k): str(v) for k, v in _map(f.get("expected_unavailable")).items()},
            recoveries=tuple(sorted(recoveries.get(i, []), key=lambda r: r.ordinal)),
            resumes=tuple(sorted(after.get(i, []), key=lambda r: r.ordinal)),
        ))
    return tuple(out)


def _lanes(avail: Mapping[str, object] | None, probes: Mapping[int, scan.Probed], t0: float | None,
           known_ordinals: set[int]) -> tuple[Lane, ...]:
    """Each ordinal's probed range (from the history) and its unavailability windows."""
    base = t0 or 0.0
    windows: dict[int, list[Window]] = collections.defaultdict(list)
    for raw in _list((avail or {}).get("windows")):
        w = _map(raw)
        ordinal, start = _int(w.get("ordinal")), _num(w.get("start"))
        if ordinal is None or start is None:
            continue
        windows[ordinal].append(Window(ordinal, start, _num(w.get("end")), w.get("expected") is True,
                                       tuple(str(r) for r in _list(w.get("reasons")))))
    out = []
    for o in sorted(set(probes) | set(windows) | known_ordinals):
        p = probes.get(o)
        out.append(Lane(o, None if p is None else p.first - base, None if p is None else p.last - base,
                        0 if p is None else p.samples, tuple(windows.get(o, ()))))
    return tuple(out)


def _marks(dur: Mapping[str, object] | None, times: Sequence[float], t0: float | None) -> tuple[Mark, ...]:
    out = []
    for kind in MARK_KINDS:
        for raw in _list((dur or {}).get(kind)):
            p = _map(raw)
            ordinal = _int(p.get("ordinal"))
            if ordinal is None:
                continue
            op = _int(p.get("op"))
            t = times[op] - t0 if op is not None and t0 is not None and 0 <= op < len(times) else None
            out.append(Mark(kind, ordinal, _int(p.get("step")), t, _str(p.get("reason"))))
    return tuple(out)


def _checkpoints(dur: Mapping[str, object] | None) -> Checkpoints | None:
    if dur is None:
        return None
    rows = []
    for key, raw in sorted(_map(dur.get("ordinals")).items(), key=lambda kv: (len(kv[0]), kv[0])):
        s = _map(raw)
        rows.append(CheckpointRow(
            ordinal=key, acknowledged=_int(s.get("acknowledged")) or 0, present=_int(s.get("present_valid")) or 0,
            lost=_int(s.get("lost")) or 0, recovered=_int(s.get("recovered")) or 0, torn=_int(s.get("torn")) or 0,
            unexpected=_int(s.get("unexpected")) or 0, retired=_int(s.get("retired")) or 0,
            newest_acknowledged=_int(s.get("newest_acknowledged")), latest_valid=_int(s.get("latest_valid_step")),
        ))
    problems = []
    for kind in (*MARK_KINDS, "recovered", "excused"):
        for raw in _list(dur.get(kind)):
            p = _map(raw)
            ordinal = _int(p.get("ordinal"))
            if ordinal is not None:
                problems.append(Problem(kind, ordinal, _int(p.get("step")), _str(p.get("reason")),
                                        _str(p.get("name")) or None))
    totals = {str(k): v for k, v in _map(dur.get("counts")).items() if isinstance(v, int)}
    omitted = {str(k): v for k, v in _map(dur.get("omitted")).items() if isinstance(v, int)}
    return Checkpoints(tuple(rows), totals, tuple(problems), omitted)


def _ordinals(run_facts: facts.RunFacts | None) -> tuple[OrdinalRow, ...] | None:
    if run_facts is None:
        return None
    before = {i.ordinal: i for i in run_facts.identity_before}
    after = {i.ordinal: i for i in run_facts.identity_after}
    stamps = {v.ordinal: v.stamp for v in run_facts.volumes}
    rows = []
    for o in sorted(set(before) | set(after) | set(stamps)):
        b, a = before.get(o), after.get(o)
        changed: tuple[str, ...] = ()
        if b is not None and a is not None:
            changed = tuple(f.name for f in dataclasses.fields(facts.OrdinalIdentity)
                            if getattr(b, f.name) != getattr(a, f.name))
        rows.append(OrdinalRow(o, b, a, stamps.get(o), changed))
    return tuple(rows)


def replay_command(path: Path, info: store.RunInfo) -> str:
    """The command that replays this run: its pytest node (when run.json names it) or its
    scenario file, with its seed (a seed regenerates the same fault schedule)."""
    extra = " --cluster existing --harness-kubeconfig PATH --harness-context NAME" \
        if info.cluster_kind == "existing" else ""
    for key in NODEID_KEYS:
        node = info.settings.get(key)
        if isinstance(node, str) and node:
            return f"pytest '{node}' -s --seed={info.seed}{extra}"
    found = scenario_file(path, info.scenario)
    target = found if found is not None else f"{SCENARIOS_DIR}/  # scenario {info.scenario!r}: file not found"
    return f"pytest {target} -s --seed={info.seed}{extra}" if found else f"pytest {target}"


def scenario_file(run_dir: Path, scenario: str) -> str | None:
    """``scenarios/test_x.py`` defining ``scenario``: the file naming it literally (``name="x"``),
    else the longest ``test_<prefix>.py`` whose name starts the scenario's (``container-kill-kill``
    → test_container_kill.py). Looked for beside the reports folder, then in the working folder."""
    for base in (run_dir.resolve().parent.parent, Path.cwd()):
        folder = base / SCENARIOS_DIR
        if not folder.is_dir():
            continue
        files = sorted(folder.glob("test_*.py"))
        literal = re.compile(r"""name\s*=\s*["']""" + re.escape(scenario) + r"""["']""")
        for f in files:
            try:
                if literal.search(f.read_text(encoding="utf-8")):
                    return f"{SCENARIOS_DIR}/{f.name}"
            except OSError:
                continue
        best = None
        for f in files:
            stem = f.stem.removeprefix("test_").replace("_", "-")
            if (scenario == stem or scenario.startswith(stem + "-")) and (best is None or len(f.stem) > len(best.stem)):
                best = f
        if best is not None:
            return f"{SCENARIOS_DIR}/{best.name}"
    return None


def _links(path: Path) -> tuple[tuple[FileLink, ...], tuple[FileLink, ...]]:
    """(history files, every other top-level entry of the run folder), as relative links."""
    hist = []
    hdir = path / history.HISTORY_DIR
    if hdir.is_dir():
        for f in sorted(hdir.glob("*.jsonl")):
            hist.append(FileLink(f"{history.HISTORY_DIR}/{f.name}", f.name, _size(f), False))
    others = []
    for f in sorted(path.iterdir()):
        if f.name.startswith(".") or f.name == history.HISTORY_DIR:
            continue
        if f.is_dir():
            others.append(FileLink(f.name + "/", f.name + "/", None, True))
            others.extend(FileLink(f"{f.name}/{g.name}", f"{f.name}/{g.name}", _size(g), g.is_dir())
                          for g in sorted(f.iterdir()) if g.is_file() and f.name != CLUSTER_LOGS_DIR)
        else:
            others.append(FileLink(f.name, f.name, _size(f), False))
    return tuple(hist), tuple(others)


def _size(f: Path) -> int | None:
    try:
        return f.stat().st_size
    except OSError:
        return None


def _read_json(path: Path, problems: list[str]) -> Mapping[str, object] | None:
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} unreadable: {exc}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return raw


def load(run_dir: Path) -> RunView:
    """Everything the report shows about the run at ``run_dir``.

    Raises :class:`harness.store.StoreError` only when ``run_dir`` is not a run folder at all
    (no readable run.json); every other gap is listed in ``problems`` and shown.
    """
    run = store.open_run(run_dir)
    problems: list[str] = []
    results = _read_json(run_dir / store.RESULTS_FILE, problems)
    recheck = _read_json(run_dir / store.CHECK_RESULTS_FILE, problems)
    run_facts: facts.RunFacts | None = None
    if (run_dir / facts.FACTS_FILE).exists():
        try:
            run_facts = run.facts()
        except store.StoreError as exc:
            problems.append(f"facts unreadable: {exc}")
    else:
        problems.append(f"no {facts.FACTS_FILE}: the volumes were never read back (no identity, no checkpoints "
                        "found on the volumes)")
    try:
        exp = expect.Expectations.from_dict(run.info.expectations)
    except ValueError as exc:
        problems.append(f"run.json expectations unreadable ({exc}); defaults used for computed figures")
        exp = expect.Expectations()

    checkers_run = _map((results or {}).get("checkers"))
    #: checkers whose figures the report computes itself: those that did not run (never those
    #: that crashed — their error is among the verdicts); durability only when facts exist
    to_compute = [name for name in ("perf", "availability", "durability")
                  if name not in checkers_run and (name != "durability" or run_facts is not None)]
    if results is None:
        to_compute.append("resume")
    full: list[history.Op] | None = None
    sc: scan.Scan | None = None
    try:
        if to_compute:
            full = run.history()
            sc = scan.from_ops(full)
        else:
            sc = scan.scan_run(run_dir)
    except (store.StoreError, history.HistoryError) as exc:
        problems.append(f"history unreadable: {exc}")
    times: Sequence[float] = sc.times if sc is not None else ()
    if sc is not None and not times:
        problems.append("the history holds no ops")

    computed: list[str] = []
    found: dict[str, Mapping[str, object] | None] = {name: _details(results, name) for name in checkers_run}
    for name in to_compute:
        if full and (name != "resume" or (sc is not None and sc.has_resume)):
            computed.append(name)
            found[name] = _computed(name, full, run_facts or facts.RunFacts(), exp, problems)
    perf_d, avail_d = found.get("perf"), found.get("availability")
    resume_d, dur_d = found.get("resume"), found.get("durability")

    t0: float | None = times[0] if times else None
    for d in (avail_d, perf_d):
        stored_t0 = _num((d or {}).get("t0"))
        if stored_t0 is not None:
            t0 = stored_t0
            break
    fault_rows = _faults(avail_d, perf_d, resume_d, full, t0)
    known = {v.ordinal for v in run_facts.volumes} if run_facts is not None else set()
    lanes = _lanes(avail_d, sc.probes if sc is not None else {}, t0, known)
    buckets = _buckets(perf_d)
    marks = _marks(dur_d, times, t0)
    span = max([times[-1] - t0 if times and t0 is not None else 0.0]
               + [b.t + b.width for b in buckets[-1:]]
               + [f.end or f.start for f in fault_rows]
               + [w.end or w.start for lane in lanes for w in lane.windows])
    source = "results.json" if results is not None else "no results.json"
    if computed:
        source += f"; {', '.join(computed)} computed from the stored evidence by the report"
    timeline = Timeline(t0, span, buckets, lanes, fault_rows, marks, source)
    hist_links, files = _links(run_dir)
    declared = run_facts.declared_faults if run_facts is not None else None
    if declared is None:
        try:
            schedule = json.loads((run_dir / facts.SCHEDULE_FILE).read_text(encoding="utf-8"))
            declared = len(schedule) if isinstance(schedule, list) else None
        except (OSError, ValueError):
            declared = None
    return RunView(
        path=run_dir, info=run.info, verdicts=read_verdicts(results, recheck), timeline=timeline,
        ordinals=_ordinals(run_facts), checkpoints=_checkpoints(dur_d), replay=replay_command(run_dir, run.info),
        history_files=hist_links, files=files,
        locust_html=LOCUST_HTML.as_posix() if (run_dir / LOCUST_HTML).is_file() else None,
        cluster_logs=CLUSTER_LOGS_DIR + "/" if (run_dir / CLUSTER_LOGS_DIR).is_dir() else None,
        n_ops=len(times), op_counts=dict(sc.counts) if sc is not None else {}, declared_faults=declared,
        problems=tuple(problems),
    )


def utc(t: float | None) -> str:
    """A wall time as the page shows it (UTC, to the millisecond)."""
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
