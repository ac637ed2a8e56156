"""The periods of the control plane and kubelets, in one frozen dataclass tests can shorten.

Why one place: node lifecycle, taint eviction, the kubelet's heartbeats and its CrashLoopBackOff
are coupled (a kubelet must heartbeat well inside the node monitor grace period), so ``kubesim up``
takes them as flags once, records them in ``state.json`` and hands the same values to the control
plane and every kubelet as ``KUBESIM_*`` environment variables (``to_env`` / ``from_env``). A
restarted component (``kubesim node restore``, a control-plane restart) therefore gets the same
periods as the cluster it rejoins.

Defaults are upstream's (kube-controller-manager, kubelet, kube-apiserver flags):
node-monitor-period 5s, node-monitor-grace-period 50s (40s before v1.29 raised it, kubernetes
issue #121793; kubesim reports the version in kubesim/version.py), node-startup-grace-period 60s, default
not-ready/unreachable toleration 300s, kubelet nodeStatusUpdateFrequency 10s and lease duration
40s (renewed every 10s), container restart backoff 10s doubling to 300s, pod termination grace from
the pod (``terminationGracePeriodSeconds``, 30s by default, enforced by admission defaults).

Timing profiles (``kubesim up --timing``): ``upstream`` (the default) probes readiness at
``initialDelaySeconds`` and then every ``periodSeconds`` as upstream's prober does, and makes a
container wait ``image_pull_time`` (1s) for a pull (``imagePullPolicy: Always``, or an image the
node has not pulled yet). ``fast`` is kubesim's old shortcut for conformance-style tests that are
about semantics rather than timing: readiness retried every 0.1s until it first succeeds, pulls
instant. Nothing a scenario passes on kubesim may depend on the ``fast`` profile, so the harness
always runs ``upstream``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"4s"``, ``"500ms"``, ``"1m"``, ``"2.5"`` (seconds) → seconds; ValueError names the accepted forms."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; use e.g. 4s, 500ms, 1m or a number of seconds")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclasses.dataclass(frozen=True)
class ControllerSettings:
    """Every period a controller or kubelet waits for (seconds)."""

    node_monitor_period: float = 5.0
    """How often node lifecycle re-checks node health (kube-controller-manager --node-monitor-period)."""
    node_monitor_grace: float = 50.0
    """A node silent this long becomes Ready=Unknown (--node-monitor-grace-period)."""
    node_startup_grace: float = 60.0
    """A node that never reported gets this long before it is marked Unknown (--node-startup-grace-period)."""
    toleration_seconds: int = 300
    """tolerationSeconds of the default not-ready/unreachable tolerations admission adds to pods."""
    node_status_interval: float = 10.0
    """How often a kubelet renews its Lease and posts node status (nodeStatusUpdateFrequency)."""
    node_lease_duration: float = 40.0
    """Lease spec.leaseDurationSeconds the kubelet writes (kubelet nodeLeaseDurationSeconds)."""
    crashloop_base: float = 10.0
    """First container restart / image pull back-off (kubelet backOffPeriod)."""
    crashloop_max: float = 300.0
    """Back-off cap (kubelet MaxContainerBackOff)."""
    probe_fast_start: float = 0.0
    """Until a readiness probe first succeeds, retry it this often instead of every periodSeconds (0: as
    upstream's prober; the ``fast`` timing profile: 0.1). Env ``KUBESIM_PROBE_FAST_START``."""
    image_pull_time: float = 1.0
    """How long a pull takes (``imagePullPolicy: Always``, or an image not yet on the node); pulls on one node
    are serialised as the kubelet's default ``serializeImagePulls: true``. 1s is the floor of a real pull (a
    registry round trip to resolve the manifest plus unpacking a small cached image); 0 in the ``fast`` profile."""
    requeue_base: float = 0.05
    """First retry after a reconcile raised (client-go's per-item limiter starts at 5 ms; ours is coarser)."""
    requeue_max: float = 30.0
    """Retry cap after repeated reconcile failures."""

    def to_env(self) -> dict[str, str]:
        """``KUBESIM_<FIELD>=value`` for every field: how ``up`` hands settings to child processes."""
        return {f"KUBESIM_{f.name.upper()}": str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ControllerSettings:
        """Read ``KUBESIM_<FIELD>`` values (durations like ``4s`` accepted); unset fields keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # field name -> coerced value
        for f in dataclasses.fields(cls):
            raw = env.get(f"KUBESIM_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        return cls.derived(values)

    @classmethod
    def derived(cls, values: Mapping[str, Any]) -> ControllerSettings:
        """Settings from the given fields; heartbeat periods not given scale with a shortened grace period.

        Upstream's ratios: the kubelet renews every grace/4 (10 s of 40 s), its lease lasts the grace
        period, node lifecycle looks every grace/8 (5 s of 40 s). So ``--node-monitor-grace 4s`` alone
        gives a cluster that works rather than one where every node flaps NotReady.
        """
        chosen = dict(values)
        grace = float(chosen.get("node_monitor_grace", cls.node_monitor_grace))
        chosen.setdefault("node_status_interval", min(cls.node_status_interval, grace / 4))
        chosen.setdefault("node_lease_duration", min(cls.node_lease_duration, grace))
        chosen.setdefault("node_monitor_period", min(cls.node_monitor_period, grace / 8))
        return cls(**chosen).validated()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ControllerSettings:
        names = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: _coerce(k, names[k].type, str(v)) for k, v in data.items() if k in names}
        return cls(**values).validated()

    def replace(self, **changes: Any) -> ControllerSettings:
        return dataclasses.replace(self, **changes).validated()

    def validated(self) -> ControllerSettings:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"{f.name.replace('_', '-')} must not be negative (got {value})")
        if self.crashloop_max < self.crashloop_base:
            raise ValueError(f"crashloop-max ({self.crashloop_max}s) must be at least crashloop-base "
                             f"({self.crashloop_base}s)")
        if self.node_status_interval >= self.node_monitor_grace > 0:
            raise ValueError(f"node-status-interval ({self.node_status_interval}s) must be shorter than "
                             f"node-monitor-grace ({self.node_monitor_grace}s), or every node flaps NotReady")
        return self


#: Timing profiles for ``kubesim up --timing``: the fields each one sets (explicit flags still win).
TIMINGS: dict[str, dict[str, float]] = {
    "upstream": {"probe_fast_start": 0.0, "image_pull_time": 1.0},
    "fast": {"probe_fast_start": 0.1, "image_pull_time": 0.0},
}
DEFAULT_TIMING = "upstream"


def _coerce(name: str, type_name: object, raw: str) -> float | int:
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"KUBESIM_{name.upper()}: {exc}") from None
    if type_name in ("int", int):
        return int(seconds)
    return seconds
