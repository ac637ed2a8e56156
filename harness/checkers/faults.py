"""Fault periods from the nemesis's start/stop ops, and whether the declared faults happened.

A period starts when the nemesis *invoked* the fault (it may bite before the call returns)
and ends when the heal *completed* (a heal that never completed ends at its invoke, flagged
uncertain; a fault never healed has no end — the harness broke its own rule, so checkers
say "unknown" rather than judge around it). A stop closes the earliest open start of the
same fault and targets (Jepsen nemeses start and stop in pairs).

:func:`check` is the ``faults`` checker: every other checker can pass a run whose faults
never took effect, and such a run proved nothing about faults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias, cast

from harness import facts, history, ops
from harness.checkers import expect, verdict

HealOutcome: TypeAlias = Literal["ok", "fail", "info", "never"]


@dataclasses.dataclass(frozen=True, slots=True)
class FaultPeriod:
    fault: str
    targets: tuple[str, ...]
    start: float
    end: float | None
    heal: HealOutcome
    #: ordinal (as str) → why the scenario expects it unavailable during this fault
    expected_unavailable: Mapping[str, str]
    start_op: int
    stop_op: int | None

    def overlaps(self, start: float, end: float | None) -> bool:
        """Whether [start, end] (end None = still open) meets this period."""
        mine_end = float("inf") if self.end is None else self.end
        theirs_end = float("inf") if end is None else end
        return start <= mine_end and self.start <= theirs_end

    def to_json(self, t0: float) -> dict[str, object]:
        return {
            "fault": self.fault,
            "targets": list(self.targets),
            "start": round(self.start - t0, 6),
            "end": None if self.end is None else round(self.end - t0, 6),
            "heal": self.heal,
            "expected_unavailable": dict(self.expected_unavailable),
            "start_op": self.start_op,
            "stop_op": self.stop_op,
        }


def _key(value: history.JsonValue) -> tuple[str, tuple[str, ...], dict[str, str]]:
    if not isinstance(value, dict):
        return "?", (), {}
    fault = value.get("fault")
    targets = value.get("targets")
    expected = value.get("expected_unavailable")
    return (
        str(fault) if fault is not None else "?",
        tuple(str(t) for t in targets) if isinstance(targets, list) else (),
        {str(k): str(v) for k, v in expected.items()} if isinstance(expected, dict) else {},
    )


def fault_periods(ops_: Sequence[history.Op]) -> list[FaultPeriod]:
    """Every injected fault with its period, in start order. A start that failed is no fault."""
    nemesis = [op for op in ops_ if op.f in (ops.FAULT_START, ops.FAULT_STOP)]
    open_: list[tuple[history.Pair, tuple[str, tuple[str, ...], dict[str, str]]]] = []
    periods: list[FaultPeriod] = []
    for p in history.pair(nemesis):
        key = _key(p.invoke.value)
        if p.invoke.f == ops.FAULT_START:
            open_.append((p, key))
            continue
        match = next((i for i, (_, k) in enumerate(open_) if k[:2] == key[:2]), None)
        if match is None:
            match = next((i for i, (_, k) in enumerate(open_) if k[0] == key[0]), None)
        if match is None:
            continue  # a heal with nothing to heal (e.g. its start was never recorded)
        start, skey = open_.pop(match)
        if start.outcome == "fail":
            continue
        if p.completion is None:
            end, heal = p.invoke.time, "info"
        else:
            end, heal = p.completion.time, p.completion.type
        periods.append(_period(start, skey, end, heal, p.invoke.index, key[2]))
    for start, skey in open_:
        if start.outcome != "fail":
            periods.append(_period(start, skey, None, "never", None, {}))
    periods.sort(key=lambda fp: fp.start)
    return periods


def _period(  # noqa: PLR0917 - private helper, called twice
    start: history.Pair,
    key: tuple[str, tuple[str, ...], dict[str, str]],
    end: float | None,
    heal: str,
    stop_op: int | None,
    stop_expected: dict[str, str],
) -> FaultPeriod:
    heal_outcome: HealOutcome = "never"
    if heal in ("ok", "fail", "info"):
        heal_outcome = cast(HealOutcome, heal)
    return FaultPeriod(
        fault=key[0],
        targets=key[1],
        start=start.invoke.time,
        end=end,
        heal=heal_outcome,
        expected_unavailable={**key[2], **stop_expected},
        start_op=start.invoke.index,
        stop_op=stop_op,
    )


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    """Did the faults the run declared (its stored schedule) take effect?

    A fault took effect when its ``start`` completed ``ok``. A start that failed injected
    nothing; one that ended ``info`` (or never completed) may or may not have, so it is not
    counted as having happened — the claim "survives N faults" needs faults known to have hit.

    Anything but exactly the declared number is ``"unknown"``, not ``False``: ``False`` says
    the system under test deviated, and here nothing about the system was observed to be wrong
    — the run did not do what it declared, so it cannot vouch for the system either way (what
    ``harness check``'s exit 2, "the run is at fault, not the system", means; Jepsen's ``stats``
    checker likewise calls an ``:f`` with no ``:ok`` unknown). Either way ``True`` is
    impossible, and :func:`harness.checkers.verdict.combine` lets nothing else turn it back
    into a pass. Too many faults is unknown for the same reason: the history is not the run the
    schedule describes.

    The scenario's declared note claims (``exp.fault_notes``: a budget refused an eviction, a
    drained ordinal sat Pending) are judged here too, on the notes each healed fault recorded:
    one that does not hold is ``False`` (the system did not do what the scenario claims); one
    with no healed fault of its nemesis to judge is ``unknown``.
    """
    base = _took_effect(ops_, run)
    if not exp.fault_notes:
        return base
    claims = _note_claims(ops_, exp.fault_notes)
    if not claims["broken"] and not claims["unchecked"]:
        return _with(base, claims, f"; {len(exp.fault_notes)} declared note claim(s) held")
    if claims["broken"]:
        return verdict.Verdict(False, f"declared claim(s) did not hold: {'; '.join(claims['broken'])} "
                               f"({base.summary})", {**base.details, "note_claims": claims})
    if base.valid is not True:
        return _with(base, claims, "")
    return verdict.Verdict(verdict.UNKNOWN, f"declared claim(s) not checked: {'; '.join(claims['unchecked'])} "
                           f"({base.summary})", {**base.details, "note_claims": claims})


def _with(v: verdict.Verdict, claims: dict[str, list[str]], more: str) -> verdict.Verdict:
    return verdict.Verdict(v.valid, v.summary + more, {**v.details, "note_claims": claims})


def _note_claims(ops_: Sequence[history.Op], claims: Sequence[expect.NoteClaim]) -> dict[str, list[str]]:
    """Each declared claim against the notes of every healed fault of its nemesis: ``held``,
    ``broken`` (one line each, saying what was seen) and ``unchecked`` (no healed fault of it)."""
    stops = [op for op in ops_ if op.f == ops.FAULT_STOP and op.type == "ok" and isinstance(op.value, dict)]
    out: dict[str, list[str]] = {"held": [], "broken": [], "unchecked": []}
    for claim in claims:
        mine = [op.value for op in stops if isinstance(op.value, dict) and op.value.get("fault") == claim.fault]
        if not mine:
            out["unchecked"].append(f"{claim.describe()}: no healed {claim.fault} fault to judge it on")
            continue
        wrong = [w for value in mine if (w := _claim_fails(claim, value))]
        (out["broken"] if wrong else out["held"]).append(
            f"{claim.describe()}: " + ("; ".join(wrong) if wrong else f"held on {len(mine)} fault(s)"))
    return out


def _claim_fails(claim: expect.NoteClaim, value: Mapping[str, history.JsonValue]) -> str | None:
    """Why ``claim`` does not hold for one fault's stop op, or None when it does."""
    targets = value.get("targets")
    where = f"{claim.fault} of {', '.join(map(str, targets)) if isinstance(targets, list) else '?'}"
    notes = value.get("notes")
    note = notes.get(claim.note) if isinstance(notes, dict) else None
    if note is None:
        return f"{where}: its heal recorded no {claim.note!r} note"
    if claim.rule == "at-least":
        if isinstance(note, bool) or not isinstance(note, int | float):
            return f"{where}: {claim.note} is {note!r}, not a number"
        return None if note >= claim.value else f"{where}: {claim.note} = {note}, expected >= {claim.value}"
    if not isinstance(note, dict) or not note:
        return f"{where}: {claim.note} is {note!r}, not a non-empty ordinal → placement map"
    if claim.rule == "each-pending":
        off = {k: v for k, v in note.items() if not str(v).startswith("Pending")}
        return None if not off else f"{where}: ordinal(s) not Pending: " + ", ".join(
            f"{k} on {v}" for k, v in sorted(off.items()))
    on_target = set(map(str, targets)) if isinstance(targets, list) else set()
    off = {k: v for k, v in note.items() if str(v).startswith("Pending") or v == "no pod" or str(v) in on_target}
    return None if not off else f"{where}: ordinal(s) that did not move to another node: " + ", ".join(
        f"{k} {v}" for k, v in sorted(off.items()))


