"""The namespace's final object state, as YAML, for the run folder: what a person debugging a
failed run looks at first (``kubectl get all,pvc,events -o yaml`` plus the PVs they bind).

Best effort by design: it runs after a failure too, when the API may be the thing that broke, so
each kind that cannot be listed is noted in the file instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions


def dump_namespace(api: k8s_client.ApiClient, namespace: str, dest: Path) -> Path:
    """Write ``dest/objects.yaml``: the namespace's pods, claims, StatefulSets, PDBs, services and
    events, the PVs its claims bind, and the nodes; returns the file."""
    core, apps, policy = k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api), k8s_client.PolicyV1Api(api)
    listings: list[tuple[str, Callable[[], object]]] = [
        ("statefulsets", lambda: apps.list_namespaced_stateful_set(namespace)),
        ("pods", lambda: core.list_namespaced_pod(namespace)),
        ("persistentvolumeclaims", lambda: core.list_namespaced_persistent_volume_claim(namespace)),
        ("poddisruptionbudgets", lambda: policy.list_namespaced_pod_disruption_budget(namespace)),
        ("services", lambda: core.list_namespaced_service(namespace)),
        ("events", lambda: core.list_namespaced_event(namespace)),
        ("persistentvolumes", core.list_persistent_volume),
        ("nodes", core.list_node),
    ]
    doc: dict[str, object] = {"namespace": namespace}
    for kind, list_fn in listings:
        try:
            items = api.sanitize_for_serialization(list_fn()).get("items", [])  # type: ignore[no-untyped-call]
        except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError, OSError) as exc:
            doc[kind] = f"could not list: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        if kind == "persistentvolumes":
            items = [pv for pv in items if ((pv.get("spec") or {}).get("claimRef") or {}).get("namespace") == namespace]
        doc[kind] = items
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "objects.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path
