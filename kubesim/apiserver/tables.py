"""Server-side printing: ``meta.k8s.io/v1 Table`` responses for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json``
and prints whatever columns the server sends (with only plain objects it can show nothing but
NAME and AGE). Columns and cell formats follow ``pkg/printers/internalversion/printers.go``
(pod READY/STATUS/RESTARTS, node STATUS/ROLES/VERSION, ...) and ages follow apimachinery's
``duration.HumanDuration``; kinds without a printer get upstream's default ``Name`` /
``Created At`` columns.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable
from typing import Any

from kubesim.apiserver import store, tables_discovery

Obj = dict[str, Any]
Cell = str | int


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    cell: Callable[[Obj], Cell]
    type: str = "string"
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.name,
                "priority": self.priority}


def wants_table(accept: str) -> bool:
    """True if the client lists a meta.k8s.io/v1 Table among the media types it accepts."""
    for part in accept.split(","):
        params = {p.strip().partition("=")[0]: p.strip().partition("=")[2] for p in part.split(";")[1:]}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
            return True
    return False


CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def _since(stamp: object) -> str:
    if not isinstance(stamp, str) or not stamp:
        return "<unknown>"
    try:
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.UTC) - when).total_seconds())


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _name(obj: Obj) -> Cell:
    return str(_meta(obj).get("name", ""))


def _age(obj: Obj) -> Cell:
    return _since(_meta(obj).get("creationTimestamp"))


NAME = Column("Name", _name, format="name")
AGE = Column("Age", _age)


def _pod_state(pod: Obj) -> tuple[int, int, str, int]:
    """(ready containers, containers, STATUS text, restarts) as printPod computes them."""
    status = _status(pod)
    reason = str(status.get("reason") or status.get("phase") or "")
    containers = _spec(pod).get("containers") or []
    ready = restarts = 0
    running = False
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
        elif cs.get("ready") and state.get("running") is not None:
            running = True
            ready += 1
    if reason == "Completed" and running:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        reason = "Running" if conditions.get("Ready") == "True" else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return ready, len(containers), reason, restarts


def _node_status(node: Obj) -> Cell:
    ready = "Unknown"
    for cond in _status(node).get("conditions") or []:
        if cond.get("type") == "Ready":
            # upstream's printer: "Ready" only for True; False and Unknown both print NotReady
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if _spec(node).get("unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(node: Obj) -> Cell:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in (_meta(node).get("labels") or {}) if k.startswith(prefix))
    return ",".join(r for r in roles if r) or "<none>"


def _node_ip(node: Obj, kind: str) -> Cell:
    for addr in _status(node).get("addresses") or []:
        if addr.get("type") == kind:
            return str(addr.get("address"))
    return "<none>"


def _access_modes(obj: Obj, source: Obj) -> Cell:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    del obj
    return ",".join(short.get(m, m) for m in source.get("accessModes") or [])


def _pvc_status(pvc: Obj) -> Cell:
    return "Terminating" if _meta(pvc).get("deletionTimestamp") else str(_status(pvc).get("phase", ""))


def _event_object(ev: Obj) -> Cell:
    involved = ev.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _event_last_seen(ev: Obj) -> Cell:
    stamp = ev.get("lastTimestamp") or ev.get("eventTime") or _meta(ev).get("creationTimestamp")
    return _since(stamp)


def _sts_ready(sts: Obj) -> Cell:
    return f"{int(_status(sts).get('readyReplicas') or 0)}/{int(_spec(sts).get('replicas', 1) or 0)}"


def _template_containers(sts: Obj, field: str) -> Cell:
    pod = ((_spec(sts).get("template") or {}).get("spec")) or {}
    return ",".join(str(c.get(field, "")) for c in pod.get("containers") or [])


def _pdb_field(field: str) -> Callable[[Obj], Cell]:
    def cell(pdb: Obj) -> Cell:
        value = _spec(pdb).get(field)
        return "N/A" if value is None else str(value)
    return cell


def _ports(svc: Obj) -> Cell:
    out = []
    for port in _spec(svc).get("ports") or []:
        text = f"{port.get('port')}/{port.get('protocol', 'TCP')}"
        if port.get("nodePort"):
            text = f"{port.get('port')}:{port['nodePort']}/{port.get('protocol', 'TCP')}"
        out.append(text)
    return ",".join(out) or "<none>"


COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        NAME,
        Column("Ready", lambda p: "{}/{}".format(*_pod_state(p)[:2])),
        Column("Status", lambda p: _pod_state(p)[2]),
        Column("Restarts", lambda p: str(_pod_state(p)[3])),
        AGE,
        Column("IP", lambda p: str(_status(p).get("podIP") or "<none>"), priority=1),
        Column("Node", lambda p: str(_spec(p).get("nodeName") or "<none>"), priority=1),
        Column("Nominated Node", lambda p: str(_status(p).get("nominatedNodeName") or "<none>"), priority=1),
        Column("Readiness Gates", lambda p: "<none>", priority=1),
    ),
    "StatefulSet": (
        NAME, Column("Ready", _sts_ready), AGE,
        Column("Containers", lambda s: _template_containers(s, "name"), priority=1),
        Column("Images", lambda s: _template_containers(s, "image"), priority=1),
    ),
    "Node": (
        NAME, Column("Status", _node_status), Column("Roles", _node_roles), AGE,
        Column("Version", lambda n: str((_status(n).get("nodeInfo") or {}).get("kubeletVersion") or "")),
        Column("Internal-IP", lambda n: _node_ip(n, "InternalIP"), priority=1),
        Column("External-IP", lambda n: _node_ip(n, "ExternalIP"), priority=1),
    ),
    "Namespace": (NAME, Column("Status", lambda n: str(_status(n).get("phase", ""))), AGE),
    "PersistentVolumeClaim": (
        NAME, Column("Status", _pvc_status),
        Column("Volume", lambda c: str(_spec(c).get("volumeName") or "")),
        Column("Capacity", lambda c: str((_status(c).get("capacity") or {}).get("storage") or "")),
        Column("Access Modes", lambda c: _access_modes(c, _status(c))),
        Column("StorageClass", lambda c: str(_spec(c).get("storageClassName") or "<unset>")),
        Column("VolumeAttributesClass", lambda c: "<unset>"),
        AGE,
    ),
    "PersistentVolume": (
        NAME,
        Column("Capacity", lambda v: str((_spec(v).get("capacity") or {}).get("storage") or "")),
        Column("Access Modes", lambda v: _access_modes(v, _spec(v))),
        Column("Reclaim Policy", lambda v: str(_spec(v).get("persistentVolumeReclaimPolicy") or "")),
        Column("Status", lambda v: "Terminating" if _meta(v).get("deletionTimestamp")
               else str(_status(v).get("phase", ""))),
        Column("Claim", lambda v: "/".join(str((_spec(v).get("claimRef") or {}).get(k, ""))
                                           for k in ("namespace", "name")) if _spec(v).get("claimRef") else ""),
        Column("StorageClass", lambda v: str(_spec(v).get("storageClassName") or "")),
        Column("VolumeAttributesClass", lambda v: "<unset>"),
        Column("Reason", lambda v: str(_status(v).get("reason") or "")),
        AGE,
    ),
    "Event": (
        Column("Last Seen", _event_last_seen),
        Column("Type", lambda e: str(e.get("type") or "")),
        Column("Reason", lambda e: str(e.get("reason") or "")),
        Column("Object", _event_object),
        Column("Message", lambda e: str(e.get("message") or "").strip()),
        Column("Name", _name, priority=1, format="name"),
    ),
    "PodDisruptionBudget": (
        NAME, Column("Min Available", _pdb_field("minAvailable")),
        Column("Max Unavailable", _pdb_field("maxUnavailable")),
        Column("Allowed Disruptions", lambda p: int(_status(p).get("disruptionsAllowed") or 0), type="integer"),
        AGE,
    ),
    "Service": (
        NAME, Column("Type", lambda s: str(_spec(s).get("type") or "ClusterIP")),
        Column("Cluster-IP", lambda s: str(_spec(s).get("clusterIP") or "<none>")),
        Column("External-IP", lambda s: "<none>"), Column("Port(s)", _ports), AGE,
    ),
    "ConfigMap": (NAME, Column("Data", lambda c: len(c.get("data") or {}) + len(c.get("binaryData") or {}),
                               type="integer"), AGE),
    "StorageClass": (
        NAME, Column("Provisioner", lambda s: str(s.get("provisioner") or "")),
        Column("ReclaimPolicy", lambda s: str(s.get("reclaimPolicy") or "Delete")),
        Column("VolumeBindingMode", lambda s: str(s.get("volumeBindingMode") or "Immediate")),
        Column("AllowVolumeExpansion", lambda s: str(bool(s.get("allowVolumeExpansion"))).lower()), AGE,
    ),
    "Lease": (NAME, Column("Holder", lambda le: str(_spec(le).get("holderIdentity") or "")), AGE),
    "Endpoints": (NAME, Column("Endpoints", tables_discovery.endpoints), AGE),
    "EndpointSlice": (
        NAME, Column("AddressType", lambda es: str(es.get("addressType") or "")),
        Column("Ports", tables_discovery.slice_ports), Column("Endpoints", tables_discovery.slice_endpoints), AGE,
    ),
}

DEFAULT = (NAME, Column("Created At", lambda o: str(_meta(o).get("creationTimestamp") or ""), type="date"))


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def table(kind: str, objects: Iterable[tuple[Obj, Obj]], list_meta: Obj, include: str = "Metadata",
          headers: bool = True) -> bytes:
    """A Table of ``(stored, presented)`` pairs: cells from the stored form, rows embed the presented one."""
    columns = COLUMNS.get(kind, DEFAULT)
    rows = []
    for stored, presented in objects:
        row: Obj = {"cells": [col.cell(stored) for col in columns]}
        embedded = _row_object(presented, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    doc: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta}
    if headers:
        doc["columnDefinitions"] = [col.definition() for col in columns]
    doc["rows"] = rows
    return store.dumps(doc)
