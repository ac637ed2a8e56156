"""SIGKILL a local writer process mid-write; heal by restarting it on the same volume.

The fault the embedded cluster's kubelet and ``kubesim node kill-container`` will deliver
to a pod's container, applied here to writers run as plain local processes: a real
SIGKILL to the real process group, the volume left exactly as the kernel has it. The heal
restarts the writer on the same data directory (its boot recovery runs) on a new port and
rewrites the endpoints file, so the load and the probe follow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.load import endpoints, local
from harness.nemesis import base


class LocalProcessKill:
    """Targets are pod names (``ckpt-1``) of :class:`harness.load.local.LocalWriters`."""

    name = "kill-writer-process"

    def __init__(self, writers: local.LocalWriters, endpoints_file: Path, *, restart_deadline_s: float = 60.0) -> None:
        self._by_pod = {w.pod: w for w in writers.writers}
        self._writers = writers
        self._endpoints_file = endpoints_file
        self._restart_deadline_s = restart_deadline_s

    def _targets(self, targets: Sequence[str]) -> list[local.LocalWriter]:
        unknown = [t for t in targets if t not in self._by_pod]
        if unknown:
            raise base.NemesisError(f"{self.name}: no local writer named {', '.join(unknown)}")
        return [self._by_pod[t] for t in targets]

    def affected(self, targets: Sequence[str]) -> list[int]:
        return [w.ordinal for w in self._targets(targets)]

    def inject(self, targets: Sequence[str]) -> None:
        for writer in self._targets(targets):
            writer.kill()

    def heal(self, targets: Sequence[str]) -> None:
        for writer in self._targets(targets):
            if writer.proc is None or writer.proc.poll() is not None:
                writer.start(self._restart_deadline_s)
        endpoints.write(self._endpoints_file, self._writers.urls())
