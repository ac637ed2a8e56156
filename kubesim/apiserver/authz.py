"""Authorization: request attributes, the ``system:masters`` short cut and RBAC, as kube-apiserver decides.

* **Attributes** follow ``k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``: a path under
  ``/api/v1`` or ``/apis/<group>/<version>`` is a resource request (verb from the method — GET
  without a name is ``list``, or ``watch`` with ``watch=true`` or the ``/watch/`` prefix, DELETE
  without a name ``deletecollection`` —, namespace, resource, name, subresource; a list whose field
  selector pins ``metadata.name`` carries that name, so ``resourceNames`` rules can allow it);
  anything else (``/healthz``, ``/version``, ``/openapi/v3``, ``/apis``) is a non-resource request
  whose verb is the lower-cased method.
* **Order**: the privileged-group authorizer first (``system:masters`` may do anything), then
  RBAC (``plugin/pkg/auth/authorizer/rbac/rbac.go``); nothing else allows, so whatever RBAC does
  not allow is 403 Forbidden with upstream's message (``responsewriters.forbiddenMessage``).
* **RBAC** (``pkg/registry/rbac/validation/rule.go``): every ClusterRoleBinding, then — for a
  namespaced request — every RoleBinding of the namespace, whose subjects include the user (User by
  name, Group by membership, ServiceAccount by ``system:serviceaccount:<ns>:<name>``, a
  RoleBinding's ServiceAccount subject defaulting to the binding's namespace); the bound Role or
  ClusterRole's rules are matched with ``evaluation_helpers.go``'s rules: ``*`` verbs, groups and
  resources, ``*/subresource``, resource names (an empty list matches every name, a list never
  matches a request without a name), non-resource URLs with a trailing ``*``. An allowed request's
  reason names the binding (``RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User
  "z"``); a denial's reason lists roles that bindings name but that do not exist.
* **Escalation prevention** (``ConfirmNoEscalation`` and ``validation.Covers``): creating or
  changing a Role/ClusterRole, or binding one, needs the user to hold every permission it grants
  — unless the user is in ``system:masters``, has ``escalate`` on the role (for roles) or ``bind``
  on the referenced role (for bindings). Setting an ``aggregationRule`` needs ``*`` on ``*.*``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubesim.apiserver import authn, errors, satokens, store

RBAC_GROUP = "rbac.authorization.k8s.io"
Obj = dict[str, Any]

current_user: contextvars.ContextVar[authn.UserInfo | None] = contextvars.ContextVar("kubesim_user", default=None)
"""The user of the request being served (read by admission plugins: escalation checks)."""


@dataclasses.dataclass(frozen=True)
class Attributes:
    """``authorizer.Attributes``: who wants to do what (resource or non-resource)."""

    user: authn.UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


_API_PREFIXES = ("api", "apis")
_SPECIAL_VERBS = ("proxy", "watch")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


def request_attributes(method: str, path: str, query: Mapping[str, str], user: authn.UserInfo) -> Attributes:
    """``RequestInfoFactory.NewRequestInfo`` for kubesim's URLs."""
    verb_for_method = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                       "DELETE": "delete"}
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    non_resource = Attributes(user, method.lower(), False, path=path)
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    verb = verb_for_method.get(method.upper(), "")
    if parts and parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            return non_resource
        verb, parts = parts[0], parts[1:]
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("1", "true") else "list"
        pinned = _exact_name(query.get("fieldSelector", ""))
        if pinned:
            name = pinned
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path=path, namespace=namespace, group=group, version=version,
                      resource=resource, subresource=subresource, name=name)


def _exact_name(selector: str) -> str:
    """``fields.Selector.RequiresExactMatch("metadata.name")`` for a simple selector."""
    for term in selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and not key.endswith("!") and key.strip() == "metadata.name":
            value = value.strip()
            if value not in (".", "..") and "/" not in value and "%" not in value:
                return value
    return ""


# ----- rule matching (pkg/apis/rbac/v1/evaluation_helpers.go) ---------------------------------------


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    value = rule.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule, "verbs"))


def group_matches(rule: Mapping[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule, "apiGroups"))


def resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for res in _strings(rule, "resources"):
        if res in ("*", combined):
            return True
        if subresource and len(res) == len(subresource) + 2 and res.startswith("*/") and res.endswith(subresource):
            return True
    return False


def name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = _strings(rule, "resourceNames")
    return not names or name in names


def url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in _strings(rule, "nonResourceURLs"):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (verb_matches(rule, attrs.verb) and group_matches(rule, attrs.group)
                and resource_matches(rule, combined, attrs.subresource) and name_matches(rule, attrs.name))
    return verb_matches(rule, attrs.verb) and url_matches(rule, attrs.path)


