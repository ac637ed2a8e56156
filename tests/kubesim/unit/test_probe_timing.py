"""The readiness prober's schedule under each timing profile, on a fake clock (issue 13, "Timing as upstream has it").

``kubesim up`` (profile ``upstream``, the default) probes at ``initialDelaySeconds`` and then every
``periodSeconds``, as upstream's prober; ``--timing fast`` retries a failing readiness probe every
``probe_fast_start`` (0.1 s) until it first succeeds, then falls back to the period. The worker's
loop runs in the test's thread against a fake monotonic clock: every wait it asks for advances the
clock instead of sleeping, so the schedule is exact and the test takes no wall-clock time.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest

from kubesim.controllers import settings
from kubesim.kubelet import probes

PROBE = {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 1, "periodSeconds": 3}
ANSWERS_FROM = 2.05  # the probe target fails until then (server not listening yet), then passes
STOP_AT = 7.5  # three regular periods are enough to see the schedule


@dataclasses.dataclass
class FakeClock:
    now: float = 0.0
    waits: list[float] = dataclasses.field(default_factory=list)
    stopped: bool = False

    def monotonic(self) -> float:
        return self.now

    # the worker's ``stopped`` Event: waiting advances the clock; the run ends past STOP_AT
    def is_set(self) -> bool:
        return self.stopped

    def set(self) -> None:
        self.stopped = True

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "the prober waited without a timeout"
        assert timeout >= 0, f"the prober waited {timeout!r}"
        self.waits.append(timeout)
        self.now += timeout
        if self.now >= STOP_AT:
            self.stopped = True
        return self.stopped


@dataclasses.dataclass
class Run:
    attempts: list[float]
    ready_at: list[float]
    unhealthy_at: list[float]


def _probe_on_a_fake_clock(monkeypatch: pytest.MonkeyPatch, timing: str) -> Run:
    clock = FakeClock()
    attempts: list[float] = []
    changes: list[tuple[float, bool]] = []
    failures: list[float] = []

    def run_once(probe: Any, container: Any, pod_ip: str, exec_fn: Any, timeout: float) -> tuple[bool, str]:
        attempts.append(clock.now)
        if clock.now < ANSWERS_FROM:
            return False, 'Get "http://10.244.1.5:8080/healthz": dial tcp 10.244.1.5:8080: connect: connection refused'
        return True, ""

    monkeypatch.setattr(probes, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(probes, "run_once", run_once)
    worker = probes.Worker("readiness", PROBE, {"name": "app"}, "10.244.1.5", 0.0, exec_fn=lambda argv, t: (0, ""),
                           on_change=lambda kind, ok: changes.append((clock.now, ok)),
                           on_failure=lambda kind, message: failures.append(clock.now), gate=None,
                           fast_start=settings.TIMINGS[timing]["probe_fast_start"])
    worker.stopped = clock  # type: ignore[assignment]
    worker._loop()  # in this thread: the fake clock decides when it ends
    assert all(ok for _at, ok in changes), f"readiness never goes back to failed here: {changes}"
    return Run(attempts, [at for at, _ok in changes], failures)


def test_upstream_timing_retries_a_failing_readiness_probe_at_period_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default profile: attempts at initialDelaySeconds, then every periodSeconds, failing or not."""
    assert settings.DEFAULT_TIMING == "upstream"
    run = _probe_on_a_fake_clock(monkeypatch, settings.DEFAULT_TIMING)
    assert run.attempts == pytest.approx([1.0, 4.0, 7.0])
    assert run.ready_at == pytest.approx([4.0])  # a full period after the target answered at 2.05, not sooner
    assert run.unhealthy_at == pytest.approx([1.0])  # one Unhealthy event per failed (regular) attempt


def test_fast_timing_retries_every_tenth_of_a_second_until_the_first_success(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--timing fast``: every 0.1 s until the first success, then back on the periodSeconds grid."""
    fast = settings.TIMINGS["fast"]["probe_fast_start"]
    assert fast == 0.1
    run = _probe_on_a_fake_clock(monkeypatch, "fast")
    retries = [at for at in run.attempts if at < ANSWERS_FROM + fast]
    assert retries == pytest.approx([1.0 + fast * i for i in range(12)])  # 1.0, 1.1, ..., 2.1: the first success
    assert run.ready_at == pytest.approx([2.1])  # at the first attempt after the target answers
    assert run.attempts[len(retries):] == pytest.approx([4.0, 7.0])  # then every periodSeconds again
    assert run.unhealthy_at == pytest.approx([1.0])  # the extra attempts raise no Unhealthy events
