"""Parsing sizes and durations given on the command line (``64KiB``, ``1MB``, ``90s``, ``2m``)."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1 << 10, "ki": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mib": 1 << 20, "mi": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "gi": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "tib": 1 << 40, "ti": 1 << 40,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(text: str) -> int:
    """Bytes from ``4096``, ``64KiB``, ``1MB``, ``1.5GiB``; ValueError says the accepted forms."""
    match = _SIZE.match(text)
    unit = (match.group(2) or "").lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"size {text!r} is not a size: use bytes or a unit, e.g. 4096, 64KiB, 1MiB, 1GB")
    value = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if value < 1:
        raise ValueError(f"size {text!r} must be at least 1 byte")
    return value


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m``, ``1h``, ``500ms``; must be > 0."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"duration {text!r} is not a duration: use e.g. 30s, 2m, 1h or plain seconds")
    value = float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "").lower()]
    if value <= 0:
        raise ValueError(f"duration {text!r} must be longer than 0 seconds")
    return value
