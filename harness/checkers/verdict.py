"""A checker's answer, and how several answers combine.

``valid`` is three-valued as in Jepsen: ``True`` (checked and fine), ``False`` (the system
deviated) or ``"unknown"`` (the checker could not decide: no data, or the harness itself
failed). Keeping "unknown" apart from ``False`` is what lets a report tell a broken system
from a broken run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Literal, TypeAlias

Validity: TypeAlias = Literal[True, False, "unknown"]
UNKNOWN: Validity = "unknown"

#: A JSON-able mapping (checked by :meth:`Verdict.to_json`); each checker documents its keys.
Details: TypeAlias = Mapping[str, object]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    valid: Validity
    summary: str
    details: Details = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "summary": self.summary, "details": dict(self.details)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(raw: Mapping[str, object]) -> Verdict:
        valid = raw.get("valid")
        if valid not in (True, False, UNKNOWN):
            raise ValueError(f"verdict has no valid true/false/'unknown': {valid!r}")
        details = raw.get("details", {})
        if not isinstance(details, dict):
            raise ValueError("verdict details is not an object")
        return Verdict(valid, str(raw.get("summary", "")), details)


def combine(valids: Iterable[Validity]) -> Validity:
    """Any ``False`` wins; otherwise any ``"unknown"``; otherwise ``True``.

    Nothing to combine is ``"unknown"``: an empty check is never a pass.
    """
    seen = False
    unknown = False
    for v in valids:
        seen = True
        if v is False:
            return False
        if v is not True:  # "unknown" (or anything unexpected) is never a pass
            unknown = True
    if not seen or unknown:
        return UNKNOWN
    return True


def describe(valid: Validity) -> str:
    """The word a table or log shows for a validity."""
    if valid is True:
        return "valid"
    if valid is False:
        return "INVALID"
    return "unknown"
