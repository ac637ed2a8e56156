"""A scenario is data: what to deploy, what to break, what load to run, and what must hold.

Jepsen's test map, typed. A scenario file builds one :class:`Scenario` and hands it to the
runner (:mod:`harness.scenario.runner`); everything a scenario file used to repeat — deploy,
identity, load, probe, faults with heals, read-back, judging, clean-up — lives in the runner
once. The claim a scenario proves is its ``claim`` (the scenario module's docstring), so the
report can say it next to the verdict.

Validation happens here, at construction, before a cluster is touched: a scenario that names
an unknown checker, a deploy option the spec does not have, or a load that cannot run fails
with one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final, Literal, get_args

from harness.checkers import expect, registry
from harness.clusters import base as cluster_base
from harness.deploy import spec as deploy_spec
from harness.nemesis import claims as nemesis_claims
from harness.scenario import schedule as schedule_mod
from harness.workload import config as workload_config

#: What the scenario runs against: the StatefulSet on the session's cluster, or the writers as
#: plain local processes (no cluster at all; the fault is a real SIGKILL of a real process).
SystemKind = Literal["statefulset", "local-processes"]
SYSTEM_KINDS: tuple[SystemKind, ...] = get_args(SystemKind)

DEFAULT_CHECKERS: Final = ("durability", "identity", "availability", "resume", "faults", "perf")


class ScenarioError(ValueError):
    """A scenario that cannot run as written; one line that says what to fix."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadProfile:
    """The checkpoint load running through the whole fault schedule.

    The load runs until the last fault healed, then ``tail_s`` more (every ordinal writing
    again after the last fault is part of the claim), capped at ``max_s``.
    """

    users: int = 6
    checkpoint_bytes: int = 256 * 1024
    shards: int = 4
    tail_s: float = 4.0
    max_s: float = 600.0
    request_timeout_s: float = 10.0
    #: every ordinal must acknowledge one checkpoint before the first fault, within this
    first_ack_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1:
            problems.append(f"users must be >= 1, got {self.users}")
        if self.checkpoint_bytes < self.shards:
            problems.append(f"checkpoint_bytes ({self.checkpoint_bytes}) must be >= shards ({self.shards})")
        if self.shards < 1:
            problems.append(f"shards must be >= 1, got {self.shards}")
        if self.tail_s < 0 or self.max_s <= self.tail_s:
            problems.append(f"need 0 <= tail_s < max_s, got tail_s={self.tail_s}, max_s={self.max_s}")
        if problems:
            raise ScenarioError("load: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One kind of fault a scenario uses: the nemesis (by name), its options, and what the
    scenario expects of the ordinals it hits.

    ``unavailable_because`` labels the unavailability windows of the ordinals the fault hits
    as expected (the availability checker keeps them apart from deviations); ``None`` means
    the fault must not make anything unavailable (e.g. a cordon alone).
    """

    nemesis: str
    unavailable_because: str | None
    options: Mapping[str, object] = dataclasses.field(default_factory=dict)
    #: how long the fault holds (inject done → heal starts): long enough to see what it does
    #: (a drained local-path ordinal sitting Pending) while the load goes on
    hold_s: float = 0.0
    #: every wait of the heal (pods back, rollout done, a new writer serving) ends by this
    heal_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        if self.hold_s < 0 or self.heal_timeout_s <= 0:
            raise ScenarioError(f"fault {self.nemesis}: need hold_s >= 0 and heal_timeout_s > 0")


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleContext:
    """What a schedule generator may know before the run: the seed and the set's shape."""

    seed: int
    replicas: int


ScheduleFn = Callable[[ScheduleContext], schedule_mod.Schedule]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Everything one scenario is; the runner executes any of them the same way."""

    name: str
    claim: str
    faults: Mapping[str, Fault]
    schedule: ScheduleFn
    system: SystemKind = "statefulset"
    #: harness/deploy spec options by key (``replicas``, ``storage_class``, ``when_scaled``,
    #: ``pdb_max_unavailable``, ...); the namespace is the runner's (unique, labelled)
    deploy: Mapping[str, str] = dataclasses.field(default_factory=dict)
    needs: frozenset[cluster_base.Capability] = frozenset()
    load: LoadProfile = dataclasses.field(default_factory=LoadProfile)
    checkers: tuple[str, ...] = DEFAULT_CHECKERS
    expectations: expect.Expectations = dataclasses.field(default_factory=expect.Expectations)
    #: soak: start faults from the (long) schedule until this many seconds have passed; each
    #: step is stored in schedule.json just before it runs, so the file is what ran
    duration_s: float | None = None
    #: NEGATIVE CONTROLS ONLY: publish-protocol steps the writers skip (``--unsafe-skip``: ``file-fsync``,
    #: ``tmpdir-fsync``, ``parent-fsync``, ...). A scenario that sets it claims its fault *catches* such a
    #: writer: it expects invalid verdicts (scenarios/test_power_loss_controls.py); no deploy flag sets it
    writer_unsafe_skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").isalnum():
            raise ScenarioError(f"scenario name {self.name!r}: use letters, digits and '-'")
        if not self.claim.strip():
            raise ScenarioError(f"scenario {self.name}: state the claim it proves (its module docstring)")
        if self.system not in SYSTEM_KINDS:
            raise ScenarioError(f"scenario {self.name}: system {self.system!r} is not one of {SYSTEM_KINDS}")
        if not self.faults:
            raise ScenarioError(f"scenario {self.name}: declares no fault")
        try:
            registry.resolve(self.checkers)
        except registry.UnknownCheckerError as exc:
            raise ScenarioError(f"scenario {self.name}: {exc}") from None
        if self.duration_s is not None and not self.duration_s > 0:
            raise ScenarioError(f"scenario {self.name}: duration_s must be > 0, got {self.duration_s}")
        unknown = sorted(set(self.writer_unsafe_skip) - set(workload_config.PROTOCOL_STEPS))
        if unknown:
            raise ScenarioError(f"scenario {self.name}: writer_unsafe_skip {', '.join(unknown)} is not a publish step "
                                f"({', '.join(workload_config.PROTOCOL_STEPS)})")
        nemeses = sorted({f.nemesis for f in self.faults.values()})
        for claim in self.expectations.fault_notes:
            if claim.fault not in nemeses:
                raise ScenarioError(f"scenario {self.name}: note claim on {claim.fault!r}, which none of its faults "
                                    f"uses ({', '.join(nemeses)})")
        self.deploy_spec("probe")  # an unknown or bad deploy option fails here, not mid-run

    @property
    def replicas(self) -> int:
        return self.deploy_spec("probe").replicas

    def deploy_spec(self, namespace: str) -> deploy_spec.DeploySpec:
        """The StatefulSet to deploy, in ``namespace``; bad options fail with one line."""
        try:
            spec = deploy_spec.parse({**self.deploy, "namespace": namespace})
        except deploy_spec.SpecError as exc:
            raise ScenarioError(f"scenario {self.name}: deploy {exc}") from None
        if not self.writer_unsafe_skip:
            return spec
        if spec.writer.checkpoint_format != "raw":
            raise ScenarioError(f"scenario {self.name}: writer_unsafe_skip applies to the raw format only, "
                                f"not {spec.writer.checkpoint_format}")
        return dataclasses.replace(spec, writer=dataclasses.replace(spec.writer,
                                                                    unsafe_skip=tuple(self.writer_unsafe_skip)))

    def make_schedule(self, seed: int) -> schedule_mod.Schedule:
        """The seeded schedule, checked against the faults this scenario declares."""
        steps = self.schedule(ScheduleContext(seed=seed, replicas=self.replicas))
        self.check_schedule(steps)
        return steps

    def check_schedule(self, steps: schedule_mod.Schedule) -> None:
        """A schedule (generated or replayed) may only use declared faults on existing ordinals."""
        if not steps:
            raise ScenarioError(f"scenario {self.name}: its schedule has no fault")
        for i, step in enumerate(steps):
            if step.fault not in self.faults:
                raise ScenarioError(f"scenario {self.name}: schedule step {i} uses fault {step.fault!r}, "
                                    f"which the scenario does not declare ({', '.join(self.faults)})")
            ordinal = step.target.ordinal
            if ordinal is not None and ordinal >= self.replicas:
                raise ScenarioError(f"scenario {self.name}: schedule step {i} targets {step.target}, "
                                    f"but the set has ordinals 0..{self.replicas - 1}")
            if self.faults[step.fault].nemesis == nemesis_claims.DELETE_CLAIM and (
                    step.target.kind != "ordinal" or ordinal not in self.expectations.new_volumes):
                declared = sorted(self.expectations.new_volumes)
                raise ScenarioError(f"scenario {self.name}: schedule step {i} deletes the claim of {step.target}; "
                                    f"refused unless expectations.new_volumes declares that ordinal's volume "
                                    f"expected new (declared: {declared or 'none'})")

    def settings(self) -> dict[str, object]:
        """What goes into run.json: enough to understand and replay the run."""
        return {
            "claim": self.claim.strip(),
            "system": self.system,
            "deploy": dict(self.deploy),
            "needs": sorted(self.needs),
            "faults": {name: {"nemesis": f.nemesis, "options": dict(f.options),
                              "unavailable_because": f.unavailable_because} for name, f in self.faults.items()},
            "load": dataclasses.asdict(self.load),
            "checkers": list(self.checkers),
            "duration_s": self.duration_s,
            "writer_unsafe_skip": list(self.writer_unsafe_skip),
        }
