"""What the harness reads back after recovery, in one serialisable shape.

The checkers are pure functions of (history, facts). Facts are gathered once after the
faults are healed — by reading every volume with the offline verifier (``harness verify
--json`` prints a :class:`VolumeFacts`) and the cluster's ordinal → PVC → PV map before and
after the run — and stored in the run folder as ``facts.json`` so ``harness check`` can
judge a stored run again without a cluster.

No cluster I/O here (import-linter contract).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar, cast

FACTS_FILE = "facts.json"
#: the fault schedule a scenario stores in its run folder before anything runs (written by
#: ``harness.scenario``, which facts may not import: the layering keeps facts free of the
#: nemesis and load code the scenario layer pulls in; a unit test keeps the two names equal)
SCHEDULE_FILE = "schedule.json"

RetentionRule: TypeAlias = Literal["Retain", "Delete"]


class FactsError(Exception):
    """facts.json is missing or malformed."""


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointFact:
    """One directory under a final checkpoint name on a volume.

    ``digest`` is the manifest's own digest (what the writer acknowledged); ``request_id``
    the client's id carried through the POST into the manifest, so a checkpoint whose
    request ended ``info`` can be matched to its attempt. ``problem`` says why an invalid
    checkpoint failed validation (missing shard, size or digest mismatch, bad manifest).
    """

    ordinal: int
    step: int
    name: str
    valid: bool
    digest: str | None = None
    request_id: str | None = None
    problem: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class IdentityStamp:
    """The stamp the writer puts on an empty volume at first boot."""

    statefulset: str
    namespace: str
    ordinal: int
    claim: str
    volume_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeFacts:
    """Everything the offline verifier found on one ordinal's volume.

    Two ordinals are kept apart because a swapped volume is exactly their disagreement:
    ``read_as`` is the ordinal whose claim the reader mounted (``harness verify --ordinal``),
    ``stamp.ordinal`` the one the writer stamped the volume for. ``ordinal`` is what the
    checkers key the volume by: ``read_as`` when the reader said it, else the stamp's.
    ``read_as`` is ``None`` when the reader did not say (and in facts stored before it was
    recorded, whose ``ordinal`` came from the stamp whenever there was one), so whether such a
    volume sits on its own ordinal's claim is unknown — never assumed.
    """

    ordinal: int
    checkpoints: tuple[CheckpointFact, ...] = ()
    stamp: IdentityStamp | None = None
    temp_dirs: int = 0
    temp_bytes: int = 0
    latest_valid_step: int | None = None
    read_as: int | None = None

    def __post_init__(self) -> None:
        if self.read_as is not None and self.read_as != self.ordinal:
            raise ValueError(f"volume read as ordinal {self.read_as} is keyed as ordinal {self.ordinal}; "
                             "a volume is judged as the ordinal it was read for")


@dataclasses.dataclass(frozen=True, slots=True)
class OrdinalIdentity:
    """Who owned what for one ordinal at one moment (read through the Kubernetes API)."""

    ordinal: int
    pod: str
    claim: str
    claim_uid: str
    volume: str | None
    node: str | None
    volume_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The StatefulSet's ``persistentVolumeClaimRetentionPolicy`` declared by the scenario."""

    when_deleted: RetentionRule = "Retain"
    when_scaled: RetentionRule = "Retain"


