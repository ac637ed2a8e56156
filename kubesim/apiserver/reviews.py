"""The review APIs: nothing is stored, the answer is computed from the request's user and the authorizer.

* ``authorization.k8s.io/v1`` **SelfSubjectAccessReview** (``kubectl auth can-i``), **SubjectAccessReview**
  and **LocalSubjectAccessReview** (``pkg/registry/authorization/*``): may this user do this? The
  status carries ``allowed`` and the authorizer's ``reason``;
* **SelfSubjectRulesReview** (``kubectl auth can-i --list``): every rule the user has in a
  namespace (the ``*`` rules for ``system:masters``), ``incomplete: false``, and the roles bindings
  name but that do not exist as ``evaluationError``;
* ``authentication.k8s.io/v1`` **SelfSubjectReview** (``kubectl auth whoami``): the user as
  authenticated; **TokenReview**: what a token authenticates as.

Each answers 201 with the request's spec echoed and ``metadata.creationTimestamp: null``, as upstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubesim.apiserver import authn, authz, errors, fielderrors, resources, rest, store

Obj = dict[str, Any]
AUTHZ_GROUP = "authorization.k8s.io"
AUTHN_GROUP = "authentication.k8s.io"
REVIEWS = {
    (AUTHZ_GROUP, "selfsubjectaccessreviews"), (AUTHZ_GROUP, "subjectaccessreviews"),
    (AUTHZ_GROUP, "localsubjectaccessreviews"), (AUTHZ_GROUP, "selfsubjectrulesreviews"),
    (AUTHN_GROUP, "selfsubjectreviews"), (AUTHN_GROUP, "tokenreviews"),
}
TokenAuthenticator = Callable[[str], authn.UserInfo | None]


def handles(res: resources.Resource) -> bool:
    return (res.group, res.plural) in REVIEWS


def _decode(res: resources.Resource, body: bytes) -> Obj:
    obj = rest.decode(body, res.kind)
    rest.check_type(obj, res.api_version, res.kind)
    return obj


def _answer(res: resources.Resource, obj: Obj, status: Obj) -> tuple[int, bytes]:
    meta = dict(obj.get("metadata") or {})
    meta["creationTimestamp"] = None
    out: Obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
    if "spec" in obj or res.kind != "SelfSubjectReview":
        out["spec"] = obj.get("spec") or {}
    out["status"] = status
    return 201, store.dumps(out)


def _invalid(res: resources.Resource, errs: list[fielderrors.FieldError]) -> errors.ApiError:
    return errors.invalid(res.group, res.kind, "", errs)


def _attributes(res: resources.Resource, spec: Mapping[str, Any], user: authn.UserInfo) -> authz.Attributes:
    resource_attrs, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource_attrs is not None and non_resource is not None:
        raise _invalid(res, [fielderrors.invalid("spec.nonResourceAttributes", non_resource,
                                                 "cannot be specified in combination with resourceAttributes")])
    if resource_attrs is None and non_resource is None:
        raise _invalid(res, [fielderrors.invalid("spec.resourceAttributes", non_resource,
                                                 "exactly one of nonResourceAttributes or resourceAttributes must "
                                                 "be specified")])
    if isinstance(non_resource, Mapping):
        return authz.Attributes(user, str(non_resource.get("verb") or ""), False,
                                path=str(non_resource.get("path") or ""))
    ra: Mapping[str, Any] = resource_attrs if isinstance(resource_attrs, Mapping) else {}
    return authz.Attributes(user, str(ra.get("verb") or ""), True, namespace=str(ra.get("namespace") or ""),
                            group=str(ra.get("group") or ""), version=str(ra.get("version") or ""),
                            resource=str(ra.get("resource") or ""), subresource=str(ra.get("subresource") or ""),
                            name=str(ra.get("name") or ""))


def _access_status(decision: authz.Decision) -> Obj:
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _subject(spec: Mapping[str, Any]) -> authn.UserInfo:
    extra = spec.get("extra") or {}
    return authn.UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""),
                          tuple(str(g) for g in spec.get("groups") or []),
                          {str(k): tuple(str(x) for x in v or []) for k, v in extra.items()} if isinstance(extra, dict)
                          else {})


def create(res: resources.Resource, namespace: str, body: bytes, *, user: authn.UserInfo,
           authorizer: authz.Authorizer, authenticate: TokenAuthenticator) -> tuple[int, bytes]:
    """Answer one review POST."""
    obj = _decode(res, body)
    spec: Mapping[str, Any] = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}  # type: ignore[assignment]
    if res.plural == "selfsubjectaccessreviews":
        return _answer(res, obj, _access_status(authorizer.authorize(_attributes(res, spec, user))))
    if res.plural in ("subjectaccessreviews", "localsubjectaccessreviews"):
        if not spec.get("user") and not spec.get("groups"):
            raise _invalid(res, [fielderrors.invalid("spec.user,spec.groups", spec.get("user") or "",
                                                     "at least one of user or group must be specified")])
        attrs = _attributes(res, spec, _subject(spec))
        if res.plural == "localsubjectaccessreviews":
            if not attrs.resource_request:
                raise _invalid(res, [fielderrors.invalid("spec.nonResourceAttributes",
                                                         spec.get("nonResourceAttributes"),
                                                         "disallowed on this kind of request")])
            if attrs.namespace != namespace:
                raise errors.bad_request(f"spec.resourceAttributes.namespace must match namespace: {namespace}")
        return _answer(res, obj, _access_status(authorizer.authorize(attrs)))
    if res.plural == "selfsubjectrulesreviews":
        target = str(spec.get("namespace") or "")
        if not target:
            raise errors.bad_request("no namespace on request")
        rules, problems = authorizer.rules_for(user, target)
        resource_rules, url_rules = [], []
        for rule in rules:
            if rule.get("resources"):
                entry: Obj = {"verbs": list(rule.get("verbs") or [])}
                for key in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(key):
                        entry[key] = list(rule[key])
                resource_rules.append(entry)
            if rule.get("nonResourceURLs"):
                url_rules.append({"verbs": list(rule.get("verbs") or []),
                                  "nonResourceURLs": list(rule["nonResourceURLs"])})
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": url_rules, "incomplete": False}
        if problems:
            status["evaluationError"] = authz.aggregate(problems)
        return _answer(res, obj, status)
    if res.plural == "selfsubjectreviews":
        return _answer(res, obj, {"userInfo": user.as_json()})
    token = str(spec.get("token") or "")
    reviewed = authenticate(token) if token else None
    audiences = [str(a) for a in spec.get("audiences") or []]
    if reviewed is None:
        review: Obj = {"user": {}, "error": "[invalid bearer token, token lookup failed]" if token else
                       "token required"}
    else:
        review = {"authenticated": True, "user": reviewed.as_json()}
    if audiences:
        review["audiences"] = audiences
    return _answer(res, json.loads(store.dumps(obj)), review)
