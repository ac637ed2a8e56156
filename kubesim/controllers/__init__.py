"""The controllers the control plane runs, listed by name so no module imports another at import time.

``CONTROLLERS`` is a list of ``(name, "module:factory")``; the factory takes no arguments and
returns a :class:`kubesim.controllers.runtime.Controller`. :func:`load` imports them when the
control plane starts and fails loudly (naming the entry) if a module or factory is missing — a
controller silently absent would make every scenario lie.

Owners: gc (K1), statefulset (K2), volumes/scheduler (K3), nodelifecycle/tainteviction/disruption
(K4). Add an entry when your module lands; the control plane starts them in this order.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubesim.controllers import runtime

CONTROLLERS: list[tuple[str, str]] = [
    ("garbagecollector", "kubesim.controllers.gc:new"),
    ("statefulset", "kubesim.controllers.statefulset:new_controller"),
    ("scheduler", "kubesim.controllers.scheduler:new_scheduler"),
    ("persistentvolume-binder", "kubesim.controllers.volumes_binder:new_binder"),
    ("volume-provisioner", "kubesim.controllers.volumes_provisioner:new_provisioner"),
    ("volume-reclaimer", "kubesim.controllers.volumes_reclaim:new_reclaimer"),
    ("pvc-protection", "kubesim.controllers.volumes_protection:new_claim_protection"),
    ("pv-protection", "kubesim.controllers.volumes_protection:new_volume_protection"),
    ("nodelifecycle", "kubesim.controllers.nodelifecycle:new"),
    ("tainteviction", "kubesim.controllers.tainteviction:new"),
    ("disruption", "kubesim.controllers.disruption:new"),
    ("disruption-stale-pods", "kubesim.controllers.disruption:new_stale_pods"),
    ("endpoint", "kubesim.controllers.endpoints:new"),
    ("endpointslice", "kubesim.controllers.endpointslice:new"),
    # the cluster add-ons kind runs as pods, here in the control plane (inside the cluster's network)
    ("coredns", "kubesim.controllers.clusterdns:new"),
    ("kube-proxy", "kubesim.controllers.serviceproxy:new"),

]


class ControllerLoadError(RuntimeError):
    pass


def load(entries: list[tuple[str, str]] | None = None,
         only: frozenset[str] | None = None) -> list[runtime.Controller]:
    """Instantiate the listed controllers (``only``: a subset by name); raise naming any that cannot load."""
    chosen = CONTROLLERS if entries is None else entries
    if only is not None:
        unknown = only - {name for name, _ in chosen}
        if unknown:
            raise ControllerLoadError(f"unknown controller(s) {sorted(unknown)}; known: {[n for n, _ in chosen]}")
    out: list[runtime.Controller] = []
    for name, target in chosen:
        if only is not None and name not in only:
            continue
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ControllerLoadError(f"controller {name!r}: cannot import {module_name}: {exc}") from exc
        factory = getattr(module, attr, None)
        if factory is None or not callable(factory):
            raise ControllerLoadError(f"controller {name!r}: {module_name} has no factory {attr!r}")
        out.append(factory())
    return out
