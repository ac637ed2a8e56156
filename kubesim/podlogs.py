"""pods/log for the process kubelets: read the container log files the kubelet writes.

The kubelets run on this machine, so the API server reads their files directly instead of
proxying to a kubelet HTTP endpoint (upstream: apiserver → kubelet ``/containerLogs``). Layout,
written by ``kubesim.kubelet`` (one file per container instance, named by its restart count)::

    DIR/nodes/<node>/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log

The highest-numbered file is the running (or last) instance and the next lower one is
``previous`` — found by listing, not from ``status.restartCount``, so a status update that lags
the kubelet's new file never serves the wrong instance. Errors follow upstream's wording
(``pkg/kubelet/kuberuntime/kuberuntime_container.go`` / ``pkg/kubelet/kubelet_pods.go``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubesim.apiserver import errors, subresources

_LOG_NAME = re.compile(r"^(\d+)\.log$")


def container_dir(state_dir: Path, pod: Mapping[str, Any], container: str) -> Path:
    meta = pod.get("metadata") or {}
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    return (state_dir / "nodes" / node / "pods" / f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"
            / container)


def instances(directory: Path) -> list[tuple[int, Path]]:
    """``(restartCount, path)`` of every log file of the container, oldest first."""
    try:
        names = [p for p in directory.iterdir() if _LOG_NAME.match(p.name)]
    except OSError:
        return []
    return sorted((int(_LOG_NAME.match(p.name).group(1)), p) for p in names)  # type: ignore[union-attr]


def _int(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise errors.bad_request(f"{key}: invalid value {raw!r}: must be an integer") from None
    if value < 0:
        raise errors.bad_request(f"{key}: invalid value {value}: must be greater than or equal to 0")
    return value


def _waiting_reason(pod: Mapping[str, Any], container: str) -> str:
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == container:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            return str(waiting.get("reason") or "ContainerCreating")
    return "ContainerCreating"


def read(state_dir: Path, pod: Mapping[str, Any], container: str, query: Mapping[str, str]) -> bytes:
    """The log bytes ``GET pods/<name>/log`` answers (``previous``, ``tailLines``, ``limitBytes``)."""
    name = (pod.get("metadata") or {}).get("name")
    found = instances(container_dir(state_dir, pod, container))
    previous = str(query.get("previous", "")).lower() in ("true", "1")
    if previous:
        if len(found) < 2:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        path = found[-2][1]
    else:
        if not found:
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {_waiting_reason(pod, container)}')
        path = found[-1][1]
    try:
        data = path.read_bytes()
    except OSError:
        return b""
    tail = _int(query, "tailLines")
    if tail is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail:]) if tail else b""
    limit = _int(query, "limitBytes")
    if limit is not None:
        data = data[:limit]
    return data


def install(state_dir: Path) -> None:
    """Serve pods/log from this state directory's kubelet log files (the API server's seam)."""
    root = state_dir.resolve()

    def source(pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes | None:
        return read(root, pod, container, query)

    subresources.log_source = source
