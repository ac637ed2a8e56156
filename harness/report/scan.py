"""One lean pass over a run's history: the clock and the counts a report needs, not the ops.

A judged run's results.json already holds every figure the report draws; from the history the
report only needs each op's wall time in merged order (to place a lost checkpoint's mark at
the time of the op the durability checker names by index), the probe's coverage per ordinal,
and op counts. Building every :class:`harness.history.Op` for that costs about as much again as
parsing the JSON (``Op.from_mapping`` and ``dataclasses.replace`` per op), which on a 100,000-op
run is the difference between a report in two seconds and one in four; so this reads the same
files the same way — files in name order, each file's own order kept, merged by wall time with
ties to the earlier file (``heapq.merge``), a torn last line skipped — and keeps floats and
counters. A unit test holds its merged times equal to :func:`harness.history.read_history`'s.

When the report must compute figures itself (an unjudged run), it reads the full ops through
:mod:`harness.store` and takes the same :class:`Scan` from them with :func:`from_ops`.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness import history, ops


@dataclasses.dataclass(frozen=True, slots=True)
class Probed:
    """One ordinal's probe samples: first and last op time (wall) and how many were sent."""

    first: float
    last: float
    samples: int


@dataclasses.dataclass(frozen=True, slots=True)
class Scan:
    #: every op's wall time, in the merged history's order (index i is op i)
    times: Sequence[float]
    probes: Mapping[int, Probed]
    #: "<f> <type>" → ops
    counts: Mapping[str, int]

    @property
    def has_resume(self) -> bool:
        return any(key.startswith(f"{ops.RESUME} ") for key in self.counts)


class _Tally:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.samples: collections.Counter[int] = collections.Counter()

    def add(self, t: float, f: str, type_: str, value: object) -> None:
        self.counts[f"{f} {type_}"] += 1
        if f == ops.READ and isinstance(value, dict):
            ordinal = value.get("ordinal")
            if isinstance(ordinal, int) and not isinstance(ordinal, bool):
                if ordinal not in self.first or t < self.first[ordinal]:
                    self.first[ordinal] = t
                if ordinal not in self.last or t > self.last[ordinal]:
                    self.last[ordinal] = t
                if type_ == "invoke":
                    self.samples[ordinal] += 1

    def scan(self, times: Sequence[float]) -> Scan:
        probes = {o: Probed(self.first[o], self.last[o], self.samples[o]) for o in sorted(self.first)}
        return Scan(times, probes, dict(sorted(self.counts.items())))


def _file_times(path: Path, tally: _Tally) -> list[float]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise history.HistoryError(f"cannot read history file {path}: {exc.strerror}") from exc
    lines = data.split(b"\n")
    last = len(lines) - 1
    times: list[float] = []
    for lineno, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            t = float(raw["time"])
            f, type_ = str(raw["f"]), str(raw["type"])
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if lineno == last:
                continue  # a torn final line: what a SIGKILLed writer leaves (read_history skips it too)
            raise history.HistoryError(f"{path}:{lineno + 1}: corrupt history line: {exc}") from exc
        if type_ not in history.OP_TYPES:
            raise history.HistoryError(f"{path}:{lineno + 1}: unknown op type {type_!r}")
        times.append(t)
        tally.add(t, f, type_, raw.get("value"))
    return times


def scan_run(run_dir: Path) -> Scan:
    """Scan ``run_dir``'s history files; raises :class:`harness.history.HistoryError` as the reader would."""
    tally = _Tally()
    per_file = [_file_times(path, tally) for path in history.history_files(run_dir)]
    return tally.scan(list(heapq.merge(*per_file)))


def from_ops(ops_: Iterable[history.Op]) -> Scan:
    tally = _Tally()
    times = []
    for op in ops_:
        times.append(op.time)
        tally.add(op.time, op.f, op.type, op.value)
    return tally.scan(times)
