"""Conversion between core/v1 ``Event`` (how events are stored) and ``events.k8s.io/v1`` ``Event``.

Upstream serves one storage under both groups; the field renames follow
``pkg/apis/events/v1/conversion.go`` (note <-> message, regarding <-> involvedObject, ...).
"""

from __future__ import annotations

from typing import Any

#: (events.k8s.io/v1 field, core/v1 field)
_RENAMES: tuple[tuple[str, str], ...] = (
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
_SAME = ("metadata", "eventTime", "series", "action", "reason", "related", "reportingInstance", "type")


def to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    for key in _SAME:
        if key in obj:
            out[key] = obj[key]
    for new, old in _RENAMES:
        if new in obj:
            out[old] = obj[new]
    return out


def from_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for key in _SAME:
        if key in obj:
            out[key] = obj[key]
    for new, old in _RENAMES:
        if old in obj:
            out[new] = obj[old]
    if not out.get("eventTime"):
        # events/v1 declares eventTime required; upstream would send null for an event written
        # through core/v1 without one, which typed clients reject. Use the best time we have.
        when = obj.get("lastTimestamp") or obj.get("firstTimestamp") or obj["metadata"].get("creationTimestamp")
        if isinstance(when, str) and when.endswith("Z") and "." not in when:
            out["eventTime"] = when[:-1] + ".000000Z"
    return out
