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
    """
    del exp  # nothing to configure: a declared fault either happened or it did not
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