@dataclasses.dataclass(frozen=True, slots=True)
class RunFacts:
    """The whole post-recovery picture a run's checkers judge.

    ``declared_faults`` is the one fact from before the run: how many faults its schedule
    declared. :meth:`load` takes it from the run folder's schedule.json when facts.json does
    not carry it, because every judge of a stored run (the live scenario's and ``harness
    check``'s) loads facts through there, so a chaos run is judged on whether its chaos
    happened without any scenario having to remember to say so. ``None``: no schedule (a
    plain load run, or facts built in memory) — nothing declared, nothing to judge.
    """

    volumes: tuple[VolumeFacts, ...] = ()
    identity_before: tuple[OrdinalIdentity, ...] = ()
    identity_after: tuple[OrdinalIdentity, ...] = ()
    retention: RetentionPolicy = RetentionPolicy()
    keep_last: int = 0
    #: ordinals the scenario scaled away during the run (their claims may go, per policy)
    scaled_down: tuple[int, ...] = ()
    declared_faults: int | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def dump(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)

    @staticmethod
    def from_dict(raw: Mapping[str, object]) -> RunFacts:
        try:
            return RunFacts(
                volumes=tuple(volume_facts_from_dict(v) for v in _seq(raw.get("volumes", []))),
                identity_before=tuple(_build(OrdinalIdentity, i) for i in _seq(raw.get("identity_before", []))),
                identity_after=tuple(_build(OrdinalIdentity, i) for i in _seq(raw.get("identity_after", []))),
                retention=_retention(raw.get("retention", {})),
                keep_last=int(cast(int, raw.get("keep_last", 0))),
                scaled_down=tuple(int(cast(int, x)) for x in _seq(raw.get("scaled_down", []))),
                declared_faults=_count_or_none(raw.get("declared_faults"), "declared_faults"),
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise FactsError(f"malformed facts: {exc}") from exc

    @staticmethod
    def load(path: Path) -> RunFacts:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise FactsError(f"no facts file at {path}") from exc
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FactsError(f"cannot read facts file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise FactsError(f"facts file {path} is not a JSON object")
        loaded = RunFacts.from_dict(raw)
        scheduled = _scheduled_faults(path.parent / SCHEDULE_FILE)
        if scheduled is None or loaded.declared_faults == scheduled:
            return loaded
        if loaded.declared_faults is None:
            return dataclasses.replace(loaded, declared_faults=scheduled)
        raise FactsError(f"{path} declares {loaded.declared_faults} faults but {SCHEDULE_FILE} beside it "
                         f"schedules {scheduled}")


def _scheduled_faults(path: Path) -> int | None:
    """How many faults a stored schedule declares; None when the run stored none."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FactsError(f"cannot read the fault schedule {path}: {exc}") from exc
    if not isinstance(raw, list) or not all(isinstance(step, dict) for step in raw):
        raise FactsError(f"fault schedule {path} is not a JSON list of steps")
    return len(raw)


def volume_facts_from_dict(raw: object) -> VolumeFacts:
    """Parse one :class:`VolumeFacts` (e.g. the output of ``harness verify --json``)."""
    m = _map(raw)
    stamp = m.get("stamp")
    return VolumeFacts(
        ordinal=int(cast(int, m["ordinal"])),
        checkpoints=tuple(_build(CheckpointFact, c) for c in _seq(m.get("checkpoints", []))),
        stamp=None if stamp is None else _build(IdentityStamp, stamp),
        temp_dirs=int(cast(int, m.get("temp_dirs", 0))),
        temp_bytes=int(cast(int, m.get("temp_bytes", 0))),
        latest_valid_step=None if m.get("latest_valid_step") is None else int(cast(int, m["latest_valid_step"])),
        # absent in facts stored before the reader recorded it: unknown, and said so by None
        read_as=_count_or_none(m.get("read_as"), "read_as"),
    )


def _count_or_none(value: object, name: str) -> int | None:
    """A non-negative JSON integer or null; a bool or a string is a malformed file, not a count."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name} should be a non-negative integer or null, got {value!r}")
    return value


_T = TypeVar("_T")
_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,), "str": (str,), "bool": (bool,), "int | None": (int, type(None)),
    "str | None": (str, type(None)), "RetentionRule": (str,),
}


def _build(cls: type[_T], raw: object) -> _T:
    """Construct ``cls`` from a decoded JSON object, checking each scalar field's JSON type.

    Without this a ``"step": "7"`` would load fine and crash a checker later with a
    message about comparing str and int; here it is one line naming the field.
    """
    m = _map(raw)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in m:
            continue
        kinds = _SCALARS.get(str(f.type))
        value = m[f.name]
        if kinds is None:
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise TypeError(f"{cls.__name__}.{f.name} should be {f.type}, got {value!r}")
    return cls(**m)


def _map(raw: object) -> dict[str, Any]:
    """Decoded JSON object; its values are checked by the dataclass it is spread into."""
    if not isinstance(raw, dict):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    return {str(k): v for k, v in raw.items()}


def _retention(raw: object) -> RetentionPolicy:
    policy = _build(RetentionPolicy, raw)
    for name in ("when_deleted", "when_scaled"):
        if getattr(policy, name) not in ("Retain", "Delete"):
            raise ValueError(f"retention.{name} should be Retain or Delete, got {getattr(policy, name)!r}")
    return policy


def _seq(raw: object) -> list[object]:
    if not isinstance(raw, list):
        raise TypeError(f"expected a list, got {type(raw).__name__}")
    return raw
