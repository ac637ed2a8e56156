"""Which pod, container and process a streaming request reaches, with upstream's errors.

The checks the API server makes before it would dial the kubelet follow
``pkg/registry/core/pod/strategy.go`` (``streamLocation``, ``PortForwardLocation``,
``validateContainer``): a missing pod is 404, a pod without ``spec.nodeName`` or an unknown
container is 400. What the kubelet/runtime would check next (is the sandbox running, is the
container running) is answered from the node's container record, ``DIR/nodes/<node>/
containers.json``, which the process kubelet keeps: ``{"<ns>/<pod>/<container>": {pid, pgid,
uid, start, start_time, id}}`` with ``pid`` the container's PID 1 as the host sees it, ``pgid``
its sandbox shim, and ``start``/``start_time`` their start times (field 22 of /proc/<pid>/stat),
so a recycled pid is never mistaken for the container.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from kubesim.apiserver import errors, resources, rest

Obj = dict[str, Any]

_PODS = resources.by_gvr("", "v1", "pods")
_SERVICES = resources.by_gvr("", "v1", "services")
_ENDPOINTS = resources.by_gvr("", "v1", "endpoints")


@dataclasses.dataclass(frozen=True)
class Running:
    """A running container instance on this machine."""

    key: str
    pid: int
    """PID 1 of the container (host pid namespace)."""
    pgid: int
    """The sandbox shim that started it (it writes the container's log until the container is gone)."""
    container_id: str


def get_pod(api: rest.Api, namespace: str, name: str) -> Obj:
    assert _PODS is not None
    return api.lookup(rest.Target(_PODS, namespace, name)).obj


def get_service(api: rest.Api, namespace: str, name: str) -> Obj:
    assert _SERVICES is not None
    return api.lookup(rest.Target(_SERVICES, namespace, name)).obj


def get_endpoints(api: rest.Api, namespace: str, name: str) -> Obj | None:
    assert _ENDPOINTS is not None
    entry = api.store.get(rest.Target(_ENDPOINTS, namespace, name).rkey, namespace, name)
    return entry.obj if entry is not None else None


def list_pods(api: rest.Api, namespace: str) -> list[Obj]:
    assert _PODS is not None
    items, _rv = api.store.scan(rest.Target(_PODS, namespace).rkey, namespace)
    return [entry.obj for _key, entry in items]


def container_names(pod: Obj) -> list[str]:
    """Init containers, containers, ephemeral containers: podutil.VisitContainers' order."""
    spec = pod.get("spec") or {}
    names: list[str] = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        names += [str(c.get("name")) for c in spec.get(field) or []]
    return names


def validate_container(pod: Obj, container: str) -> str:
    """validateContainer: the only container by default, else the named one must exist."""
    name = str((pod.get("metadata") or {}).get("name"))
    if not container:
        regular = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
        if len(regular) == 1:
            return regular[0]
        if not regular:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(container_names(pod))}]")
    if container not in container_names(pod):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def require_node(pod: Obj) -> str:
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node:
        name = (pod.get("metadata") or {}).get("name")
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    return node


def sandbox_id(pod: Obj) -> str:
    """A stable 64-hex id standing in for the pod's sandbox id in runtime messages."""
    return hashlib.sha256(str((pod.get("metadata") or {}).get("uid")).encode()).hexdigest()


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int, start: object) -> bool:
    """``pid`` is still the process that started at ``start`` and is not a zombie."""
    fields = _stat(pid)
    return pid > 1 and start is not None and len(fields) > 19 and fields[19] == str(start) and fields[0] != "Z"


def _record(state_dir: Path, node: str) -> dict[str, Obj]:
    try:
        data = json.loads((state_dir / "nodes" / node / "containers.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def running(state_dir: Path | None, pod: Obj, container: str) -> Running | None:
    """The container's live instance, or None (not started, exited, or its node's kubelet is gone)."""
    if state_dir is None:
        return None
    meta = pod.get("metadata") or {}
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    key = f"{meta.get('namespace')}/{meta.get('name')}/{container}"
    entry = _record(state_dir, node).get(key)
    if not isinstance(entry, dict) or entry.get("uid") != meta.get("uid"):
        return None
    pid, pgid = int(entry.get("pid") or 0), int(entry.get("pgid") or 0)
    if not alive(pid, entry.get("start_time")) or not alive(pgid, entry.get("start")):
        return None
    return Running(key, pid, pgid, str(entry.get("id") or ""))


def shim_alive(state_dir: Path | None, pod: Obj, container: str) -> bool:
    """The container's shim still runs: its log may still grow (it drains PID 1's output, then exits)."""
    if state_dir is None:
        return False
    meta = pod.get("metadata") or {}
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    entry = _record(state_dir, node).get(f"{meta.get('namespace')}/{meta.get('name')}/{container}")
    if not isinstance(entry, dict) or entry.get("uid") != meta.get("uid"):
        return False
    return alive(int(entry.get("pgid") or 0), entry.get("start"))


def sandbox_ready(state_dir: Path | None, pod: Obj) -> bool:
    """The pod has an address and at least one of its containers runs (kubesim's "sandbox is ready")."""
    status = pod.get("status") or {}
    if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
        return False
    return any(running(state_dir, pod, name) is not None for name in container_names(pod))


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    if ips and isinstance(ips[0], dict) and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return str(status.get("podIP") or "")
