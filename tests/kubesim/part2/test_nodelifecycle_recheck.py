"""D2 regression: a node whose kubelet went silent is marked Unknown at its grace deadline, even when a
reconcile of that node hit a 409 in between (the flaky `make test` failure of the crash tests).

What happened: node lifecycle kept its own "a re-check is already pending" table on top of the
work queue. A stale-cache 409 (common right after a kubelet restarts: the controller removes the
unreachable taints twice) re-queued the node rate-limited; the work queue keeps only the earliest
time per key, so that 50 ms retry replaced the timer at the grace deadline — and the retry, told by
the table that a re-check was still pending, asked for none. With no further heartbeat (the kubelet
had just been crashed) nothing ever looked at the node again: Ready stayed True for good.

The settings make the outcome deterministic: a node monitor period longer than the grace period
means every reconcile asks for the same moment (the deadline), so without the fix the retry always
declines to ask again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import k4_support as ks
import pytest

from kubesim import client
from kubesim.controllers import nodelifecycle, runtime, settings

GRACE = 2.0
SETTINGS = settings.ControllerSettings(node_monitor_period=30.0, node_monitor_grace=GRACE, node_startup_grace=5.0,
                                       node_status_interval=0.3)


class ConflictOnce:
    """Wraps ``reconcile``: once armed, the node's next pass succeeds, re-queues itself at once (as an
    informer event would) and the pass after that raises the 409 a stale cache gives."""

    def __init__(self, mgr: runtime.Manager, ctrl: nodelifecycle.NodeLifecycleController, key: str) -> None:
        self.mgr, self.ctrl, self.key = mgr, ctrl, key
        self.real: Callable[[str], float | None] = ctrl.reconcile
        self.armed = threading.Event()
        self.stage = 0
        self.raised_at: float | None = None

    def __call__(self, key: str) -> float | None:
        if key != self.key or not self.armed.is_set() or self.stage >= 2:
            return self.real(key)
        self.stage += 1
        if self.stage == 1:
            result = self.real(key)
            self.mgr.enqueue(self.ctrl, key)
            return result
        self.raised_at = time.monotonic()
        raise client.Conflict(409, "Conflict", f'Operation cannot be fulfilled on nodes "{key}" (injected)')


@pytest.fixture
def lifecycle(kubesim_factory: Callable[..., Path]) -> Iterator[tuple[client.Client, runtime.Manager,
                                                                     nodelifecycle.NodeLifecycleController]]:
    api = client.Client.from_kubeconfig(kubesim_factory("--controllers", "none"))
    mgr = runtime.Manager(api, SETTINGS)
    ctrl = nodelifecycle.new()
    mgr.add(ctrl)
    try:
        if not mgr.start(sync_timeout=20):
            raise RuntimeError("node lifecycle informers did not sync within 20s")
        yield api, mgr, ctrl
    finally:
        mgr.stop()
        api.close()


def test_a_409_retry_between_the_last_heartbeat_and_the_deadline_still_marks_the_node_unknown(
        lifecycle: tuple[client.Client, runtime.Manager, nodelifecycle.NodeLifecycleController]) -> None:
    api, mgr, ctrl = lifecycle
    kubelet = ks.ScriptedKubelet(api, f"recheck-{uuid.uuid4().hex[:6]}", SETTINGS.node_status_interval)
    kubelet.register()
    try:
        ks.await_value(f"{kubelet.name} Ready=True", lambda: ks.condition(api.get("nodes", kubelet.name), "Ready"),
                       lambda c: (c or {}).get("status") == "True", timeout=5)
        injector = ConflictOnce(mgr, ctrl, kubelet.name)
        ctrl.reconcile = injector  # type: ignore[method-assign]
        kubelet.crash()  # no more Lease renewals: only the timed re-check can notice the silence
        silent = time.monotonic()
        injector.armed.set()
        mgr.enqueue(ctrl, kubelet.name)
        seen: list[Any] = []

        def ready() -> Any:
            seen.append(ks.condition(api.get("nodes", kubelet.name), "Ready"))
            return seen[-1]

        ks.await_value(f"{kubelet.name} Ready=Unknown {GRACE}s after its last heartbeat, despite one 409 retry",
                       ready, lambda c: (c or {}).get("status") == "Unknown", timeout=GRACE + 3)
        assert injector.raised_at is not None, "the 409 was never injected: this test proved nothing"
        assert injector.raised_at - silent < GRACE, "the 409 must come before the deadline to prove anything"
    finally:
        kubelet.crash()
