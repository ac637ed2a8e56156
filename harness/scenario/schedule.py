"""Seeded fault schedules: what to break, where, and when — pure data, decided before the run.

A schedule is a list of :class:`FaultStep` s. Targets are *abstract* (``ordinal:1``, ``node-of:1``,
``set``) and resolved against the live cluster only when the step runs, so a schedule means the
same thing on any cluster and replays from ``schedule.json`` however the pods were placed. The
fault op in the history records what the target resolved to.

Generators are pure functions of the seed (Jepsen's generators, without the laziness): one fault
repeated over random targets, or a weighted mix of faults (the composed nemesis). The same seed
gives the same schedule, byte for byte, so ``--seed`` replays a nightly failure.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from typing import Final, Literal, get_args

from harness import facts

#: What a target names: one ordinal's pod, the node one ordinal runs on, a node by name, the node
#: holding the most of the set's pods (ties: by name), the set.
TargetKind = Literal["ordinal", "node-of", "node", "busiest-node", "set"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)
#: facts defines the name (it reads the schedule to know how many faults a run declared)
SCHEDULE_FILE: Final = facts.SCHEDULE_FILE


class ScheduleError(ValueError):
    """A schedule or generator argument that cannot be right; one line naming it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    #: the ordinal (``ordinal``/``node-of``) or node name (``node``); empty for ``set``
    ref: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ScheduleError(f"unknown target kind {self.kind!r}; known: {', '.join(TARGET_KINDS)}")
        if self.kind in ("ordinal", "node-of") and not (self.ref.isdigit() and self.ref == str(int(self.ref))):
            raise ScheduleError(f"target {self.kind}:{self.ref!r} needs an ordinal (a non-negative integer)")
        if self.kind == "node" and not self.ref:
            raise ScheduleError("target node: needs a node name (node:kubesim-worker2)")
        if self.kind in ("set", "busiest-node") and self.ref:
            raise ScheduleError(f"target {self.kind} takes no argument, got {self.kind}:{self.ref}")

    @property
    def ordinal(self) -> int | None:
        return int(self.ref) if self.kind in ("ordinal", "node-of") else None

    def __str__(self) -> str:
        return self.kind if self.kind in ("set", "busiest-node") else f"{self.kind}:{self.ref}"

    @staticmethod
    def parse(text: str) -> Target:
        kind, _, ref = text.partition(":")
        if kind not in TARGET_KINDS:
            raise ScheduleError(f"target {text!r}: expected one of ordinal:N, node-of:N, node:NAME, busiest-node, set")
        return Target(kind, ref)


@dataclasses.dataclass(frozen=True, slots=True)
class FaultStep:
    """Wait ``delay_s`` after the previous fault healed, then inject ``fault`` into ``target``."""

    delay_s: float
    fault: str
    target: Target

    def to_dict(self) -> dict[str, object]:
        return {"delay_s": self.delay_s, "fault": self.fault, "target": str(self.target)}

    @staticmethod
    def from_dict(raw: object) -> FaultStep:
        if not isinstance(raw, dict) or set(raw) != {"delay_s", "fault", "target"}:
            raise ScheduleError(f"a schedule step is {{delay_s, fault, target}}, got {raw!r}")
        delay, fault, target = raw["delay_s"], raw["fault"], raw["target"]
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ScheduleError(f"delay_s must be a number >= 0, got {delay!r}")
        if not isinstance(fault, str) or not fault or not isinstance(target, str):
            raise ScheduleError(f"fault and target must be non-empty strings, got {fault!r}, {target!r}")
        return FaultStep(float(delay), fault, Target.parse(target))


Schedule = tuple[FaultStep, ...]


def _check_delay(delay_s: tuple[float, float]) -> None:
    low, high = delay_s
    if not 0 <= low <= high:
        raise ScheduleError(f"delay range must satisfy 0 <= low <= high, got {delay_s}")


def repeat(seed: int, fault: str, targets: Sequence[Target], count: int, *,
           delay_s: tuple[float, float] = (0.5, 2.5)) -> Schedule:
    """``count`` times ``fault``, each at a target drawn from ``targets`` after a drawn delay.

    The draws (a uniform delay, then a target index, per step) are the ones the first pod-kill
    and process-kill runs used, so their recorded seeds still pick the same victims.
    """
    if not targets:
        raise ScheduleError("a fault schedule needs at least one target (a fault never defaults to everything)")
    if count < 0:
        raise ScheduleError(f"a schedule cannot have {count} faults")
    _check_delay(delay_s)
    rng = random.Random(seed)
    steps = []
    for _ in range(count):
        delay = round(rng.uniform(*delay_s), 3)
        steps.append(FaultStep(delay, fault, targets[rng.randrange(len(targets))]))
    return tuple(steps)


@dataclasses.dataclass(frozen=True, slots=True)
class MixEntry:
    """One fault of a mix: its weight and which of the targets it may hit."""

    fault: str
    weight: float
    targets: tuple[Target, ...]


def mixed(seed: int, mix: Sequence[MixEntry], count: int, *, delay_s: tuple[float, float] = (0.5, 2.5)) -> Schedule:
    """``count`` faults drawn from ``mix`` by weight (Jepsen's composed nemesis), seeded."""
    if not mix:
        raise ScheduleError("a mixed schedule needs at least one fault")
    for entry in mix:
        if not entry.weight > 0:
            raise ScheduleError(f"fault {entry.fault!r} has weight {entry.weight}; weights must be > 0")
        if not entry.targets:
            raise ScheduleError(f"fault {entry.fault!r} has no target (a fault never defaults to everything)")
    _check_delay(delay_s)
    rng = random.Random(seed)
    weights = [e.weight for e in mix]
    steps = []
    for _ in range(count):
        entry = rng.choices(mix, weights)[0]
        delay = round(rng.uniform(*delay_s), 3)
        steps.append(FaultStep(delay, entry.fault, entry.targets[rng.randrange(len(entry.targets))]))
    return tuple(steps)


def ordinals(kind: TargetKind, count: int) -> tuple[Target, ...]:
    """``ordinal:0 .. ordinal:count-1`` (or ``node-of:``): the usual target list."""
    return tuple(Target(kind, str(n)) for n in range(count))


def to_json(schedule: Sequence[FaultStep]) -> str:
    return json.dumps([s.to_dict() for s in schedule], indent=1) + "\n"


def from_json(text: str) -> Schedule:
    """A stored schedule.json (replaying a run); malformed input says which step is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ScheduleError(f"schedule is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ScheduleError("a schedule is a JSON list of {delay_s, fault, target}")
    steps = []
    for i, item in enumerate(raw):
        try:
            steps.append(FaultStep.from_dict(item))
        except ScheduleError as exc:
            raise ScheduleError(f"step {i}: {exc}") from None
    return tuple(steps)


def faults_named(schedule: Sequence[FaultStep]) -> Mapping[str, int]:
    """How many of each fault the schedule declares (what the faults checker expects to see)."""
    counts: dict[str, int] = {}
    for step in schedule:
        counts[step.fault] = counts.get(step.fault, 0) + 1
    return counts