def _took_effect(ops_: Sequence[history.Op], run: facts.RunFacts) -> verdict.Verdict:
    declared = run.declared_faults
    starts = [p for p in history.pair(op for op in ops_ if op.f in (ops.FAULT_START, ops.FAULT_STOP))
              if p.invoke.f == ops.FAULT_START]
    took = [p for p in starts if p.outcome == "ok"]
    missed = [p for p in starts if p.outcome != "ok"]
    failed = sum(1 for p in missed if p.outcome == "fail")
    details: dict[str, object] = {
        "declared": declared,
        "took_effect": len(took),
        "failed": failed,
        "indeterminate": len(missed) - failed,
        "not_taken": [_not_taken(p) for p in missed],
    }
    if declared is None:
        return verdict.Verdict(verdict.UNKNOWN, "the run stored no fault schedule: nothing says which faults "
                               f"were meant to happen ({len(took)} took effect)", details)
    if len(took) == declared:
        summary = "declared no faults, none injected" if declared == 0 else \
            f"all {declared} declared faults took effect"
        return verdict.Verdict(True, summary, details)
    if not took:
        summary = f"declared {declared} faults, none took effect"
    elif len(took) < declared:
        summary = f"declared {declared} faults, only {len(took)} took effect"
    else:
        summary = f"declared {declared} faults, but {len(took)} took effect: not the run its schedule describes"
    if missed:
        summary += f" ({failed} starts failed, {len(missed) - failed} indeterminate)"
    return verdict.Verdict(verdict.UNKNOWN, summary + "; the run did not exercise what it declared", details)


def _not_taken(p: history.Pair) -> dict[str, object]:
    fault, targets, _ = _key(p.invoke.value)
    return {"op": p.invoke.index, "fault": fault, "targets": list(targets), "outcome": p.outcome,
            "error": p.completion.error if p.completion is not None else "never completed"}
