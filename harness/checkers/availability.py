"""Availability: when was each ordinal unavailable, was that expected, how fast did it recover?

Probe ops (``read`` by ``probe-<n>``) sample each ordinal while the run goes on. A sample
that failed, or answered not ready, is unavailable (a timed-out sample too, by default: the
client got no answer). Consecutive unavailable samples form a *window*, from the first bad
sample's invoke to the completion of the next good one (open if none came). A window is
*expected* when it overlaps a fault that declared that ordinal in ``expected_unavailable``
(e.g. a local volume pins its ordinal to a drained node); otherwise *unexpected*.

Recovery time, per fault and ordinal: from the heal's completion to the first sample, sent
after the heal, that is ready and serves at least the newest step acknowledged on that
ordinal before the fault started — a pod that is Ready but serves an older checkpoint has
not recovered. An ordinal the fault did not touch (no window meets the fault, and its last
sample before the heal already qualified) recovered in 0 s: the probe interval is not
charged to it.

Invalid when an unexpected window never closes, or (when the scenario declares
``max_recovery_s``) an ordinal not declared unavailable recovers slower than that.
Wall times are used throughout: probes, nemesis and load run in different processes.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
from collections.abc import Sequence
from typing import TypedDict

from harness import facts, history, ops
from harness.checkers import expect, faults, verdict, writes


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    ordinal: int
    sent: float
    answered: float
    available: bool
    latest_step: int | None
    op: int


class Window(TypedDict):
    ordinal: int
    start: float
    end: float | None
    samples: int
    expected: bool
    reasons: list[str]
    first_op: int


class Recovery(TypedDict):
    fault: int
    fault_name: str
    ordinal: int
    healed_at: float | None
    required_step: int | None
    recovered_at: float | None
    recovery_s: float | None
    expected_unavailable: bool
    #: whether the ordinal was unavailable (or behind) during the fault at all
    affected: bool


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    del run  # availability is judged from the history alone
    opts = exp.availability
    t0 = ops_[0].time if ops_ else 0.0
    samples = _samples(ops_, opts)
    periods = faults.fault_periods(ops_)
    if not samples:
        return verdict.Verdict(verdict.UNKNOWN, "no probe samples recorded: availability not observed",
                               {"faults": [p.to_json(t0) for p in periods]})

    windows: list[Window] = []
    for ordinal, ss in samples.items():
        windows.extend(_windows(ordinal, ss, periods))

    acked = _acked_steps(ops_)
    recoveries: list[Recovery] = []
    for i, period in enumerate(periods):
        for ordinal, ss in samples.items():
            hit = any(w["ordinal"] == ordinal and period.overlaps(w["start"], w["end"]) for w in windows)
            recoveries.append(_recovery(i, period, ordinal, ss, acked.get(ordinal), hit))

    problems: list[str] = []
    for w in windows:
        if not w["expected"] and w["end"] is None:
            problems.append(f"ordinal {w['ordinal']} unavailable from t={w['start'] - t0:.3f}s and never recovered")
    if opts.max_recovery_s is not None:
        for r in recoveries:
            if r["expected_unavailable"]:
                continue
            if r["recovery_s"] is None:
                problems.append(f"ordinal {r['ordinal']} never recovered after fault {r['fault']} ({r['fault_name']})")
            elif r["recovery_s"] > opts.max_recovery_s:
                problems.append(f"ordinal {r['ordinal']} took {r['recovery_s']:.3f}s to recover after fault "
                                f"{r['fault']} ({r['fault_name']}), bound {opts.max_recovery_s}s")
    unhealed = [f"fault {i} ({p.fault}) heal {p.heal}" for i, p in enumerate(periods) if p.heal in ("never", "fail")]

    if problems:
        valid: verdict.Validity = False
    elif unhealed:
        valid = verdict.UNKNOWN
    else:
        valid = True
    unexpected = [w for w in windows if not w["expected"]]
    times = [r["recovery_s"] for r in recoveries if r["recovery_s"] is not None]
    summary = (
        f"{len(windows)} unavailability windows over {len(samples)} ordinals "
        f"({len(windows) - len(unexpected)} expected, {len(unexpected)} unexpected); {len(periods)} faults"
        + (f"; slowest recovery {max(times):.3f}s" if times else "")
    )
    if problems:
        summary = f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "") + "; " + summary
    elif unhealed:
        summary = f"not every fault was healed ({', '.join(unhealed)}); " + summary
    details: dict[str, object] = {
        "t0": t0,
        "windows": [_relative(w, t0) for w in windows],
        "recoveries": [_relative_recovery(r, t0) for r in recoveries],
        "faults": [p.to_json(t0) for p in periods],
        "problems": problems,
        "unhealed": unhealed,
        "samples": {str(o): len(ss) for o, ss in samples.items()},
    }
    return verdict.Verdict(valid, summary, details)


def outages(ops_: Sequence[history.Op], exp: expect.AvailabilityOptions, *,
            silent_s: float = 1.0) -> dict[int, list[tuple[float, float | None]]]:
    """Per ordinal, each span from its last available sample's answer to the next one's (``None``:
    never again) that held an unavailable sample or no sample for over ``silent_s`` (an ordinal
    missing from the endpoints map is not probed at all: silence is an outage too)."""
    out: dict[int, list[tuple[float, float | None]]] = {}
    for ordinal, ss in _samples(ops_, exp).items():
        spans: list[tuple[float, float | None]] = []
        last_good: float | None = None
        bad = False
        for sample in ss:
            if not sample.available:
                bad = True
                continue
            if last_good is not None and (bad or sample.answered - last_good > silent_s):
                spans.append((last_good, sample.answered))
            last_good, bad = sample.answered, False
        if bad and last_good is not None:
            spans.append((last_good, None))
        out[ordinal] = spans
    return out


def _samples(ops_: Sequence[history.Op], opts: expect.AvailabilityOptions) -> dict[int, list[Sample]]:
    out: dict[int, list[Sample]] = collections.defaultdict(list)
    for p in history.pair(op for op in ops_ if op.f == ops.READ):
        inv, done = p.invoke, p.completion
        ordinal = _probe_ordinal(inv)
        outcome = p.outcome
        latest: int | None = None
        if outcome == "ok" and done is not None and isinstance(done.value, dict):
            available = done.value.get("ready") is True
            ls = done.value.get("latest_step")
            latest = ls if isinstance(ls, int) else None
        elif outcome == "info":
            available = not opts.info_is_unavailable
        else:
            available = False
        answered = done.time if done is not None else inv.time
        out[ordinal].append(Sample(ordinal, inv.time, answered, available, latest, inv.index))
    for ss in out.values():
        ss.sort(key=lambda s: s.sent)
    return dict(sorted(out.items()))


def _probe_ordinal(inv: history.Op) -> int:
    if isinstance(inv.value, dict) and isinstance(inv.value.get("ordinal"), int):
        return int(inv.value["ordinal"])  # type: ignore[arg-type]
    prefix, _, n = inv.process.rpartition("-")
    if prefix.endswith("probe") and n.isdigit():
        return int(n)
    raise writes.CheckerInputError(f"op {inv.index}: probe read names no ordinal (value or process probe-<n>)")


def _windows(ordinal: int, ss: list[Sample], periods: list[faults.FaultPeriod]) -> list[Window]:
    out: list[Window] = []
    start: Sample | None = None
    count = 0

    def close(end: float | None) -> None:
        assert start is not None
        reasons = [
            f"{p.fault}: {p.expected_unavailable[str(ordinal)]}"
            for p in periods
            if str(ordinal) in p.expected_unavailable and p.overlaps(start.sent, end)
        ]
        out.append(Window(ordinal=ordinal, start=start.sent, end=end, samples=count, expected=bool(reasons),
                          reasons=reasons, first_op=start.op))

    for s in ss:
        if not s.available:
            if start is None:
                start, count = s, 0
            count += 1
        elif start is not None:
            close(s.answered)
            start = None
    if start is not None:
        close(None)
    return out


def _acked_steps(ops_: Sequence[history.Op]) -> dict[int, tuple[list[float], list[int]]]:
    """Per ordinal: ack times, sorted, with the running newest step acknowledged by then."""
    per: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)
    for a in writes.write_attempts(ops_):
        if a.outcome == "ok" and a.completion is not None and a.step is not None:
            per[a.ordinal].append((a.completion.time, a.step))
    out: dict[int, tuple[list[float], list[int]]] = {}
    for ordinal, pairs in per.items():
        pairs.sort()
        newest: list[int] = []
        top = -1
        for _, step in pairs:
            top = max(top, step)
            newest.append(top)
        out[ordinal] = ([t for t, _ in pairs], newest)
    return out


def _recovery(  # noqa: PLR0917 - private helper of check()
    index: int,
    period: faults.FaultPeriod,
    ordinal: int,
    ss: list[Sample],
    acked: tuple[list[float], list[int]] | None,
    window_met_fault: bool,
) -> Recovery:
    required: int | None = None
    if acked is not None:
        k = bisect.bisect_left(acked[0], period.start)
        required = acked[1][k - 1] if k > 0 else None

    def qualifies(s: Sample) -> bool:
        return s.available and (required is None or (s.latest_step is not None and s.latest_step >= required))

    recovered_at: float | None = None
    affected = True
    if period.end is not None:
        before = [s for s in ss if s.sent < period.end]
        if not window_met_fault and before and qualifies(before[-1]):
            recovered_at, affected = period.end, False
        else:
            recovered_at = next((s.answered for s in ss if s.sent >= period.end and qualifies(s)), None)
    return Recovery(
        fault=index,
        fault_name=period.fault,
        ordinal=ordinal,
        healed_at=period.end,
        required_step=required,
        recovered_at=recovered_at,
        recovery_s=None if recovered_at is None or period.end is None else round(recovered_at - period.end, 6),
        expected_unavailable=str(ordinal) in period.expected_unavailable,
        affected=affected,
    )


def _relative(w: Window, t0: float) -> Window:
    rel = w.copy()
    rel["start"] = round(w["start"] - t0, 6)
    rel["end"] = None if w["end"] is None else round(w["end"] - t0, 6)
    return rel


def _relative_recovery(r: Recovery, t0: float) -> Recovery:
    rel = r.copy()
    rel["healed_at"] = None if r["healed_at"] is None else round(r["healed_at"] - t0, 6)
    rel["recovered_at"] = None if r["recovered_at"] is None else round(r["recovered_at"] - t0, 6)
    return rel
