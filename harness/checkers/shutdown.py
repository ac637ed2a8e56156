"""A graceful stop answers every write it held: no write the writer had at a SIGTERM ends ``info``.

SIGKILL leaves in-flight writes indeterminate by nature; SIGTERM must not. The writer's contract
is to stop accepting, finish or refuse what it holds, and answer each request before it exits, so
a write it held when the stop began comes back ``ok`` (published) or ``fail`` (``published:
false``). An ``info`` there means the writer dropped a request it had: a trainer that must now
guess whether its checkpoint exists.

Which writes it held is the writer's own account, not a guess from the client's clock: on SIGTERM
it logs the request ids it had received and not yet answered, and the nemesis reads that log from
the stopped container once the writer is back (``held_at_stop`` in the heal's notes). A request
the client sent before the signal may still have been on its way (a port-forward hop, a loaded
machine); the writer never had it, and no client can tell it from one the writer dropped, so
writes sent around and after the signal that got no answer are counted and reported, not judged.

Only faults whose op carries ``graceful_stop`` (the nemesis said it stops gracefully) are judged;
one whose stopped writer's account could not be read makes the verdict ``"unknown"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness import facts, history, ops
from harness.checkers import expect, faults, verdict, writes

#: how the load records a request it stopped waiting for (harness/load/locustfile.py RequestDeadline)
GAVE_UP = "RequestDeadline"


def graceful_faults(ops_: Sequence[history.Op]) -> list[history.Pair]:
    """Fault start pairs whose value says the nemesis stopped its targets gracefully."""
    return [p for p in history.pair(op for op in ops_ if op.f == ops.FAULT_START)
            if isinstance(p.invoke.value, dict) and p.invoke.value.get("graceful_stop") is True]


def _notes(period: faults.FaultPeriod | None, healed_by: Mapping[int, history.Op]) -> Mapping[str, object]:
    stop = healed_by.get(period.stop_op) if period is not None and period.stop_op is not None else None
    notes = stop.value.get("notes") if stop is not None and isinstance(stop.value, dict) else None
    return notes if isinstance(notes, dict) else {}


def _targets(value: history.JsonValue) -> list[str]:
    targets = value.get("targets") if isinstance(value, dict) else None
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise writes.CheckerInputError(f"graceful fault without a list of target names: {value!r}")
    return [str(t) for t in targets]


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    del run, exp  # the claim is the writer's, whatever the scenario expects of availability
    stops = graceful_faults(ops_)
    if not stops:
        return verdict.Verdict(verdict.UNKNOWN, "no graceful stop in the history: nothing to judge")
    by_request = {a.request_id: a for a in writes.write_attempts(ops_) if a.request_id is not None}
    attempts = list(by_request.values())
    periods = {p.start_op: p for p in faults.fault_periods(ops_)}
    healed_by = {p.invoke.index: p.completion for p in history.pair(op for op in ops_ if op.f == ops.FAULT_STOP)
                 if p.completion is not None}
    dropped: list[str] = []
    gave_up: list[str] = []
    missing: list[str] = []
    per_fault: list[dict[str, object]] = []
    held_total = 0
    for stop in stops:
        if stop.completion is None or stop.completion.type != "ok":
            continue  # not known to have been sent: the faults checker says so
        period = periods.get(stop.invoke.index)
        notes = _notes(period, healed_by)
        accounts, absent = notes.get("held_at_stop"), notes.get("stop_account_missing")
        for target in _targets(stop.invoke.value):
            account = accounts.get(target) if isinstance(accounts, dict) else None
            if not isinstance(account, dict) or not isinstance(account.get("in_flight"), list):
                why = absent.get(target) if isinstance(absent, dict) else None
                missing.append(f"{target} at op {stop.invoke.index}: {why or 'no stop account was recorded'}")
                continue
            held = [str(i) for i in account["in_flight"]]
            held_total += len(held)
            lost = [(rid, by_request.get(rid)) for rid in held]
            for rid, a in lost:
                if a is not None and a.outcome == "info" and a.completion is not None and \
                        (a.completion.error or "").startswith(GAVE_UP):
                    gave_up.append(f"{target}: write {rid} (op {stop.invoke.index}): the client stopped waiting "
                                   "before the writer answered")
                elif a is None or a.outcome == "info":
                    error = "never recorded" if a is None else (
                        a.completion.error if a.completion else "never completed")
                    dropped.append(f"{target}: write {rid}, held by the writer at its graceful stop (op "
                                   f"{stop.invoke.index}), ended info ({error})")
            ordinal = _ordinal(target)
            ended = (period.end if period is not None else None) or stop.completion.time
            began = float(account["ts"]) if isinstance(account.get("ts"), int | float) else stop.invoke.time
            per_fault.append({
                "start_op": stop.invoke.index, "target": target, "stopped_at": began, "held": len(held),
                "held_without_id": account.get("in_flight_without_id", 0),
                "answered_ok": sum(1 for _r, a in lost if a is not None and a.outcome == "ok"),
                "answered_fail": sum(1 for _r, a in lost if a is not None and a.outcome == "fail"),
                "unanswered_later": sum(1 for a in attempts if a.ordinal == ordinal and a.outcome == "info"
                                        and a.completion is not None and a.request_id not in held
                                        and stop.invoke.time <= a.completion.time <= ended),
            })
    details: dict[str, object] = {"faults": per_fault, "dropped": dropped, "client_gave_up": gave_up,
                                  "accounts_missing": missing}
    if dropped:
        more = f" (+{len(dropped) - 1} more)" if len(dropped) > 1 else ""
        return verdict.Verdict(False, dropped[0] + more, details)
    if missing:
        return verdict.Verdict(verdict.UNKNOWN, f"what the writer held is unknown: {missing[0]}", details)
    if gave_up:
        return verdict.Verdict(verdict.UNKNOWN, f"{gave_up[0]}: whether it was answered is unknown", details)
    if held_total == 0:
        return verdict.Verdict(verdict.UNKNOWN, f"no writer held a write at any of {len(per_fault)} graceful "
                                                "stop(s): the drain was never exercised", details)
    later = sum(int(str(f["unanswered_later"])) for f in per_fault)
    return verdict.Verdict(True, f"{held_total} writes held at {len(per_fault)} graceful stop(s), every one "
                                 f"answered; {later} other write(s) around the stop got no answer (the writer "
                                 "never had them or was gone: info, not judged)", details)


def _ordinal(target: str) -> int | None:
    tail = target.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
