"""EndpointSlice controller: keeps every selector Service's ``discovery.k8s.io/v1`` EndpointSlices current.

Follows ``pkg/controller/endpointslice/endpointslice_controller.go``; the decisions are the pure
planner in :mod:`kubesim.controllers.endpointslice_reconciler`. Keys are ``namespace/name`` of
Services, queued on Service events, on pod events that can change a Service's endpoints (a pod
added or deleted, its readiness, IPs, deletion, labels, hostname/subdomain changed) and on
changes to the Service's slices that this controller did not write itself.

Like upstream it tracks the resourceVersions it wrote (``EndpointSliceTracker``): the informer
cache must have caught up with its own last writes before it plans again, or a slice it just
created would be created twice (``StaleSlices`` → the sync is retried); a slice someone else
changed or deleted queues the Service again after a second (``endpointSliceChangeMinSyncDelay``).
Services of type ExternalName and Services without a selector get no slices; slices being
deleted are ignored; a Service being deleted gets no new slices (its ownerReference lets the
garbage collector remove the old ones). Events: ``FailedToUpdateEndpointSlices`` (Warning) on
the Service when a write fails.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from kubesim import client
from kubesim.controllers import endpoints_common as common
from kubesim.controllers import endpointslice_reconciler as reconciler
from kubesim.controllers import runtime

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.endpointslice")

SLICE_CHANGE_DELAY = 1.0
"""endpointSliceChangeMinSyncDelay: a slice changed behind the controller's back is looked at after this."""
SERVICE_INDEX = "service"
STALE_RETRY = 0.1
"""The slice cache has not caught up with this controller's own writes yet: look again shortly (upstream: an
error, retried with the queue's back-off from 1 s)."""
MISSING_NODE_RETRY = 1.0
"""A pod whose node the cache does not know was left out: retried as upstream's first back-off step."""


def _service_key_of_slice(es: Obj) -> str | None:
    name = (common.meta(es).get("labels") or {}).get(reconciler.SERVICE_NAME_LABEL)
    return f"{common.meta(es).get('namespace') or ''}/{name}" if name else None


def _managed(es: Obj) -> bool:
    return (common.meta(es).get("labels") or {}).get(reconciler.MANAGED_BY_LABEL) == reconciler.CONTROLLER_NAME


