"""What a scenario declares before it runs, so checkers can tell expected from deviated.

Stored in ``run.json`` under ``"expectations"`` so ``harness check`` judges a stored run by
the same declarations the live run used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal, TypeVar, cast, get_args

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


#: ``at-least``: the note is a number >= ``value``; ``each-pending``: the note maps ordinals to
#: where their pods were, and every one was Pending (unscheduled); ``each-elsewhere``: every one
#: was on a node other than the fault's targets (it moved)
NoteRule = Literal["at-least", "each-pending", "each-elsewhere"]
NOTE_RULES: tuple[NoteRule, ...] = get_args(NoteRule)


@dataclasses.dataclass(frozen=True, slots=True)
class NoteClaim:
    """A claim about what a fault did, judged on the notes its heal recorded (the ``faults``
    checker): it must hold for every healed fault of that nemesis, or the run is not valid."""

    fault: str
    note: str
    rule: NoteRule
    value: int = 1

    def __post_init__(self) -> None:
        if self.rule not in NOTE_RULES:
            raise ValueError(f"note claim on {self.fault}.{self.note}: rule {self.rule!r} is not one of {NOTE_RULES}")

    def describe(self) -> str:
        said = {"at-least": f">= {self.value}", "each-pending": "every ordinal Pending",
                "each-elsewhere": "every ordinal on another node"}[self.rule]
        return f"{self.fault} {self.note}: {said}"


@dataclasses.dataclass(frozen=True, slots=True)
class Expectations:
    #: the scenario deleted the StatefulSet itself, so ``whenDeleted`` applies to every ordinal
    set_deleted: bool = False
    #: ordinal → why the scenario itself gives it a new, empty volume (it deletes the ordinal's
    #: claim: the ``delete-claim`` nemesis); the checkers excuse exactly these, with the reason
    new_volumes: Mapping[int, str] = dataclasses.field(default_factory=dict)
    durability: DurabilityOptions = DurabilityOptions()
    availability: AvailabilityOptions = AvailabilityOptions()
    perf: PerfOptions = PerfOptions()
    #: claims on the faults' recorded notes (a budget refused an eviction, a drained ordinal sat Pending)
    fault_notes: tuple[NoteClaim, ...] = ()
    #: the identity checker also demands every ordinal on the node it was on before (local volumes)
    same_node: bool = False

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(raw: Mapping[str, object]) -> Expectations:
        """Parse the ``expectations`` object of run.json; unknown keys are an error (typos)."""
        try:
            _only(raw, "expectations", {"set_deleted", "new_volumes", "durability", "availability", "perf",
                                        "fault_notes", "same_node"})
            nv = _typed(raw.get("new_volumes", {}), dict, "new_volumes")
            d = _only(raw.get("durability", {}), "durability", {"max_listed"})
            a = _only(raw.get("availability", {}), "availability", {"max_recovery_s", "info_is_unavailable"})
            p = _only(raw.get("perf", {}), "perf", {"bucket_s", "ceiling_mb_s"})
            return Expectations(
                set_deleted=_typed(raw.get("set_deleted", False), bool, "set_deleted"),
                new_volumes={_ordinal(k): _typed(v, str, f"new_volumes[{k}]") for k, v in nv.items()},
                durability=DurabilityOptions(max_listed=_typed(d.get("max_listed", 1000), int, "max_listed")),
                availability=AvailabilityOptions(
                    max_recovery_s=_number_or_none(a.get("max_recovery_s"), "max_recovery_s"),
                    info_is_unavailable=_typed(a.get("info_is_unavailable", True), bool, "info_is_unavailable"),
                ),
                perf=PerfOptions(
                    bucket_s=_number(p.get("bucket_s", 1.0), "bucket_s"),
                    ceiling_mb_s=_number_or_none(p.get("ceiling_mb_s"), "ceiling_mb_s"),
                ),
                fault_notes=tuple(_note_claim(c) for c in _claims(raw.get("fault_notes", []))),
                same_node=_typed(raw.get("same_node", False), bool, "same_node"),
            )
        except TypeError as exc:
            raise ValueError(f"malformed expectations: {exc}") from exc


def _claims(raw: object) -> list[object] | tuple[object, ...]:
    if not isinstance(raw, list | tuple):
        raise TypeError(f"fault_notes should be a list, got {raw!r}")
    return raw


def _note_claim(raw: object) -> NoteClaim:
    c = _only(raw, "fault_notes entry", {"fault", "note", "rule", "value"})
    rule = _typed(c.get("rule"), str, "rule")
    if rule not in NOTE_RULES:
        raise TypeError(f"rule should be one of {NOTE_RULES}, got {rule!r}")
    return NoteClaim(fault=_typed(c.get("fault"), str, "fault"), note=_typed(c.get("note"), str, "note"),
                     rule=rule, value=_typed(c.get("value", 1), int, "value"))


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


def _ordinal(key: str) -> int:
    if not (isinstance(key, str | int) and str(key).isdigit()):
        raise TypeError(f"new_volumes keys should be ordinals, got {key!r}")
    return int(key)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} should be a number, got {value!r}")
    return float(value)


def _number_or_none(value: object, name: str) -> float | None:
    return None if value is None else _number(value, name)
