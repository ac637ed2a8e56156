"""The RBAC authorizer, request attributes, escalation checks and service-account tokens, in process.

Rule matching follows ``pkg/apis/rbac/v1/evaluation_helpers.go``; subjects and the resolver
``pkg/registry/rbac/validation/rule.go``; messages ``responsewriters.forbiddenMessage``. The store is
a real :class:`kubesim.apiserver.store.Store` in a temporary directory (no server, no HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim.apiserver import authn, authz, rbacdefaults, rest, satokens, store

G = authz.RBAC_GROUP
Obj = dict[str, Any]
ALICE = authn.UserInfo("alice", groups=("devs", authn.AUTHENTICATED))
SA = authn.UserInfo(satokens.username("ns1", "robot"), groups=(*satokens.groups_of("ns1"), authn.AUTHENTICATED))


def res(user: authn.UserInfo, verb: str, resource: str, *, ns: str = "", group: str = "", sub: str = "",
        name: str = "") -> authz.Attributes:
    return authz.Attributes(user, verb, True, namespace=ns, group=group, resource=resource, subresource=sub,
                            name=name)


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res(ALICE, "get", "pods", name="p"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res(ALICE, "list", "pods"), False),
    ({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}, res(ALICE, "deletecollection", "pods"), True),
    ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}, res(ALICE, "get", "pods"), False),
    ({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}, res(ALICE, "get", "statefulsets", group="apps"), True),
    # a subresource needs resource/subresource (or */subresource); the bare resource does not cover it
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res(ALICE, "get", "pods", sub="log"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, res(ALICE, "get", "pods", sub="log"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}, res(ALICE, "get", "pods", sub="log"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}, res(ALICE, "get", "pods"), False),
    # resourceNames: empty matches all; a list never matches a nameless request (list/create)
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
     res(ALICE, "get", "pods", name="a"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
     res(ALICE, "get", "pods", name="b"), False),
    ({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
     res(ALICE, "list", "pods"), False),
    # non-resource URLs: exact, or a prefix ending in *
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, authz.Attributes(ALICE, "get", False, path="/healthz"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, authz.Attributes(ALICE, "get", False, path="/apis/x/v1"),
     True),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis"]}, authz.Attributes(ALICE, "get", False, path="/apis/x"), False),
    ({"verbs": ["post"], "nonResourceURLs": ["*"]}, authz.Attributes(ALICE, "get", False, path="/x"), False),
    # a resource rule never matches a non-resource request and vice versa
    ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, authz.Attributes(ALICE, "get", False, path="/x"), False),
    ({"verbs": ["*"], "nonResourceURLs": ["*"]}, res(ALICE, "get", "pods"), False),
])
def test_rule_matching(rule: Obj, attrs: authz.Attributes, allowed: bool) -> None:
    assert authz.rule_allows(attrs, rule) is allowed


@pytest.mark.parametrize(("method", "path", "query", "expect"), [
    ("GET", "/api/v1/namespaces/ns1/pods/p", {}, ("get", "ns1", "", "pods", "", "p")),
    ("GET", "/api/v1/namespaces/ns1/pods", {}, ("list", "ns1", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns1/pods", {"watch": "true"}, ("watch", "ns1", "", "pods", "", "")),
    ("GET", "/api/v1/watch/namespaces/ns1/pods", {}, ("watch", "ns1", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns1/pods", {"fieldSelector": "metadata.name=p"}, ("list", "ns1", "", "pods", "", "p")),
    ("DELETE", "/api/v1/namespaces/ns1/pods", {}, ("deletecollection", "ns1", "", "pods", "", "")),
    ("POST", "/api/v1/namespaces/ns1/pods/p/eviction", {}, ("create", "ns1", "", "pods", "eviction", "p")),
    ("PATCH", "/apis/apps/v1/namespaces/ns1/statefulsets/s/scale", {},
     ("patch", "ns1", "apps", "statefulsets", "scale", "s")),
    ("GET", "/api/v1/nodes", {}, ("list", "", "", "nodes", "", "")),
    ("GET", "/api/v1/namespaces/ns1", {}, ("get", "ns1", "", "namespaces", "", "ns1")),
    ("PUT", "/api/v1/namespaces/ns1/finalize", {}, ("update", "ns1", "", "namespaces", "finalize", "ns1")),
])
def test_request_attributes(method: str, path: str, query: dict[str, str], expect: tuple[str, ...]) -> None:
    a = authz.request_attributes(method, path, query, ALICE)
    assert a.resource_request
    assert (a.verb, a.namespace, a.group, a.resource, a.subresource, a.name) == expect


def test_non_resource_attributes() -> None:
    a = authz.request_attributes("GET", "/healthz", {}, ALICE)
    assert (a.resource_request, a.verb, a.path) == (False, "get", "/healthz")
    assert not authz.request_attributes("GET", "/apis/apps", {}, ALICE).resource_request


# ----- bindings over a store ------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[store.Store]:
    s = store.Store(tmp_path / "db")
    try:
        yield s
    finally:
        s.close()


def put(db: store.Store, plural: str, obj: Obj) -> None:
    db.put(f"{G}/{plural}", obj, db.get(f"{G}/{plural}", obj["metadata"].get("namespace", ""),
                                        obj["metadata"]["name"]))


def role(name: str, rules: list[Obj], ns: str = "") -> Obj:
    meta: Obj = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": "Role" if ns else "ClusterRole", "metadata": meta, "rules": rules}


def binding(name: str, ref_kind: str, ref_name: str, subjects: list[Obj], ns: str = "") -> Obj:
    meta: Obj = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": "RoleBinding" if ns else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": G, "kind": ref_kind, "name": ref_name}, "subjects": subjects}


READ_PODS = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]


def test_bindings_by_user_group_and_service_account(db: store.Store) -> None:
    az = authz.Authorizer(db)
    put(db, "clusterroles", role("pod-reader", READ_PODS))
    put(db, "roles", role("pod-writer", [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}], "ns1"))
    # User by name, cluster-wide
    put(db, "clusterrolebindings", binding("alice-reads", "ClusterRole", "pod-reader",
                                           [{"kind": "User", "apiGroup": G, "name": "alice"}]))
    decision = az.authorize(res(ALICE, "list", "pods", ns="ns2"))
    assert decision.allowed
    assert decision.reason == ('RBAC: allowed by ClusterRoleBinding "alice-reads" of ClusterRole "pod-reader" '
                               'to User "alice"')
    assert not az.authorize(res(ALICE, "create", "pods", ns="ns1")).allowed
    # Group membership, namespaced: only in ns1
    put(db, "rolebindings", binding("devs-write", "Role", "pod-writer",
                                    [{"kind": "Group", "apiGroup": G, "name": "devs"}], "ns1"))
    assert az.authorize(res(ALICE, "create", "pods", ns="ns1")).allowed
    assert not az.authorize(res(ALICE, "create", "pods", ns="ns2")).allowed
    assert not az.authorize(res(ALICE, "create", "pods")).allowed  # cluster scope: RoleBindings never apply
    # ServiceAccount subject: its namespace defaults to the RoleBinding's
    assert not az.authorize(res(SA, "get", "pods", ns="ns1", name="p")).allowed
    put(db, "rolebindings", binding("robot-reads", "ClusterRole", "pod-reader",
                                    [{"kind": "ServiceAccount", "name": "robot"}], "ns1"))
    decision = az.authorize(res(SA, "get", "pods", ns="ns1", name="p"))
    assert decision.allowed
    assert decision.reason.endswith('to ServiceAccount "robot/ns1"')
    assert not az.authorize(res(SA, "get", "pods", ns="ns2", name="p")).allowed
    # the same SA name in another namespace is another user
    other = authn.UserInfo(satokens.username("ns2", "robot"), groups=satokens.groups_of("ns2"))
    assert not az.authorize(res(other, "get", "pods", ns="ns1", name="p")).allowed
    # the service-account groups work as Group subjects
    put(db, "clusterrolebindings", binding("all-sa", "ClusterRole", "pod-reader",
                                           [{"kind": "Group", "apiGroup": G, "name": "system:serviceaccounts:ns2"}]))
    assert az.authorize(res(other, "list", "pods", ns="ns9")).allowed


def test_missing_role_denies_with_the_resolution_error(db: store.Store) -> None:
    az = authz.Authorizer(db)
    put(db, "rolebindings", binding("dangling", "Role", "nope", [{"kind": "User", "apiGroup": G, "name": "alice"}],
                                    "ns1"))
    attrs = res(ALICE, "get", "pods", ns="ns1", name="p")
    decision = az.authorize(attrs)
    assert not decision.allowed
    assert decision.reason == f'RBAC: role.{G} "nope" not found'
    err = authz.forbidden(attrs, decision.reason)
    assert err.code == 403
    assert err.message == ('pods "p" is forbidden: User "alice" cannot get resource "pods" in API group "" in the '
                           f'namespace "ns1": RBAC: role.{G} "nope" not found')


def test_forbidden_messages() -> None:
    assert authz.forbidden(res(SA, "list", "pods", ns="ns1"), "").message == (
        'pods is forbidden: User "system:serviceaccount:ns1:robot" cannot list resource "pods" in API group "" '
        'in the namespace "ns1"')
    assert authz.forbidden(res(ALICE, "patch", "nodes", name="n1"), "").message == (
        'nodes "n1" is forbidden: User "alice" cannot patch resource "nodes" in API group "" at the cluster scope')
    assert authz.forbidden(res(ALICE, "create", "statefulsets", ns="a", group="apps", sub="scale", name="s"),
                           "").message.startswith('statefulsets.apps "s" is forbidden: User "alice" cannot create '
                                                  'resource "statefulsets/scale" in API group "apps"')
    assert authz.forbidden(authz.Attributes(ALICE, "get", False, path="/metrics"), "").message == (
        'forbidden: User "alice" cannot get path "/metrics"')


def test_system_masters_short_cut(db: store.Store) -> None:
    az = authz.Authorizer(db)
    assert az.authorize(res(authn.ADMIN, "delete", "nodes", name="n")).allowed
    rules, _problems = az.rules_for(authn.ADMIN, "ns1")
    assert authz.FULL_ACCESS[0] in rules


def test_default_roles_aggregate_and_bind_discovery(tmp_path: Path) -> None:
    db = store.Store(tmp_path / "db")
    try:
        rbacdefaults.ensure(rest.Api(db))
        az = authz.Authorizer(db)
        anyone = authn.UserInfo("bob", groups=(authn.AUTHENTICATED,))
        assert az.authorize(res(anyone, "create", "selfsubjectaccessreviews", group="authorization.k8s.io")).allowed
        assert az.authorize(authz.Attributes(anyone, "get", False, path="/apis/apps/v1")).allowed
        assert not az.authorize(res(anyone, "list", "pods", ns="x")).allowed
        # admin ⊇ edit ⊇ view, by aggregation
        admin = db.get(f"{G}/clusterroles", "", "admin")
        assert admin is not None
        rules = admin.obj["rules"]
        assert any("rolebindings" in r.get("resources", []) for r in rules)
        assert any("pods/eviction" in r.get("resources", []) for r in rules)
        assert any("controllerrevisions" in r.get("resources", []) for r in rules)
        put(db, "rolebindings", binding("bob-view", "ClusterRole", "view",
                                        [{"kind": "User", "apiGroup": G, "name": "bob"}], "x"))
        assert az.authorize(res(anyone, "list", "pods", ns="x")).allowed
        assert not az.authorize(res(anyone, "create", "pods", ns="x")).allowed
    finally:
        db.close()


def test_escalation_cover() -> None:
    owner = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]
    assert authz.uncovered(owner, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]) == []
    missing = authz.uncovered(owner, [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}])
    assert missing == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    assert authz.uncovered([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/log"]}],
                           [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}]) == []
    named = [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}]
    assert authz.uncovered(named, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]) != []
    text = authz.escalation_error(ALICE, missing, [])
    assert text.startswith('user "alice" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC '
                           'permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')


# ----- service-account tokens --------------------------------------------------------------------------


def test_token_authenticates_until_its_service_account_or_pod_is_gone(tmp_path: Path) -> None:
    db = store.Store(tmp_path / "db")
    try:
        keys = satokens.Keys(satokens.ensure_key(tmp_path))
        assert (tmp_path / satokens.KEY_FILE).stat().st_mode & 0o777 == 0o600
        sa = {"metadata": {"name": "robot", "namespace": "ns1", "uid": "u-sa"}}
        pod = {"metadata": {"name": "p", "namespace": "ns1", "uid": "u-pod"}, "spec": {"serviceAccountName": "robot"}}
        db.put("core/serviceaccounts", sa, None)
        db.put("core/pods", pod, None)
        answer = satokens.request_token(db, keys, "ns1", "robot", {"spec": {
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-pod"}}}, clock=lambda: 1000.0)
        token = answer["status"]["token"]
        claims = satokens.decode_unverified(token)
        assert claims["sub"] == "system:serviceaccount:ns1:robot"
        assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": "u-pod"}
        user = satokens.authenticate(db, keys, token, clock=lambda: 1000.0)
        assert isinstance(user, authn.UserInfo)
        assert user.name == "system:serviceaccount:ns1:robot"
        assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1")
        assert user.extra[satokens.EXTRA_POD_NAME] == ("p",)
        assert isinstance(satokens.authenticate(db, keys, token, clock=lambda: 1000.0 + 3600 + 61), satokens.Rejected)
        assert satokens.authenticate(db, keys, token[:-4] + "AAAA", clock=lambda: 1000.0) is None  # bad signature
        (tmp_path / "other").mkdir()
        other = satokens.Keys(satokens.ensure_key(tmp_path / "other"))
        assert satokens.authenticate(db, other, token, clock=lambda: 1000.0) is None  # another cluster's key
        db.remove("core/pods", pod)
        assert isinstance(satokens.authenticate(db, keys, token, clock=lambda: 1000.0), satokens.Rejected)
        db.put("core/pods", {**pod, "metadata": {**pod["metadata"], "uid": "u-pod-2"}}, None)  # recreated: new uid
        assert isinstance(satokens.authenticate(db, keys, token, clock=lambda: 1000.0), satokens.Rejected)
        plain = satokens.request_token(db, keys, "ns1", "robot", {}, clock=lambda: 1000.0)["status"]["token"]
        assert isinstance(satokens.authenticate(db, keys, plain, clock=lambda: 1000.0), authn.UserInfo)
        db.remove("core/serviceaccounts", sa)
        assert isinstance(satokens.authenticate(db, keys, plain, clock=lambda: 1000.0), satokens.Rejected)
    finally:
        db.close()


def test_token_request_validation(tmp_path: Path) -> None:
    db = store.Store(tmp_path / "db")
    try:
        keys = satokens.Keys(satokens.ensure_key(tmp_path))
        db.put("core/serviceaccounts", {"metadata": {"name": "robot", "namespace": "ns1", "uid": "u"}}, None)
        with pytest.raises(Exception, match="less than 10 minutes"):
            satokens.request_token(db, keys, "ns1", "robot", {"spec": {"expirationSeconds": 60}})
        with pytest.raises(Exception, match="not found"):
            satokens.request_token(db, keys, "ns1", "ghost", {})
    finally:
        db.close()


def test_static_token_file(tmp_path: Path) -> None:
    path = tmp_path / authn.TOKEN_FILE
    tokens = authn.StaticTokens(path)
    assert tokens.lookup("t1") is None
    path.write_text('# users\nt1,alice,1001,"devs,ops"\nt2,bob,1002\n')
    alice = tokens.lookup("t1")
    assert alice == authn.UserInfo("alice", "1001", ("devs", "ops"))
    assert tokens.lookup("t3") is None
    with pytest.raises(ValueError, match="line 1"):
        authn.parse_token_file("only,two\n")


# ----- the kubelet side: the projected token volume and the in-cluster address ---------------------------


def test_projected_volume_files_and_master_service_env() -> None:
    from kubesim.apiserver import saadmission
    from kubesim.kubelet import projected

    pod = {"metadata": {"name": "p", "namespace": "ns1", "uid": "u1"}, "spec": {"serviceAccountName": "robot"}}
    asked: list[tuple[str, str, Obj]] = []

    def token(namespace: str, account: str, request: Obj) -> str:
        asked.append((namespace, account, request))
        return "the-token"

    def get(plural: str, namespace: str, name: str) -> Obj | None:
        return {"data": {"ca.crt": "PEM"}} if (plural, name) == ("configmaps", "kube-root-ca.crt") else None

    files = projected.files(pod, saadmission.token_volume_source(), get, token, pod_ip="10.0.0.2", host_ip="h")
    assert files == {"token": b"the-token", "ca.crt": b"PEM", "namespace": b"ns1"}
    [(namespace, account, request)] = asked
    assert (namespace, account) == ("ns1", "robot")
    assert request["spec"] == {"expirationSeconds": 3607,
                               "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}}
    with pytest.raises(projected.ProjectionError, match=r'configmap "kube-root-ca\.crt" not found'):
        projected.files(pod, saadmission.token_volume_source(), lambda *_: None, token, pod_ip="", host_ip="")
    env = projected.master_service_env("127.0.0.1", 6443)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["KUBERNETES_PORT_6443_TCP_ADDR"] == "127.0.0.1"
