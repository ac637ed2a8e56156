"""Load stages: how many users for how long, for a load that ramps or steps.

``--stages 30s:4,2m:16@4,30s:0`` means 4 users for 30 s, then 16 users (started 4 per
second) for 2 minutes, then none for 30 s (a quiet tail: recovery with no new writes).
Pure parsing and lookup; :mod:`harness.load.shape` turns it into locust's LoadTestShape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.load import units

DEFAULT_SPAWN_RATE = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Stage:
    duration_s: float
    users: int
    spawn_rate: float = DEFAULT_SPAWN_RATE


def parse(text: str) -> tuple[Stage, ...]:
    """``DURATION:USERS[@SPAWN_RATE]`` items, comma-separated; ValueError says what is wrong."""
    found: list[Stage] = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        duration_text, sep, rest = item.partition(":")
        users_text, at, rate_text = rest.partition("@")
        if not sep or not users_text.strip().isdigit():
            raise ValueError(f"stage {item!r} must be DURATION:USERS[@SPAWN_RATE], e.g. 30s:4 or 2m:16@4")
        try:
            rate = float(rate_text) if at else DEFAULT_SPAWN_RATE
        except ValueError:
            raise ValueError(f"stage {item!r}: spawn rate {rate_text!r} is not a number") from None
        if rate <= 0:
            raise ValueError(f"stage {item!r}: spawn rate must be > 0")
        found.append(Stage(units.parse_duration(duration_text), int(users_text), rate))
    if not found:
        raise ValueError("no stages given: use e.g. --stages 30s:4,2m:16")
    if all(s.users == 0 for s in found):
        raise ValueError("every stage has 0 users: nothing would be loaded")
    return tuple(found)


def total_s(stages: Sequence[Stage]) -> float:
    return sum(s.duration_s for s in stages)


def at(stages: Sequence[Stage], elapsed_s: float) -> Stage | None:
    """The stage running ``elapsed_s`` after the start; None once every stage is over."""
    end = 0.0
    for stage in stages:
        end += stage.duration_s
        if elapsed_s < end:
            return stage
    return None