# ----- the rule resolver over the store -------------------------------------------------------------


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings in these messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind == "ServiceAccount":
        return f"{kind} {_go_quote(name + '/' + (str(subject.get('namespace') or '') or binding_namespace))}"
    return f"{kind} {_go_quote(name)}"


def applies_to(user: authn.UserInfo, subject: Mapping[str, Any], namespace: str) -> bool:
    """``appliesToUser``."""
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = str(subject.get("namespace") or "") or namespace
        return bool(sa_namespace) and user.name == satokens.username(sa_namespace, name)
    return False


@dataclasses.dataclass(frozen=True)
class Visit:
    """One rule a binding gives the user (``source`` describes the binding), or one resolution error."""

    source: str = ""
    rule: Mapping[str, Any] | None = None
    error: str = ""


class RBAC:
    """The RBAC authorizer and rule resolver, reading Roles and bindings from the store."""

    def __init__(self, db: store.Store) -> None:
        self.db = db

    def _items(self, plural: str, namespace: str | None) -> list[Obj]:
        items, _rv = self.db.scan(f"{RBAC_GROUP}/{plural}", namespace)
        return [entry.obj for _key, entry in items]

    def role_rules(self, role_ref: Mapping[str, Any], binding_namespace: str) -> tuple[list[Obj], str]:
        """``GetRoleReferenceRules``: the referenced role's rules, or the error a missing one gives."""
        kind, name = str(role_ref.get("kind") or ""), str(role_ref.get("name") or "")
        if kind == "Role":
            entry = self.db.get(f"{RBAC_GROUP}/roles", binding_namespace, name)
            if entry is None:
                return [], f'role.{RBAC_GROUP} {_go_quote(name)} not found'
        elif kind == "ClusterRole":
            entry = self.db.get(f"{RBAC_GROUP}/clusterroles", "", name)
            if entry is None:
                return [], f'clusterrole.{RBAC_GROUP} {_go_quote(name)} not found'
        else:
            return [], f"unsupported role reference kind: {_go_quote(kind)}"
        rules = entry.obj.get("rules")
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else [], ""

    def visit(self, user: authn.UserInfo, namespace: str) -> Iterator[Visit]:
        """``VisitRulesFor``: cluster-wide bindings first, then the namespace's."""
        for binding in self._items("clusterrolebindings", None):
            yield from self._binding_rules(user, binding, "", "ClusterRoleBinding "
                                           + _go_quote(str(binding["metadata"]["name"])))
        if namespace:
            for binding in self._items("rolebindings", namespace):
                label = "RoleBinding " + _go_quote(f"{binding['metadata']['name']}/{namespace}")
                yield from self._binding_rules(user, binding, namespace, label)

    def _binding_rules(self, user: authn.UserInfo, binding: Obj, namespace: str, label: str) -> Iterator[Visit]:
        subjects = [s for s in binding.get("subjects") or [] if isinstance(s, dict)]
        subject = next((s for s in subjects if applies_to(user, s, namespace)), None)
        if subject is None:
            return
        role_ref = binding.get("roleRef") or {}
        rules, error = self.role_rules(role_ref, namespace)
        if error:
            yield Visit(error=error)
            return
        source = (f"{label} of {role_ref.get('kind')} {_go_quote(str(role_ref.get('name') or ''))} to "
                  f"{_describe_subject(subject, namespace)}")
        for rule in rules:
            yield Visit(source, rule)

    def authorize(self, attrs: Attributes) -> Decision:
        problems: list[str] = []
        for item in self.visit(attrs.user, attrs.namespace):
            if item.rule is not None and rule_allows(attrs, item.rule):
                return Decision(True, f"RBAC: allowed by {item.source}")
            if item.error:
                problems.append(item.error)
        return Decision(False, f"RBAC: {aggregate(problems)}" if problems else "")

    def rules_for(self, user: authn.UserInfo, namespace: str) -> tuple[list[Mapping[str, Any]], list[str]]:
        rules: list[Mapping[str, Any]] = []
        problems: list[str] = []
        for item in self.visit(user, namespace):
            if item.rule is not None:
                rules.append(item.rule)
            if item.error:
                problems.append(item.error)
        return rules, problems


