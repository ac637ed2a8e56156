"""Who owns what: ordinal → pod → claim (name, uid) → PV → node, plus the volume's own stamp.

The cluster side comes from the API (pods and claims of the StatefulSet); the volume id comes
from the writer itself (``GET <pod URL>/identity`` answers the stamp it found or wrote on its
volume), so a claim silently bound to another volume shows up as a changed id even when every
API object looks the same. :func:`identity_from_objects` is the pure half (tested on hand-built
objects); :func:`read_identity` fetches and calls it.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterable, Mapping

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness import facts
from harness.kube import apply as kube_apply
from harness.kube import endpoints as kube_endpoints


class IdentityError(Exception):
    """The map cannot be read (API refused, set missing); one line naming what."""


def claim_name(template: str, statefulset: str, ordinal: int) -> str:
    """The claim the StatefulSet controller makes for an ordinal (upstream getPersistentVolumeClaimName)."""
    return f"{template}-{statefulset}-{ordinal}"


def identity_from_objects(
    statefulset: str,
    claim_template: str,
    *,
    ordinals: Iterable[int],
    pods: Iterable[k8s_client.V1Pod],
    claims: Iterable[k8s_client.V1PersistentVolumeClaim],
    volume_ids: Mapping[int, str | None] | None = None,
) -> tuple[facts.OrdinalIdentity, ...]:
    """One :class:`~harness.facts.OrdinalIdentity` per ordinal, from listed objects.

    A pod being deleted is still the ordinal's pod until its replacement exists (a live
    replacement wins). The node is the pod's ``spec.nodeName`` (None while unscheduled or with
    no pod); the volume is the claim's bound PV name (None while Pending). An ordinal without a
    claim gets an empty ``claim_uid`` so the identity checker sees the change.
    """
    pods_by_ordinal: dict[int, k8s_client.V1Pod] = {}
    for pod in pods:
        ordinal = kube_endpoints.pod_ordinal(pod, statefulset)
        if ordinal is None:
            continue
        seen = pods_by_ordinal.get(ordinal)
        if seen is None or (_deleting(seen) and not _deleting(pod)):
            pods_by_ordinal[ordinal] = pod
    claims_by_name = {c.metadata.name: c for c in claims if c.metadata is not None and c.metadata.name}
    ids = volume_ids or {}
    out: list[facts.OrdinalIdentity] = []
    for ordinal in sorted(set(ordinals)):
        name = claim_name(claim_template, statefulset, ordinal)
        claim = claims_by_name.get(name)
        owner = pods_by_ordinal.get(ordinal)
        out.append(facts.OrdinalIdentity(
            ordinal=ordinal,
            pod=str(owner.metadata.name) if owner is not None and owner.metadata else f"{statefulset}-{ordinal}",
            claim=name,
            claim_uid=str(claim.metadata.uid or "") if claim is not None and claim.metadata is not None else "",
            volume=(claim.spec.volume_name or None) if claim is not None and claim.spec is not None else None,
            node=(owner.spec.node_name or None) if owner is not None and owner.spec is not None else None,
            volume_id=ids.get(ordinal),
        ))
    return tuple(out)


def _deleting(pod: k8s_client.V1Pod) -> bool:
    return pod.metadata is not None and pod.metadata.deletion_timestamp is not None


def stamp_volume_id(body: Mapping[str, object]) -> str | None:
    """The volume id in a writer's ``/identity`` answer (None when it has no stamp)."""
    stamp = body.get("stamp")
    if isinstance(stamp, Mapping):
        value = stamp.get("volume_id")
        return value if isinstance(value, str) and value else None
    return None


def fetch_volume_id(url: str, *, timeout_s: float = 5.0) -> str | None:
    """Ask the writer at ``url`` which volume it serves; None when it cannot say (not up, no stamp).

    A 409 (stamp names another ordinal) still carries the stamp: that volume id is the truth
    about what is mounted, and the checker will call the swap.
    """
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", "/identity")
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return None
    return stamp_volume_id(body) if isinstance(body, dict) else None


def read_identity(
    api: k8s_client.ApiClient,
    namespace: str,
    statefulset: str,
    *,
    urls: Mapping[int, str] | None = None,
    ordinals: Iterable[int] | None = None,
) -> tuple[facts.OrdinalIdentity, ...]:
    """The map for every ordinal of the set (``spec.replicas`` unless ``ordinals`` is given),
    each volume id asked from the pod at ``urls[ordinal]``."""
    apps = k8s_client.AppsV1Api(api)
    core = k8s_client.CoreV1Api(api)
    try:
        sts = apps.read_namespaced_stateful_set(statefulset, namespace)
        spec = sts.spec
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.selector.match_labels or {}).items()))
        templates = spec.volume_claim_templates or []
        if len(templates) != 1 or templates[0].metadata is None or not templates[0].metadata.name:
            raise IdentityError(f"StatefulSet {namespace}/{statefulset} must have exactly one named claim template")
        template = str(templates[0].metadata.name)
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        claims = core.list_namespaced_persistent_volume_claim(namespace).items
    except k8s_exceptions.ApiException as exc:
        raise IdentityError(
            f"cannot read the identity map of {namespace}/{statefulset} ({kube_apply.describe_api_error(exc)})"
        ) from None
    except urllib3_exceptions.HTTPError as exc:
        raise IdentityError(f"cannot reach the API server to read {namespace}/{statefulset}'s map ({exc})") from None
    wanted = list(ordinals) if ordinals is not None else list(range(spec.replicas or 0))
    ids = {o: fetch_volume_id(u) for o, u in (urls or {}).items() if o in wanted}
    return identity_from_objects(statefulset, template, ordinals=wanted, pods=pods, claims=claims, volume_ids=ids)


def node_names(api: k8s_client.ApiClient) -> tuple[str, ...]:
    """The cluster's nodes, where ordinals (and their local volumes) can be placed."""
    try:
        items = k8s_client.CoreV1Api(api).list_node().items
    except k8s_exceptions.ApiException as exc:
        raise IdentityError(f"cannot list nodes ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise IdentityError(f"cannot reach the API server to list nodes ({exc})") from None
    return tuple(sorted(str(n.metadata.name) for n in items if n.metadata is not None and n.metadata.name))
