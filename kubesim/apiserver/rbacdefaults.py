"""The default ClusterRoles and ClusterRoleBindings kube-apiserver bootstraps, and role aggregation.

From ``plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`` (the user-facing and discovery
roles only; kubesim's controllers and kubelets use the admin token, so the ``system:controller:*``
and ``system:node`` roles would bind nobody): ``cluster-admin`` (bound to ``system:masters``),
``admin``/``edit``/``view`` (aggregated from the ``system:aggregate-to-*`` roles by their
``aggregationRule``), ``system:basic-user`` (access and rules reviews, ``kubectl auth whoami``) and
``system:discovery`` (bound to every authenticated user), ``system:public-info-viewer`` (health
and version, authenticated or not). Each carries ``kubernetes.io/bootstrapping: rbac-defaults``
and ``rbac.authorization.kubernetes.io/autoupdate: "true"``.

:func:`ensure` runs at every API server start, as kube-apiserver's ``rbac/bootstrap-roles``
post-start hook does, but only creates what is missing (upstream also adds missing permissions to
roles marked autoupdate). :func:`aggregate` is the ``clusterrole-aggregation`` controller's
computation (``pkg/controller/clusterroleaggregation``), applied at bootstrap only: kubesim runs no
aggregation controller, so a ClusterRole labelled ``aggregate-to-*`` later does not widen ``admin``/``edit``/``view``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubesim.apiserver import resources, rest, selectors

GROUP = "rbac.authorization.k8s.io"
LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = (*WRITE, *READ)
TO_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
TO_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"

Obj = dict[str, Any]


def rule(verbs: Iterable[str], groups: Iterable[str] = (), resources_: Iterable[str] = (),
         urls: Iterable[str] = (), names: Iterable[str] = ()) -> Obj:
    """``rbacv1helpers.NewRule(...).RuleOrDie()``: every list sorted, empty ones left out."""
    out: Obj = {"verbs": sorted(set(verbs))}
    if groups:
        out["apiGroups"] = sorted(set(groups))
    if resources_:
        out["resources"] = sorted(set(resources_))
    if names:
        out["resourceNames"] = sorted(set(names))
    if urls:
        out["nonResourceURLs"] = sorted(set(urls))
    return out


def _role(name: str, rules: Sequence[Obj] = (), labels: Mapping[str, str] | None = None,
          aggregate_from: str = "") -> Obj:
    meta: Obj = {"name": name, "labels": {**LABELS, **(labels or {})}, "annotations": dict(ANNOTATIONS)}
    out: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": meta}
    if aggregate_from:
        out["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
        out["rules"] = []
    else:
        out["rules"] = list(rules)
    return out


CORE, APPS, BATCH, EXT, NET = "", "apps", "batch", "extensions", "networking.k8s.io"

CLUSTER_ROLES: tuple[Obj, ...] = (
    _role("cluster-admin", [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]),
    _role("system:discovery", [rule(["get"], urls=["/livez", "/readyz", "/healthz", "/version", "/version/",
                                                   "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*"])]),
    _role("system:basic-user", [
        rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
    ]),
    _role("system:public-info-viewer", [rule(["get"], urls=["/livez", "/readyz", "/healthz", "/version",
                                                            "/version/"])]),
    _role("admin", aggregate_from=TO_ADMIN),
    _role("edit", labels={TO_ADMIN: "true"}, aggregate_from=TO_EDIT),
    _role("view", labels={TO_EDIT: "true"}, aggregate_from=TO_VIEW),
    _role("system:aggregate-to-admin", [
        rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        rule(READ_WRITE, [GROUP], ["rolebindings", "roles"]),
    ], labels={TO_ADMIN: "true"}),
    _role("system:aggregate-to-edit", [
        rule(READ, [CORE], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"]),
        rule(["impersonate"], [CORE], ["serviceaccounts"]),
        rule(WRITE, [CORE], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
        rule(["create"], [CORE], ["pods/eviction"]),
        rule(WRITE, [CORE], ["replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                             "services/proxy", "persistentvolumeclaims", "configmaps", "secrets"]),
        rule(["create"], [CORE], ["serviceaccounts/token"]),
        rule(WRITE, [APPS], ["statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
                             "deployments/rollback", "replicasets", "replicasets/scale"]),
        rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
        rule(WRITE, [BATCH], ["jobs", "cronjobs"]),
        rule(WRITE, [EXT], ["daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses",
                            "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"]),
        rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
        rule(WRITE, [NET], ["networkpolicies", "ingresses"]),
    ], labels={TO_EDIT: "true"}),
    _role("system:aggregate-to-view", [
        rule(READ, [CORE], ["pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                            "services", "services/status", "endpoints", "persistentvolumeclaims",
                            "persistentvolumeclaims/status", "configmaps"]),
        rule(READ, [CORE], ["limitranges", "resourcequotas", "bindings", "events", "pods/status",
                            "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
                            "pods/log"]),
        rule(READ, [CORE], ["namespaces"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(READ, [APPS], ["controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
                            "daemonsets", "daemonsets/status", "deployments", "deployments/status",
                            "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale"]),
        rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, [BATCH], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
        rule(READ, [EXT], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                           "deployments/status", "ingresses", "ingresses/status", "replicasets", "replicasets/scale",
                           "replicasets/status", "replicationcontrollers/scale", "networkpolicies"]),
        rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, [NET], ["networkpolicies", "ingresses", "ingresses/status"]),
    ], labels={TO_VIEW: "true"}),
)


def _binding(name: str, *groups: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(LABELS), "annotations": dict(ANNOTATIONS)},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


CLUSTER_ROLE_BINDINGS: tuple[Obj, ...] = (
    _binding("cluster-admin", "system:masters"),
    _binding("system:discovery", "system:authenticated"),
    _binding("system:basic-user", "system:authenticated"),
    _binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
)


def aggregate(role: Mapping[str, Any], roles: Iterable[Mapping[str, Any]]) -> list[Obj] | None:
    """The rules an aggregated ClusterRole should have (None if it has no ``aggregationRule``).

    As ``ClusterRoleAggregationController.syncClusterRole``: for each selector in order, the roles
    it selects sorted by name (never the role itself), their rules appended unless already there.
    """
    agg = role.get("aggregationRule")
    if not isinstance(agg, Mapping):
        return None
    name = (role.get("metadata") or {}).get("name")
    ordered = sorted(roles, key=lambda r: str((r.get("metadata") or {}).get("name") or ""))
    out: list[Obj] = []
    for raw in agg.get("clusterRoleSelectors") or []:
        try:
            sel = selectors.label_selector_from_api(raw if isinstance(raw, Mapping) else None)
        except selectors.SelectorError:
            continue
        for other in ordered:
            meta = other.get("metadata") or {}
            if meta.get("name") == name or not sel.matches(meta.get("labels") or {}):
                continue
            for r in other.get("rules") or []:
                if isinstance(r, Mapping) and dict(r) not in out:
                    out.append(copy.deepcopy(dict(r)))
    return out


def aggregate_all(roles: Sequence[Obj]) -> None:
    """Fill every aggregated role's rules in place, to a fixed point (``admin`` takes ``edit``, which takes ``view``).

    Bootstrap only (no controller watches roles in kubesim): aggregation is computed once, when the
    defaults are created."""
    for _round in range(len(roles) + 1):
        changed = False
        for role in roles:
            rules = aggregate(role, roles)
            if rules is not None and rules != role.get("rules"):
                role["rules"] = rules
                changed = True
        if not changed:
            return


def ensure(api: rest.Api) -> None:
    """Create the default roles and bindings that are missing (aggregated roles with their rules filled)."""
    roles_res = resources.by_gvr(GROUP, "v1", "clusterroles")
    bindings_res = resources.by_gvr(GROUP, "v1", "clusterrolebindings")
    assert roles_res is not None
    assert bindings_res is not None
    roles = [copy.deepcopy(r) for r in CLUSTER_ROLES]
    aggregate_all(roles)
    for res, objs in ((roles_res, roles), (bindings_res, [copy.deepcopy(b) for b in CLUSTER_ROLE_BINDINGS])):
        target = rest.Target(res)
        for obj in objs:
            if api.store.get(target.rkey, "", obj["metadata"]["name"]) is None:
                api.create_obj(target, obj, res.kind, {})
