"""The system under test, as the runner sees it: bring it up, reach it, break it, read it back.

Two implementations: :mod:`harness.scenario.on_cluster` (the checkpointing StatefulSet on the
session's cluster — the product) and :mod:`harness.scenario.on_processes` (the writers as plain
local processes, for the same durability claims without Kubernetes in the way). The runner
only ever talks to this protocol, which is what makes one runner run every scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from harness import facts
from harness.nemesis import base
from harness.scenario import model, schedule


class System(Protocol):
    #: what run.json calls the cluster: embedded, kind, existing, or local-processes
    kind: str
    #: the file the load and the probe follow (ordinal → URL), kept current by the system
    endpoints_file: Path
    ordinals: Sequence[int]

    def describe(self) -> Mapping[str, object]:
        """What run.json records about where the run ran (never a secret)."""
        ...

    def check_fault(self, fault: model.Fault) -> None:
        """Refuse a nemesis this system cannot run, or a bad option, before anything is deployed."""
        ...

    def up(self) -> None:
        """Deploy and wait until every ordinal is reachable through the endpoints file."""
        ...

    def endpoints(self) -> Mapping[int, str]: ...

    def identity(self) -> tuple[facts.OrdinalIdentity, ...]:
        """ordinal → pod → claim → PV → node → volume stamp, now (empty where it has no meaning)."""
        ...

    def nemesis(self, fault: model.Fault) -> base.Nemesis:
        """The fault's nemesis, built for this system; an unknown nemesis or option fails here."""
        ...

    def resolve(self, target: schedule.Target) -> str:
        """An abstract target, made concrete against the live system (``node-of:1`` → a node name)."""
        ...

    def read_back(self) -> tuple[facts.VolumeFacts, ...]:
        """Every ordinal's volume, read with the offline verifier — never through the writer."""
        ...

    def retention(self) -> facts.RetentionPolicy: ...

    def keep_last(self) -> int: ...

    def collect(self, dest: Path) -> None:
        """Logs and final state into ``dest`` (the run's ``cluster-logs/``), on failure too; never raises."""
        ...

    def down(self) -> None:
        """Remove everything :meth:`up` made; safe after a failed or partial ``up``."""
        ...