def aggregate(messages: Sequence[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message as is, several as ``[a, b]`` (duplicates once)."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


FULL_ACCESS: tuple[Obj, ...] = ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                                {"verbs": ["*"], "nonResourceURLs": ["*"]})
"""What ``system:masters`` may do, as the privileged-group authorizer reports it to rules reviews."""


class Authorizer:
    """kube-apiserver's chain as kind configures it, minus the Node authorizer: privileged group, then RBAC."""

    def __init__(self, db: store.Store) -> None:
        self.rbac = RBAC(db)

    def authorize(self, attrs: Attributes) -> Decision:
        if authn.MASTERS in attrs.user.groups:
            return Decision(True)
        return self.rbac.authorize(attrs)

    def rules_for(self, user: authn.UserInfo, namespace: str) -> tuple[list[Mapping[str, Any]], list[str]]:
        if authn.MASTERS in user.groups:
            rules, problems = self.rbac.rules_for(user, namespace)
            return [*FULL_ACCESS, *rules], problems
        return self.rbac.rules_for(user, namespace)


def forbidden_message(attrs: Attributes) -> str:
    """``responsewriters.forbiddenMessage``."""
    who = _go_quote(attrs.user.name)
    if not attrs.resource_request:
        return f"User {who} cannot {attrs.verb} path {_go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = (f"in the namespace {_go_quote(attrs.namespace)}" if attrs.namespace else "at the cluster scope")
    return (f"User {who} cannot {attrs.verb} resource {_go_quote(resource)} in API group "
            f"{_go_quote(attrs.group)} {where}")


def forbidden(attrs: Attributes, reason: str) -> errors.ApiError:
    """``responsewriters.Forbidden``: a 403 Status for a request the authorizers did not allow."""
    why = forbidden_message(attrs) + (f": {reason}" if reason else "")
    if not attrs.resource_request or not attrs.resource:
        return errors.ApiError(403, "Forbidden", f"forbidden: {why}", {})
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    details: dict[str, Any] = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    message = f"{qualified} {_go_quote(attrs.name)} is forbidden: {why}" if attrs.name else \
        f"{qualified} is forbidden: {why}"
    return errors.ApiError(403, "Forbidden", message, details)


# ----- escalation prevention ------------------------------------------------------------------------


def breakdown(rule: Mapping[str, Any]) -> list[Obj]:
    """``BreakdownRule``: one (group, resource, verb[, name]) or (url, verb) per rule."""
    out: list[Obj] = []
    names = _strings(rule, "resourceNames")
    for group in _strings(rule, "apiGroups"):
        for res in _strings(rule, "resources"):
            for verb in _strings(rule, "verbs"):
                base: Obj = {"apiGroups": [group], "resources": [res], "verbs": [verb]}
                out += [{**base, "resourceNames": [n]} for n in names] if names else [base]
    for url in _strings(rule, "nonResourceURLs"):
        for verb in _strings(rule, "verbs"):
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner or all(w in owner for w in wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owner) for w in wanted)


def rule_covers(owner: Mapping[str, Any], sub: Mapping[str, Any]) -> bool:
    """``ruleCovers``: does ``owner`` grant everything the atomic rule ``sub`` grants?"""
    o_verbs, o_groups = _strings(owner, "verbs"), _strings(owner, "apiGroups")
    o_names = _strings(owner, "resourceNames")
    s_names = _strings(sub, "resourceNames")
    verbs = "*" in o_verbs or all(v in o_verbs for v in _strings(sub, "verbs"))
    groups = "*" in o_groups or all(g in o_groups for g in _strings(sub, "apiGroups"))
    names = (not o_names) if not s_names else (not o_names or all(n in o_names for n in s_names))
    return (verbs and groups and names and _resources_cover(_strings(owner, "resources"), _strings(sub, "resources"))
            and _urls_cover(_strings(owner, "nonResourceURLs"), _strings(sub, "nonResourceURLs")))


def uncovered(owner_rules: Sequence[Mapping[str, Any]], rules: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """``validation.Covers``: the atomic rules of ``rules`` no owner rule grants."""
    return [sub for rule in rules for sub in breakdown(rule) if not any(rule_covers(o, sub) for o in owner_rules)]


def _go_list(values: Sequence[str]) -> str:
    return "[" + " ".join(_go_quote(v) for v in values) + "]"


def compact_string(rule: Mapping[str, Any]) -> str:
    """``rbacv1helpers.CompactString``."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
                       ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        values = _strings(rule, key)
        if values:
            parts.append(f"{label}:{_go_list(values)}")
    return "{" + ", ".join(parts) + "}"


def _compact(rules: list[Obj]) -> list[Obj]:
    """``CompactRules``: atomic rules differing only in their verb become one rule."""
    merged: dict[tuple[tuple[str, ...], ...], Obj] = {}
    for rule in rules:
        key = tuple(tuple(_strings(rule, k)) for k in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"))
        if key in merged:
            merged[key]["verbs"] = [*merged[key]["verbs"], *_strings(rule, "verbs")]
        else:
            merged[key] = {**rule, "verbs": list(_strings(rule, "verbs"))}
    return list(merged.values())


def escalation_error(user: authn.UserInfo, missing: list[Obj], problems: list[str]) -> str:
    described = sorted({compact_string(r) for r in _compact(missing)})
    msg = (f"user {_go_quote(user.name)} (groups={_go_list(list(user.groups))}) is attempting to grant RBAC "
           "permissions not currently held:\n" + "\n".join(described))
    if problems:
        msg += f"; resolution errors: [{' '.join(problems)}]"
    return msg
