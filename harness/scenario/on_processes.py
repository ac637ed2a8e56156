"""The writers as plain local processes: the durability claims with no Kubernetes in the way.

One writer per ordinal on its own directory; the only fault is a real SIGKILL of a writer's
process group (``kill-writer-process``), healed by restarting it on the same directory. The
volumes are read back with the offline verifier after the writers stopped. Identity has no
meaning here (no claims, no pods): the map is empty and the identity checker is not chosen.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import facts
from harness.load import endpoints, local
from harness.load import volumes as local_volumes
from harness.nemesis import base, process_kill
from harness.scenario import model, schedule


class LocalProcesses:
    kind: str = "local-processes"

    def __init__(self, scenario: model.Scenario, root: Path, run_dir: Path) -> None:
        spec = scenario.deploy_spec("local")
        if spec.writer.unsafe_skip:  # the local writers take no such switch: refuse rather than run a correct one
            raise model.ScenarioError(f"scenario {scenario.name}: writer_unsafe_skip needs the statefulset system")
        self._statefulset = spec.name
        self._keep_last = spec.writer.keep_last
        self.ordinals: Sequence[int] = range(spec.replicas)
        self.endpoints_file = run_dir / "endpoints.json"
        self._writers = local.LocalWriters(root / "volumes", spec.replicas, statefulset=spec.name,
                                           keep_last=spec.writer.keep_last)
        self._up = False

    def describe(self) -> Mapping[str, object]:
        return {"kind": self.kind, "writers": len(self.ordinals), "root": str(self._writers.root)}

    def up(self) -> None:
        self._up = True
        self._writers.start()
        endpoints.write(self.endpoints_file, self._writers.urls())

    def endpoints(self) -> Mapping[int, str]:
        return dict(endpoints.read(self.endpoints_file).urls)

    def identity(self) -> tuple[facts.OrdinalIdentity, ...]:
        return ()

    def check_fault(self, fault: model.Fault) -> None:
        if fault.nemesis != process_kill.LocalProcessKill.name:
            raise model.ScenarioError(f"local writer processes offer only {process_kill.LocalProcessKill.name}, "
                                      f"not {fault.nemesis!r}")
        base.check_options(fault.nemesis, fault.options, {})

    def nemesis(self, fault: model.Fault) -> base.Nemesis:
        self.check_fault(fault)
        return process_kill.LocalProcessKill(self._writers, self.endpoints_file)

    def resolve(self, target: schedule.Target) -> str:
        if target.kind != "ordinal" or target.ordinal not in self.ordinals:
            raise model.ScenarioError(f"local writer processes can only be targeted by ordinal, not {target}")
        return f"{self._statefulset}-{target.ordinal}"

    def read_back(self) -> tuple[facts.VolumeFacts, ...]:
        """Stops the writers first (SIGTERM, drained): a volume is read at rest."""
        self._writers.stop()
        return tuple(local_volumes.verify_volume(w.data_dir, w.ordinal) for w in self._writers.writers)

    def retention(self) -> facts.RetentionPolicy:
        return facts.RetentionPolicy()

    def keep_last(self) -> int:
        return self._keep_last

    def collect(self, dest: Path) -> None:
        """The writers' own logs (each writer's events, one file per start)."""
        logs = self._writers.root / "logs"
        if logs.is_dir():
            shutil.copytree(logs, dest / "writers", dirs_exist_ok=True)

    def down(self) -> None:
        if self._up:
            self._up = False
            self._writers.stop()
