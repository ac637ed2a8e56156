"""What the harness asks of a cluster's authorization, and whether the cluster grants it.

Every API call the harness makes is one :class:`Access` (verb, resource, API group, subresource):
:data:`ALWAYS` is what any StatefulSet scenario does (deploy, watch, read back, dump, clean up),
:data:`BY_NEMESIS` what each fault adds. ``infra/rbac/`` grants exactly these, and a unit test
checks both against the calls found in ``harness/kube`` (tests/unit/test_infra_rbac.py).

:func:`may` is the capability question for one access, :func:`refused` for a whole scenario. On
a cluster the harness made itself (embedded, kind) the answer is yes without asking: it holds the
admin credentials. On an existing cluster each access is one SelfSubjectAccessReview; a server
without ``authorization.k8s.io`` (kubesim today) answers "unknown", which never skips anything —
only a real denial does, and the skip names the verbs and the authorizer's reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from harness.clusters import base

#: Namespaced questions are asked for a namespace like a scenario's (``chaos-<scenario>-<hex>``):
#: it does not exist yet, so only cluster-wide grants (or a binding made for this name) can allow it.
PROBE_NAMESPACE: Final = "chaos-access-check"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Access:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    #: False for nodes, namespaces, storage classes, PVs (asked without a namespace)
    namespaced: bool = True

    def __str__(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {what}" + (f".{self.group}" if self.group else "")


@dataclasses.dataclass(frozen=True, slots=True)
class Permission:
    access: Access
    #: None: the cluster cannot say (no authorization API); never a reason to skip
    allowed: bool | None
    reason: str


def _each(verbs: str, resource: str, group: str = "", subresource: str = "", *,
          namespaced: bool = True) -> tuple[Access, ...]:
    return tuple(Access(v, resource, group, subresource, namespaced) for v in verbs.split())


#: What every StatefulSet scenario does, whatever its faults: the namespace (labelled, created
#: and deleted by the run), the set with its Service and PDB (read / create / PUT / delete),
#: rollout and endpoint watches, port-forwards (reach auto may pick them), verifier pods and their
#: logs, the read-back's scale-down or set delete, claims deleted at the end, the object dump
#: (events, PVs), and nodes listed to place ordinals.
ALWAYS: Final[tuple[Access, ...]] = (
    *_each("get create delete", "namespaces", namespaced=False),
    *_each("list", "storageclasses", "storage.k8s.io", namespaced=False),
    *_each("get list", "nodes", namespaced=False),
    *_each("list", "persistentvolumes", namespaced=False),
    *_each("get list create update delete", "services"),
    *_each("get list create update delete", "statefulsets", "apps"),
    *_each("patch", "statefulsets", "apps", "scale"),
    *_each("get list create update delete", "poddisruptionbudgets", "policy"),
    *_each("get list watch create delete", "pods"),
    *_each("get", "pods", subresource="log"),
    *_each("create", "pods", subresource="portforward"),
    *_each("list delete", "persistentvolumeclaims"),
    *_each("list", "events"),
)

#: What each fault adds (keys: harness.nemesis.registry's names).
BY_NEMESIS: Final[Mapping[str, tuple[Access, ...]]] = {
    "pod-kill": _each("delete", "pods"),
    "pod-delete": _each("delete", "pods"),
    "container-kill": (),  # the runtime does it (cluster capability kill-container)
    "drain": (*_each("patch", "nodes", namespaced=False), *_each("create", "pods", subresource="eviction")),
    "cordon": _each("patch", "nodes", namespaced=False),
    "node-crash": _each("delete", "pods"),  # the node itself is the capability; force_delete deletes pods
    "power-loss": (),  # the node and its volumes are the capability (kubesim node power-loss)
    "scale": _each("get patch", "statefulsets", "apps", "scale"),
    "rollout-restart": _each("patch", "statefulsets", "apps"),
    "partitioned-update": _each("patch", "statefulsets", "apps"),
    # claims are listed (never read one by one) and deleted, then the pod: all in ALWAYS already
    "delete-claim": (*_each("list delete", "persistentvolumeclaims"), *_each("delete", "pods")),
}

#: Asked of the authorization API itself (any authenticated user may, through system:basic-user).
REVIEW: Final = Access("create", "selfsubjectaccessreviews", "authorization.k8s.io", namespaced=False)


def needed(nemeses: Iterable[str]) -> tuple[Access, ...]:
    """Every access a scenario with these faults needs, sorted, without duplicates."""
    wanted = set(ALWAYS)
    for name in nemeses:
        wanted.update(BY_NEMESIS.get(name, ()))
    return tuple(sorted(wanted))


def may(cluster: base.Cluster, accesses: Sequence[Access]) -> list[Permission]:
    """One answer per access, in order; raises :class:`base.ClusterError` when the API cannot be asked."""
    if cluster.kind != "existing":
        return [Permission(a, True, f"the harness made the {cluster.kind} cluster and holds its admin credentials")
                for a in accesses]
    from harness.kube import access as kube_access
    from harness.kube import client as kube_client

    try:
        api = kube_client.new_api_client(cluster.kubeconfig, cluster.context)
    except kube_client.KubeconfigError as exc:
        raise base.ClusterError(str(exc)) from None
    answers: list[Permission] = []
    try:
        for index, access in enumerate(accesses):
            got = kube_access.self_access(api, verb=access.verb, resource=access.resource, group=access.group,
                                          subresource=access.subresource,
                                          namespace=PROBE_NAMESPACE if access.namespaced else None)
            if got.allowed is None:  # the server cannot answer: it will not answer the rest either
                return answers + [Permission(a, None, got.reason) for a in accesses[index:]]
            answers.append(Permission(access, got.allowed, got.reason))
    except kube_access.AccessError as exc:
        raise base.ClusterError(str(exc)) from None
    finally:
        kube_client.close(api)
    return answers


def refused(cluster: base.Cluster, nemeses: Iterable[str]) -> str | None:
    """Why a scenario with these faults cannot run here (the verbs the cluster denies), or None.

    Unknown answers and a failure to ask are not refusals: the run then finds out for itself.
    """
    try:
        answers = may(cluster, needed(nemeses))
    except base.ClusterError:
        return None
    denied = [p for p in answers if p.allowed is False]
    if not denied:
        return None
    reasons = sorted({p.reason for p in denied if p.reason})
    return (f"the {cluster.kind} cluster {cluster.name} denies {', '.join(str(p.access) for p in denied)}"
            + (f" ({'; '.join(reasons)})" if reasons else "") + "; bind the roles in infra/rbac/ (infra/README.md)")
