"""What a scenario declares before it runs, so checkers can tell expected from deviated.

Stored in ``run.json`` under ``"expectations"`` so ``harness check`` judges a stored run by
the same declarations the live run used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar, cast

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class DurabilityOptions:
    #: problems listed per kind in the details (counts stay exact); keeps results.json small
    #: when a run loses everything
    max_listed: int = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class AvailabilityOptions:
    #: bound on fault healed → ordinal serving its newest acknowledged step, for ordinals the
    #: fault did not declare unavailable; ``None`` reports recovery times without judging them
    max_recovery_s: float | None = None
    #: a probe that timed out (``info``) counts as unavailable: the client could not get an answer
    info_is_unavailable: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class PerfOptions:
    bucket_s: float = 1.0
    #: the volume's measured write ceiling (MB/s, e.g. from a dd baseline) to report a fraction of
    ceiling_mb_s: float | None = None

    def __post_init__(self) -> None:
        if not self.bucket_s > 0:
            raise ValueError(f"perf bucket width must be > 0 s, got {self.bucket_s}")


@dataclasses.dataclass(frozen=True, slots=True)
class Expectations:
    #: the scenario deleted the StatefulSet itself, so ``whenDeleted`` applies to every ordinal
    set_deleted: bool = False
    durability: DurabilityOptions = DurabilityOptions()
    availability: AvailabilityOptions = AvailabilityOptions()
    perf: PerfOptions = PerfOptions()

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(raw: Mapping[str, object]) -> Expectations:
        """Parse the ``expectations`` object of run.json; unknown keys are an error (typos)."""
        try:
            _only(raw, "expectations", {"set_deleted", "durability", "availability", "perf"})
            d = _only(raw.get("durability", {}), "durability", {"max_listed"})
            a = _only(raw.get("availability", {}), "availability", {"max_recovery_s", "info_is_unavailable"})
            p = _only(raw.get("perf", {}), "perf", {"bucket_s", "ceiling_mb_s"})
            return Expectations(
                set_deleted=_typed(raw.get("set_deleted", False), bool, "set_deleted"),
                durability=DurabilityOptions(max_listed=_typed(d.get("max_listed", 1000), int, "max_listed")),
                availability=AvailabilityOptions(
                    max_recovery_s=_number_or_none(a.get("max_recovery_s"), "max_recovery_s"),
                    info_is_unavailable=_typed(a.get("info_is_unavailable", True), bool, "info_is_unavailable"),
                ),
                perf=PerfOptions(
                    bucket_s=_number(p.get("bucket_s", 1.0), "bucket_s"),
                    ceiling_mb_s=_number_or_none(p.get("ceiling_mb_s"), "ceiling_mb_s"),
                ),
            )
        except TypeError as exc:
            raise ValueError(f"malformed expectations: {exc}") from exc


def _only(raw: object, what: str, keys: set[str]) -> Mapping[str, object]:
    if not isinstance(raw, dict):
        raise TypeError(f"{what} should be an object, got {type(raw).__name__}")
    extra = set(raw) - keys
    if extra:
        raise TypeError(f"{what} has unknown keys {sorted(extra)}; known: {sorted(keys)}")
    return cast(Mapping[str, object], raw)


def _typed(value: object, kind: type[T], name: str) -> T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} should be {kind.__name__}, got {value!r}")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} should be a number, got {value!r}")
    return float(value)


def _number_or_none(value: object, name: str) -> float | None:
    return None if value is None else _number(value, name)
