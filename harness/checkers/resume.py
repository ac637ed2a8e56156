"""Resume: after each heal, could a trainer continue from where it was acknowledged?

"Gets its checkpoint data back" as a verdict, not a log line. After each fault heals (and once
at the end) the harness asks every affected ordinal's writer to read its newest checkpoint in
full (``resume`` ops). Every acknowledged step must be behind or at the step it resumes from:

* **stale resume**: it resumed from a step older than one acknowledged (``ok`` completed)
  before the resume was asked — a failure even if the newer checkpoint still sits on the
  volume (the trainer would redo acknowledged work, or worse, not know it is gone);
* **wrong bytes**: it resumed from an acknowledged step whose digest is not the acknowledged
  one;
* **resumed from a refused write**: the step was answered ``fail`` (the writer said nothing
  was published);
* **torn newer checkpoint**: the read skipped a newer checkpoint under a final name that did
  not verify;
* **never resumable**: every attempt after a heal failed although acknowledged checkpoints
  existed (only ``info`` answers — no reply at all — leave it unknown instead).

A claim the set's own retention policy deleted (``whenScaled: Delete`` for a scaled-down
ordinal) starts empty: for such an ordinal, acknowledgements from before the last fault that
took it away are excused — the identity and durability checkers say the same, by the same rule
(:mod:`harness.checkers.retention`).

Reported per fault and ordinal: seconds from the heal to the first verified resume, and the
progress a trainer would redo — seconds from the ordinal's last acknowledgement to the fault,
and the writes in flight when the fault began. Wall times throughout (the load and the
harness are different processes on one host).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import TypedDict

from harness import facts, history, ops
from harness.checkers import expect, faults, retention, verdict, writes


class ResumeReport(TypedDict):
    ordinal: int
    #: schedule index of the fault this resume followed; None for the final resume
    after_fault: int | None
    attempts: int
    resumed_step: int | None
    required_step: int | None
    #: heal completed → first verified resume (None: final resume, or never)
    resumable_after_s: float | None
    #: last acknowledgement on the ordinal → the fault's start (progress a trainer redoes)
    redo_s: float | None
    #: writes to the ordinal in flight when the fault started (they may not have landed)
    in_flight_at_fault: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Ack:
    step: int
    digest: str
    done: float
    #: the writer process that acknowledged it (one epoch per writer start)
    epoch: str | None = None


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    acks: dict[int, list[_Ack]] = collections.defaultdict(list)
    refused: dict[int, set[int]] = collections.defaultdict(set)
    attempts = list(writes.write_attempts(ops_))
    for a in attempts:
        if a.outcome == "ok" and a.step is not None and a.digest is not None and a.completion is not None:
            epoch = a.completion.value.get("epoch") if isinstance(a.completion.value, dict) else None
            acks[a.ordinal].append(_Ack(a.step, a.digest, a.completion.time,
                                        epoch if isinstance(epoch, str) else None))
        elif a.outcome == "fail" and a.step is not None:
            refused[a.ordinal].add(a.step)
    for lst in acks.values():
        lst.sort(key=lambda ack: ack.done)

    groups: dict[tuple[int | None, int], list[history.Pair]] = collections.defaultdict(list)
    for p in history.pair(op for op in ops_ if op.f == ops.RESUME):
        value = p.invoke.value
        if not isinstance(value, dict) or not isinstance(value.get("ordinal"), int):
            raise writes.CheckerInputError(f"op {p.invoke.index}: resume invoke needs an int ordinal")
        after = value.get("after_fault")
        groups[(after if isinstance(after, int) else None, int(value["ordinal"]))].append(p)  # type: ignore[arg-type]
    if not groups:
        return verdict.Verdict(verdict.UNKNOWN, "no resume was attempted: whether a trainer could resume is unknown")

    periods = faults.fault_periods(ops_)
    heal_started = {op.index: op.time for op in ops_ if op.f == ops.FAULT_STOP and op.type == "invoke"}
    problems: list[str] = []
    undecided: list[str] = []
    reports: list[ResumeReport] = []
    for (after, ordinal), pairs in sorted(groups.items(), key=lambda kv: (kv[0][0] is None, kv[0])):
        period = _period_before(periods, pairs[0].invoke.time) if after is not None else None
        mine = acks.get(ordinal, [])
        if retention.claim_deletion_reason(ordinal, run, exp) is not None:
            mine = _since_last_removal(mine, periods, heal_started, ordinal, pairs[0].invoke.time)
        report, problem, unknown = _judge(ordinal, after, pairs, mine, refused[ordinal], period, attempts)
        reports.append(report)
        if problem:
            problems.append(problem)
        if unknown:
            undecided.append(unknown)

    valid: verdict.Validity = False if problems else (verdict.UNKNOWN if undecided else True)
    resumable = [r["resumable_after_s"] for r in reports if r["resumable_after_s"] is not None]
    summary = (f"{len(reports)} resumes over {len({r['ordinal'] for r in reports})} ordinals"
               + (f"; slowest heal → resumable {max(resumable):.3f}s" if resumable else ""))
    if problems:
        summary = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "") + "; " + summary
    elif undecided:
        summary = undecided[0] + "; " + summary
    return verdict.Verdict(valid, summary, {"resumes": reports, "problems": problems, "undecided": undecided})


def _since_last_removal(acks: list[_Ack], periods: Sequence[faults.FaultPeriod], heal_started: dict[int, float],
                        ordinal: int, when: float) -> list[_Ack]:
    """Acks on the volume the ordinal has now: those after the heal of the last fault that took
    it away began (until then its old pod may still answer; after it, only the new volume can),
    except those from a writer that was already acknowledging before then — an old pod that
    finished its in-flight writes on the old volume while the heal deleted it."""
    took = [heal_started.get(p.stop_op, p.end or p.start) if p.stop_op is not None else (p.end or p.start)
            for p in periods if str(ordinal) in p.expected_unavailable and p.start <= when]
    if not took:
        return acks
    cut = max(took)
    old_writers = {a.epoch for a in acks if a.done <= cut and a.epoch is not None}
    return [a for a in acks if a.done > cut and (a.epoch is None or a.epoch not in old_writers)]


def _period_before(periods: Sequence[faults.FaultPeriod], when: float) -> faults.FaultPeriod | None:
    """The fault whose heal completed last before ``when``: the one this resume follows."""
    ended = [p for p in periods if p.end is not None and p.end <= when]
    return max(ended, key=lambda p: p.end or 0.0) if ended else None


def _judge(  # noqa: PLR0917 - one group's whole context, used once
    ordinal: int,
    after: int | None,
    pairs: list[history.Pair],
    acks: list[_Ack],
    refused: set[int],
    period: faults.FaultPeriod | None,
    attempts: list[writes.WriteAttempt],
) -> tuple[ResumeReport, str | None, str | None]:
    where = f"ordinal {ordinal} " + (f"after fault {after}" if after is not None else "at the end")
    first_ok = next((p for p in pairs if p.completion is not None and p.completion.type == "ok"), None)
    report = ResumeReport(
        ordinal=ordinal, after_fault=after, attempts=len(pairs), resumed_step=None, required_step=None,
        resumable_after_s=None, redo_s=None, in_flight_at_fault=0,
    )
    if period is not None:
        before = [a for a in acks if a.done <= period.start]
        report["redo_s"] = round(period.start - before[-1].done, 6) if before else None
        report["in_flight_at_fault"] = sum(
            1 for a in attempts
            if a.ordinal == ordinal and a.invoke.time <= period.start
            and (a.completion is None or a.completion.time > period.start)
        )
    if first_ok is None:
        required = max((a.step for a in acks if a.done < pairs[-1].invoke.time), default=None)
        report["required_step"] = required
        if required is None:
            return report, None, None  # nothing was acknowledged: nothing to resume, nothing lost
        if all(p.completion is None or p.completion.type == "info" for p in pairs):
            return report, None, f"{where}: no answer to any of {len(pairs)} resume attempts"
        errors = [p.completion.error for p in pairs if p.completion is not None and p.completion.error]
        return report, (f"{where}: never resumable ({len(pairs)} attempts, last: {errors[-1] if errors else '?'}) "
                        f"although step {required} was acknowledged"), None

    assert first_ok.completion is not None
    value = first_ok.completion.value
    if not (isinstance(value, dict) and isinstance(value.get("step"), int) and isinstance(value.get("digest"), str)):
        raise writes.CheckerInputError(f"op {first_ok.completion.index}: resume ok needs an int step and a str digest")
    step, digest = int(value["step"]), str(value["digest"])  # type: ignore[arg-type]
    report["resumed_step"] = step
    if period is not None and period.end is not None:
        report["resumable_after_s"] = round(max(0.0, first_ok.completion.time - period.end), 6)
    asked = first_ok.invoke.time
    known = [a for a in acks if a.done < asked]
    required = max((a.step for a in known), default=None)
    report["required_step"] = required
    acked_digest = {a.step: a.digest for a in acks}
    skipped = value.get("skipped")
    if required is not None and step < required:
        return report, f"{where}: resumed from step {step}, but step {required} was acknowledged before", None
    if step in acked_digest and acked_digest[step] != digest:
        problem = f"{where}: resumed step {step} with digest {digest[:12]}, acknowledged {acked_digest[step][:12]}"
        return report, problem, None
    if step in refused and step not in acked_digest:
        return report, f"{where}: resumed from step {step}, a write the writer refused (nothing published)", None
    if isinstance(skipped, list) and skipped:
        return report, f"{where}: a newer checkpoint under a final name did not verify ({skipped[0]})", None
    return report, None, None
