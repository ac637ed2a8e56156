"""A graceful stop answers every write it received: no write in flight at a SIGTERM ends ``info``.

SIGKILL leaves in-flight writes indeterminate by nature; SIGTERM must not. The writer's contract
is to stop accepting, finish or refuse what it holds, and answer each request before it exits, so
a write that was in flight when the stop began comes back ``ok`` (published) or ``fail``
(``published: false``). An ``info`` there means the writer dropped a request it had: a trainer
that must now guess whether its checkpoint exists.

In flight at the stop = invoked before the signal and completed after it, on an ordinal the
fault stopped. The signal's time is the nemesis's ``signalled_at`` note (the runtime says when it
sent it, or the latest time known to precede it); without one, the fault's ``start`` invoke, which
surely precedes it. An earlier line only judges fewer writes, never a write sent after the
signal. Writes invoked later may reach a
writer that is gone (the connection is then refused: ``fail``, nothing sent) or race its exit on
a kept-alive connection; those are counted and reported, not judged, because no client can tell
a request the writer never read from one it read and dropped.

Only faults whose op carries ``graceful_stop`` (the nemesis said it stops gracefully) are judged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness import facts, history, ops
from harness.checkers import expect, faults, verdict, writes

_ORDINAL = re.compile(r"-(\d+)$")
#: the load, not the writer, gave up on these (it was stopping): never the writer's doing
_LOAD_STOPPED = "load stopped"


def graceful_faults(ops_: Sequence[history.Op]) -> list[history.Pair]:
    """Fault start pairs whose value says the nemesis stopped its targets gracefully."""
    return [p for p in history.pair(op for op in ops_ if op.f == ops.FAULT_START)
            if isinstance(p.invoke.value, dict) and p.invoke.value.get("graceful_stop") is True]


def _ordinals(value: history.JsonValue) -> set[int]:
    """The ordinals a fault stopped: its targets are pod names ending in ``-<ordinal>``."""
    targets = value.get("targets") if isinstance(value, dict) else None
    if not isinstance(targets, list):
        raise writes.CheckerInputError(f"graceful fault without a targets list: {value!r}")
    found = {int(m.group(1)) for t in targets if isinstance(t, str) and (m := _ORDINAL.search(t))}
    if len(found) != len(targets):
        raise writes.CheckerInputError(f"graceful fault targets {targets!r} are not all pods with an ordinal")
    return found


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    del run, exp  # the claim is the writer's, whatever the scenario expects of availability
    stops = graceful_faults(ops_)
    if not stops:
        return verdict.Verdict(verdict.UNKNOWN, "no graceful stop in the history: nothing to judge")
    attempts = list(writes.write_attempts(ops_))
    periods = {p.start_op: p for p in faults.fault_periods(ops_)}
    healed_by = {p.invoke.index: p.completion for p in history.pair(op for op in ops_ if op.f == ops.FAULT_STOP)
                 if p.completion is not None}
    dropped: list[str] = []
    per_fault: list[dict[str, object]] = []
    in_flight_total = 0
    for stop in stops:
        if stop.completion is None or stop.completion.type != "ok":
            continue  # not known to have been sent: the faults checker says so
        hit = _ordinals(stop.invoke.value)
        period = periods.get(stop.invoke.index)
        signalled = _signalled_at(period, healed_by, stop.invoke.time, stop.invoke.value)
        mine = [a for a in attempts if a.ordinal in hit]
        in_flight = [a for a in mine if a.invoke.time < signalled
                     and (a.completion is None or a.completion.time > signalled)
                     and not (a.completion is not None and _LOAD_STOPPED in (a.completion.error or ""))]
        healed = (period.end if period is not None else None) or stop.completion.time
        later_info = [a for a in mine if signalled <= a.invoke.time <= healed and a.outcome == "info"]
        lost = [a for a in in_flight if a.outcome == "info"]
        in_flight_total += len(in_flight)
        for a in lost:
            error = a.completion.error if a.completion is not None else "never completed"
            dropped.append(f"ordinal {a.ordinal}: write {a.request_id} in flight at the graceful stop of op "
                           f"{stop.invoke.index} ended info ({error})")
        per_fault.append({
            "start_op": stop.invoke.index, "signalled_at": signalled, "ordinals": sorted(hit),
            "in_flight": len(in_flight),
            "answered_ok": sum(a.outcome == "ok" for a in in_flight),
            "answered_fail": sum(a.outcome == "fail" for a in in_flight),
            "dropped": len(lost), "later_info": len(later_info),
        })
    details: dict[str, object] = {"faults": per_fault, "dropped": dropped}
    if dropped:
        more = f" (+{len(dropped) - 1} more)" if len(dropped) > 1 else ""
        return verdict.Verdict(False, dropped[0] + more, details)
    if in_flight_total == 0:
        return verdict.Verdict(verdict.UNKNOWN, f"no write was in flight at any of {len(per_fault)} graceful "
                                                "stop(s): the drain was never exercised", details)
    later = sum(int(str(f["later_info"])) for f in per_fault)
    return verdict.Verdict(True, f"{in_flight_total} writes in flight at {len(per_fault)} graceful stop(s), every "
                                 f"one answered; {later} sent after a signal got no answer (the writer was gone "
                                 "or going: info, not judged)", details)


def _signalled_at(period: faults.FaultPeriod | None, healed_by: dict[int, history.Op], began: float,
                  value: history.JsonValue) -> float:
    """The earliest ``signalled_at`` the heal recorded for this fault's targets, else ``began``."""
    stop = healed_by.get(period.stop_op) if period is not None and period.stop_op is not None else None
    notes = stop.value.get("notes") if stop is not None and isinstance(stop.value, dict) else None
    times = notes.get("signalled_at") if isinstance(notes, dict) else None
    targets = value.get("targets") if isinstance(value, dict) else None
    found = [float(t) for target, t in times.items()
             if isinstance(t, int | float) and isinstance(targets, list) and target in targets
             ] if isinstance(times, dict) else []
    return max(began, min(found)) if found else began
