"""What the Endpoints and EndpointSlice controllers share, after ``staging/src/k8s.io/endpointslice/util``.

Pure functions over plain JSON objects: which pods belong in a Service's endpoints
(``ShouldPodBeInEndpoints``), which Services a pod change concerns (``GetServicesToUpdateOnPodChange``),
the container port a service port targets (``FindPort``), when an address carries the pod's hostname
(``ShouldSetHostname``: the headless-Service DNS names ``<hostname>.<subdomain>.<ns>.svc``), and the
``endpoints.kubernetes.io/last-change-trigger-time`` bookkeeping (``TriggerTimeTracker``).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
CLUSTER_IP_NONE = "None"


def meta(obj: Obj) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def spec(obj: Obj) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def status(obj: Obj) -> Obj:
    value = obj.get("status")
    return value if isinstance(value, dict) else {}


def key(obj: Obj) -> str:
    return f"{meta(obj).get('namespace') or ''}/{meta(obj).get('name') or ''}"


def ready_condition(pod: Obj) -> Obj | None:
    for cond in status(pod).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_terminal(pod: Obj) -> bool:
    return status(pod).get("phase") in ("Succeeded", "Failed")


def pod_ips(pod: Obj) -> list[str]:
    ips = [str(p.get("ip")) for p in status(pod).get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if not ips and status(pod).get("podIP"):
        ips = [str(status(pod)["podIP"])]
    return ips


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints: not terminal, has an IP, and (unless asked) not being deleted."""
    if is_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not meta(pod).get("deletionTimestamp")


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    """ShouldSetHostname: the pod has a hostname and its subdomain names this Service (same namespace)."""
    hostname = spec(pod).get("hostname")
    return bool(hostname) and spec(pod).get("subdomain") == meta(svc).get("name") \
        and meta(svc).get("namespace") == meta(pod).get("namespace")


def is_service_ip_set(svc: Obj) -> bool:
    ip = spec(svc).get("clusterIP")
    return bool(ip) and ip != CLUSTER_IP_NONE


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """FindPort: a numeric targetPort as is; a named one from the containers' (and sidecars') named ports."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    candidates = list(spec(pod).get("containers") or [])
    candidates += [c for c in spec(pod).get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in candidates:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def selector_matches(selector: object, labels: dict[str, str]) -> bool:
    """labels.ValidatedSetSelector(service.spec.selector): every pair present; {} selects everything."""
    if not isinstance(selector, dict):
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def services_for_pod(services: Iterable[Obj], namespace: str, labels: dict[str, str]) -> set[str]:
    """getServicesForPod: keys of the Services in the namespace whose (non-nil) selector matches."""
    out = set()
    for svc in services:
        if meta(svc).get("namespace") != namespace or spec(svc).get("selector") is None:
            continue
        if selector_matches(spec(svc).get("selector"), labels):
            out.add(key(svc))
    return out


def _labels(pod: Obj) -> dict[str, str]:
    return dict(meta(pod).get("labels") or {})


def pod_endpoints_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """podEndpointsChanged: (the pod's endpoint may change, the Services it matches may change)."""
    def host_and_domain(pod: Obj) -> tuple[object, object]:
        return spec(pod).get("hostname"), spec(pod).get("subdomain")

    labels_changed = _labels(old) != _labels(new) or host_and_domain(old) != host_and_domain(new)
    if meta(old).get("deletionTimestamp") != meta(new).get("deletionTimestamp"):
        return True, labels_changed
    if is_pod_ready(old) != is_pod_ready(new):
        return True, labels_changed
    if pod_ips(old) != pod_ips(new):
        return True, labels_changed
    return False, labels_changed


def services_to_update_on_pod_change(services: list[Obj], old: Obj, new: Obj) -> set[str]:
    """GetServicesToUpdateOnPodChange."""
    if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
        return set()
    pod_changed, labels_changed = pod_endpoints_changed(old, new)
    if not pod_changed and not labels_changed:
        return set()
    namespace = str(meta(new).get("namespace") or "")
    current = services_for_pod(services, namespace, _labels(new))
    if not labels_changed:
        return current
    before = services_for_pod(services, namespace, _labels(old))
    if pod_changed:
        return current | before
    return current ^ before


def parse_time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_rfc3339nano(moment: datetime.datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds without trailing zeros, ``Z``."""
    moment = moment.astimezone(datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


class TriggerTimeTracker:
    """TriggerTimeTracker: the time of the oldest change (a pod's Ready transition, the Service's creation)
    not yet reflected in the Service's endpoint objects; None when nothing changed since the last sync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, tuple[datetime.datetime | None, dict[str, datetime.datetime]]] = {}

    def compute(self, svc: Obj, pods: list[Obj]) -> datetime.datetime | None:
        service_key = key(svc)
        with self._lock:
            known = service_key in self._states
            last_service, last_pods = self._states.get(service_key, (None, {}))
        changed: datetime.datetime | None = None
        pod_times: dict[str, datetime.datetime] = {}
        for pod in pods:
            cond = ready_condition(pod)
            moment = parse_time(cond.get("lastTransitionTime")) if cond is not None else None
            if moment is None:
                continue
            name = str(meta(pod).get("name") or "")
            pod_times[name] = moment
            previous = last_pods.get(name)
            if previous is None or moment > previous:
                changed = moment if changed is None else min(changed, moment)
        created = parse_time(meta(svc).get("creationTimestamp"))
        if created is not None and (last_service is None or created > last_service):
            changed = created if changed is None else min(changed, created)
        with self._lock:
            self._states[service_key] = (created, pod_times)
        if not known:
            return created
        return changed

    def forget(self, service_key: str) -> None:
        with self._lock:
            self._states.pop(service_key, None)


def pod_added_keys(list_services: Callable[[str], list[Obj]], pod: Obj) -> set[str]:
    """The Services a new pod may join (both controllers' addPod): the informer's namespace list, matched."""
    namespace = str(meta(pod).get("namespace") or "")
    return services_for_pod(list_services(namespace), namespace, dict(meta(pod).get("labels") or {}))


def pod_updated_keys(list_services: Callable[[str], list[Obj]], old: Obj, new: Obj) -> set[str]:
    """The Services a changed pod joins, leaves or changes within (both controllers' updatePod)."""
    return services_to_update_on_pod_change(list_services(str(meta(new).get("namespace") or "")), old, new)
