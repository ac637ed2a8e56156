"""Kubernetes timestamps: ``metav1.Time`` as RFC 3339 to the second, in UTC.

One place for the format every component writes (creation, conditions, events, heartbeats)
and the lenient parse every controller needs (``Time``, or ``MicroTime`` such as a Lease's
renewTime; absent or malformed → None, never an exception in a reconcile).
"""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime(FORMAT)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(FORMAT)


def parse_time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)
