"""RBAC escalation prevention on Role, ClusterRole, RoleBinding and ClusterRoleBinding writes.

As ``pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased/storage.go``:
a user outside ``system:masters`` may create or change a role only with ``escalate`` on it or
when they already hold every rule it grants (in the role's namespace; an ``aggregationRule`` counts
as ``*`` on ``*.*``), and may bind a role only with ``bind`` on it or when they hold every rule of
the referenced role. Refusals are 403 with upstream's text (``user "x" (groups=[...]) is attempting
to grant RBAC permissions not currently held: ...``). Requests without a user on the context (the
API server's own bootstrap) are not checked, as upstream's ``EscalationAllowed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubesim.apiserver import authn, authz, errors, resources

Obj = dict[str, Any]
ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDING_KINDS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}


class EscalationCheck:
    def __init__(self, authorizer: authz.Authorizer) -> None:
        self.authorizer = authorizer

    def admit_create(self, res: resources.Resource, kind: str, obj: Obj) -> Obj:
        self._check(res, kind, obj, None)
        return obj

    def admit_update(self, res: resources.Resource, kind: str, old: Obj, new: Obj) -> None:
        self._check(res, kind, new, old)

    def _check(self, res: resources.Resource, kind: str, obj: Obj, old: Obj | None) -> None:
        if res.group != authz.RBAC_GROUP or (kind not in ROLE_KINDS and kind not in BINDING_KINDS):
            return
        user = authz.current_user.get()
        if user is None or authn.MASTERS in user.groups:
            return
        meta = obj.get("metadata") or {}
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        if kind in ROLE_KINDS:
            rules: Sequence[Mapping[str, Any]] = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
            if old is not None and old.get("rules") == obj.get("rules") \
                    and old.get("aggregationRule") == obj.get("aggregationRule"):
                return  # nothing granted changed
            if self._allowed(user, "escalate", ROLE_KINDS[kind], name, namespace):
                return
            if obj.get("aggregationRule"):
                rules = [*rules, *authz.FULL_ACCESS[:1]]
            self._confirm(user, res, name, namespace, rules)
            return
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if ref_kind in ROLE_KINDS and self._allowed(user, "bind", ROLE_KINDS[ref_kind], ref_name, namespace):
            return
        rules, error = self.authorizer.rbac.role_rules(ref, namespace)
        if error:
            raise errors.forbidden(res.group, res.plural, name, error)
        self._confirm(user, res, name, namespace, rules)

    def _allowed(self, user: authn.UserInfo, verb: str, plural: str, name: str, namespace: str) -> bool:
        attrs = authz.Attributes(user, verb, True, namespace=namespace, group=authz.RBAC_GROUP, version="v1",
                                 resource=plural, name=name)
        return self.authorizer.authorize(attrs).allowed

    def _confirm(self, user: authn.UserInfo, res: resources.Resource, name: str, namespace: str,
                 rules: Sequence[Mapping[str, Any]]) -> None:
        owned, problems = self.authorizer.rules_for(user, namespace)
        missing = authz.uncovered(owned, rules)
        if missing:
            raise errors.forbidden(res.group, res.plural, name, authz.escalation_error(user, missing, problems))
