"""Per-process load tallies that locust's stats do not keep.

Locust knows response times; it does not know how many requests ended ok, fail or info in
the history's sense, how many checkpoint bytes were acknowledged, or how long recording the
history took. Each locust process dumps one of these at exit (``<worker>.json`` in the
metrics folder) and :func:`merge` adds them up for the bench and the ``harness load``
summary. No locust import: the pytest side reads these files too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path


@dataclasses.dataclass(slots=True)
class LoadMetrics:
    worker: str = ""
    requests: int = 0
    ok: int = 0
    fail: int = 0
    info: int = 0
    bytes_ok: int = 0
    #: wall time of requests (send to classified answer), excluding recording
    request_seconds: float = 0.0
    #: time spent inside HistoryWriter.record for invokes and completions
    record_seconds: float = 0.0

    def count(self, outcome: str, seconds: float, size: int) -> None:
        self.requests += 1
        self.request_seconds += seconds
        if outcome == "ok":
            self.ok += 1
            self.bytes_ok += size
        elif outcome == "fail":
            self.fail += 1
        else:
            self.info += 1

    @property
    def record_overhead(self) -> float:
        """Recording time as a fraction of request time (0 when nothing ran)."""
        return self.record_seconds / self.request_seconds if self.request_seconds > 0 else 0.0


def dump(metrics: LoadMetrics, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{metrics.worker or 'load'}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(metrics), indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def load(path: Path) -> LoadMetrics:
    raw = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(LoadMetrics)}
    return LoadMetrics(**{k: v for k, v in raw.items() if k in fields})


def merge(parts: Iterable[LoadMetrics]) -> LoadMetrics:
    total = LoadMetrics(worker="all")
    for part in parts:
        total.requests += part.requests
        total.ok += part.ok
        total.fail += part.fail
        total.info += part.info
        total.bytes_ok += part.bytes_ok
        total.request_seconds += part.request_seconds
        total.record_seconds += part.record_seconds
    return total


def read_dir(directory: Path) -> LoadMetrics:
    """All processes' metrics in ``directory`` added up (empty when none were written)."""
    return merge(load(p) for p in sorted(directory.glob("*.json")))