def _rv(obj: Obj) -> int:
    text = str(common.meta(obj).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


class SliceTracker:
    """EndpointSliceTracker: per Service, the resourceVersion of each slice this controller wrote (None: deleted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expected: dict[str, dict[str, int | None]] = {}

    def update(self, es: Obj) -> None:
        key = _service_key_of_slice(es)
        if key is not None:
            with self._lock:
                self._expected.setdefault(key, {})[str(common.meta(es).get("uid"))] = _rv(es)

    def expect_deletion(self, es: Obj) -> None:
        key = _service_key_of_slice(es)
        if key is not None:
            with self._lock:
                self._expected.setdefault(key, {})[str(common.meta(es).get("uid"))] = None

    def should_sync(self, es: Obj) -> bool:
        """A slice event is news unless it shows exactly what this controller wrote."""
        key = _service_key_of_slice(es)
        with self._lock:
            expected = self._expected.get(key or "", {})
            uid = str(common.meta(es).get("uid"))
            return uid not in expected or expected[uid] != _rv(es)

    def handle_deletion(self, es: Obj) -> bool:
        """Forget a deleted slice; True if this controller deleted it."""
        key = _service_key_of_slice(es)
        uid = str(common.meta(es).get("uid"))
        with self._lock:
            expected = self._expected.get(key or "", {})
            wanted = uid in expected and expected[uid] is None
            expected.pop(uid, None)
            return wanted

    def stale(self, service_key: str, slices: list[Obj]) -> bool:
        """StaleSlices: a slice written later than the cache shows, created but not seen, or deleted but still seen."""
        seen = {str(common.meta(es).get("uid")): _rv(es) for es in slices}
        with self._lock:
            expected = dict(self._expected.get(service_key, {}))
        for uid, rv in expected.items():
            if rv is None:
                if uid in seen:
                    return True
            elif uid not in seen or seen[uid] < rv:
                return True
        return False

    def forget(self, service_key: str) -> None:
        with self._lock:
            self._expected.pop(service_key, None)


class EndpointSliceController:
    name = "endpointslice"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component("endpoint-slice-controller")
        self.tracker = SliceTracker()
        self.triggers = common.TriggerTimeTracker()
        self.services = mgr.informer("services")
        self.pods = mgr.informer("pods")
        self.nodes = mgr.informer("nodes")
        self.slices = mgr.informer("endpointslices")
        self.slices.add_index(SERVICE_INDEX, lambda es: [k for k in [_service_key_of_slice(es)] if k])
        self.services.add_handler(on_add=self._service_changed, on_update=lambda _o, n: self._service_changed(n),
                                  on_delete=self._service_changed)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added)
        self.slices.add_handler(on_add=self._slice_added, on_update=self._slice_updated,
                                on_delete=self._slice_deleted)

    # ----- events -----------------------------------------------------------------------------

    def _service_changed(self, svc: Obj) -> None:
        self.mgr.enqueue(self, common.key(svc))

    def _pod_added(self, pod: Obj) -> None:
        for key in common.pod_added_keys(self.services.list, pod):
            self.mgr.enqueue(self, key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in common.pod_updated_keys(self.services.list, old, new):
            self.mgr.enqueue(self, key)

    def _queue_for_slice(self, es: Obj) -> None:
        key = _service_key_of_slice(es)
        if key is not None:
            self.mgr.enqueue_after(self, key, SLICE_CHANGE_DELAY)

    def _slice_added(self, es: Obj) -> None:
        if _managed(es) and self.tracker.should_sync(es):
            self._queue_for_slice(es)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        if _service_key_of_slice(old) != _service_key_of_slice(new):
            self._queue_for_slice(new)
            self._queue_for_slice(old)
            return
        if _managed(old) != _managed(new) or (_managed(new) and self.tracker.should_sync(new)):
            self._queue_for_slice(new)

    def _slice_deleted(self, es: Obj) -> None:
        if _managed(es) and not self.tracker.handle_deletion(es):
            self._queue_for_slice(es)

    # ----- sync -------------------------------------------------------------------------------

    def _node(self, name: str) -> Obj | None:
        return self.nodes.get("", name) if name else None

    def reconcile(self, key: str) -> float | None:
        namespace, name = runtime.split_key(key)
        svc = self.services.get(namespace, name)
        if svc is None:
            self.triggers.forget(key)
            self.tracker.forget(key)
            return None
        spec = common.spec(svc)
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return None
        selector = spec["selector"]
        pods = [p for p in self.pods.list(namespace)
                if common.selector_matches(selector, dict(common.meta(p).get("labels") or {}))]
        slices = [es for es in self.slices.by_index(SERVICE_INDEX, key)
                  if _managed(es) and not common.meta(es).get("deletionTimestamp")]
        if self.tracker.stale(key, slices):
            log.debug("EndpointSlice informer cache is out of date for Service %s; retrying", key)
            return STALE_RETRY
        trigger = self.triggers.compute(svc, pods)
        plan = reconciler.plan(svc, pods, slices, self._node)
        try:
            self._finalize(svc, plan, trigger)
        except client.ApiError as exc:
            if not isinstance(exc, client.Conflict):
                self.recorder.warning(svc, "FailedToUpdateEndpointSlices",
                                      f"Error updating Endpoint Slices for Service {key}: {exc}")
            raise
        if plan.errors:
            log.info("Service %s: %s; retrying", key, "; ".join(plan.errors))
            return MISSING_NODE_RETRY
        return None

    def _finalize(self, svc: Obj, plan: reconciler.Plan, trigger: Any) -> None:
        stamp = common.format_rfc3339nano(trigger) if trigger is not None else None
        namespace = str(common.meta(svc).get("namespace") or "")
        if not common.meta(svc).get("deletionTimestamp"):
            for es in plan.create:
                _stamp(es, stamp)
                try:
                    created = self.api.create("endpointslices", es, namespace)
                except client.ApiError as exc:
                    if _namespace_terminating(exc):
                        return
                    raise
                self.tracker.update(created)
                log.info("created EndpointSlice %s/%s for Service %s (%d endpoints)", namespace,
                         common.meta(created).get("name"), common.key(svc), len(created.get("endpoints") or []))
        for es in plan.update:
            _stamp(es, stamp)
            updated = self.api.update("endpointslices", es)
            self.tracker.update(updated)
        for es in plan.delete:
            with contextlib.suppress(client.NotFound):
                self.api.delete("endpointslices", str(common.meta(es)["name"]), namespace)
            self.tracker.expect_deletion(es)


def _stamp(es: Obj, stamp: str | None) -> None:
    """addTriggerTimeAnnotation."""
    annotations = dict(common.meta(es).get("annotations") or {})
    if stamp is not None:
        annotations[common.TRIGGER_TIME_ANNOTATION] = stamp
    else:
        annotations.pop(common.TRIGGER_TIME_ANNOTATION, None)
    if annotations:
        es["metadata"]["annotations"] = annotations
    else:  # upstream's empty map is omitted from the JSON (omitempty)
        es["metadata"].pop("annotations", None)


def _namespace_terminating(exc: client.ApiError) -> bool:
    causes = ((exc.body or {}).get("details") or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes if isinstance(c, dict))


def new() -> EndpointSliceController:
    return EndpointSliceController()
