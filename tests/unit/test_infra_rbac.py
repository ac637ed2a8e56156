"""infra/rbac/ grants every API call the harness makes on an existing cluster, and nothing more.

The calls are found by reading ``harness/kube/`` (the only code that talks to the API): every
``<verb>_[namespaced_]<resource>(`` method of the typed client, the verbs ``harness.kube.apply``
uses on the kinds ``harness deploy`` builds, watches, and ``kubectl port-forward``. Each becomes
the (verb, group, resource/subresource) RBAC sees. The table the harness asks the API about
before a scenario (``harness.clusters.access``) must hold each of them, and the roles must grant
exactly that table: a new call without a rule, or a rule nothing uses, fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.clusters import access
from harness.deploy import manifests
from harness.deploy import spec as deploy_spec
from harness.nemesis import registry

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "infra" / "rbac"
KUBE = REPO / "harness" / "kube"

#: typed-client method suffix -> (group, resource, subresource, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pod": ("", "pods", "", True),
    "pod_log": ("", "pods", "log", True),
    "pod_eviction": ("", "pods", "eviction", True),
    "service": ("", "services", "", True),
    "persistent_volume_claim": ("", "persistentvolumeclaims", "", True),
    "event": ("", "events", "", True),
    "stateful_set": ("apps", "statefulsets", "", True),
    "stateful_set_scale": ("apps", "statefulsets", "scale", True),
    "pod_disruption_budget": ("policy", "poddisruptionbudgets", "", True),
    "namespace": ("", "namespaces", "", False),
    "node": ("", "nodes", "", False),
    "persistent_volume": ("", "persistentvolumes", "", False),
    "storage_class": ("storage.k8s.io", "storageclasses", "", False),
    "self_subject_access_review": ("authorization.k8s.io", "selfsubjectaccessreviews", "", False),
}
VERBS = {"list": "list", "read": "get", "create": "create", "delete": "delete", "patch": "patch", "replace": "update"}
#: a typed-client method, called or passed on (``core.list_persistent_volume`` in a table)
CALL = re.compile(r"\.(list|read|create|delete|patch|replace)_(namespaced_)?([a-z_]+?)"
                  r"(?:_for_all_namespaces)?(?:_with_http_info)?\b")
WATCH = re.compile(r"\.stream\(.{0,200}?\.list_(namespaced_)?([a-z_]+)", re.DOTALL)
#: same-named methods that are not API calls (files, sockets)
NOT_API = {"text", "bytes", "connection"}
#: harness/kube/runtime.py serves only cluster capabilities (node crash, container kill), which an
#: existing cluster never offers; the kind cluster runs them with the admin credentials it made
CAPABILITY_ONLY = {"runtime.py"}
APPLY_VERBS = ("read", "create", "replace", "delete")  # harness.kube.apply's target.call(...) verbs
#: harness.kube.apply could PUT a Namespace, but deploy never asks it to: an existing namespace is
#: never rewritten (harness.deploy.direct), and one that appears between preflight and create is
#: somebody else's — a 403 there is the right answer, so no role grants it
NEVER_APPLIED = {access.Access("update", "namespaces", namespaced=False)}


def _access(verb: str, suffix: str) -> access.Access:
    if suffix not in RESOURCES:
        pytest.fail(f"harness/kube calls {verb}_{suffix}: add its resource to RESOURCES here, to "
                    "harness.clusters.access and to infra/rbac/")
    group, resource, sub, namespaced = RESOURCES[suffix]
    return access.Access(VERBS[verb], resource, group, sub, namespaced)


def calls_in_harness_kube() -> set[access.Access]:
    found: set[access.Access] = set()
    for path in sorted(KUBE.glob("*.py")):
        if path.name in CAPABILITY_ONLY:
            continue
        source = path.read_text()
        for verb, _ns, suffix in CALL.findall(source):
            if suffix not in NOT_API:
                found.add(_access(verb, suffix))
        for _ns, suffix in WATCH.findall(source):
            found.add(access.Access("watch", *RESOURCES[suffix][1:2], RESOURCES[suffix][0],
                                    RESOURCES[suffix][2], RESOURCES[suffix][3]))
        if '"port-forward"' in source:
            found.add(access.Access("create", "pods", "", "portforward"))
    built = manifests.build(deploy_spec.parse({}, source="cli"))
    apply_source = (KUBE / "apply.py").read_text()
    assert all(f'"{verb}"' in apply_source for verb in APPLY_VERBS), "harness.kube.apply changed its verbs"
    for obj in built:
        suffix = re.sub(r"(?<!^)(?=[A-Z])", "_", obj.kind).lower()
        found.update(_access(verb, suffix) for verb in APPLY_VERBS)
    return found - NEVER_APPLIED


def documents() -> Iterator[dict[str, Any]]:
    for path in sorted(RBAC.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict), path
                yield doc


def role(name: str) -> dict[str, Any]:
    [found] = [d for d in documents() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name]
    return found


def grants(name: str) -> set[access.Access]:
    """Every (verb, resource, group, subresource) the ClusterRole's rules allow."""
    out = set()
    for rule in role(name)["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                resource, _, sub = res.partition("/")
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"{name} grants a wildcard"
                    out.add(access.Access(verb, resource, group, sub, name != "ckpt-chaos-harness-cluster"
                                          and resource != "nodes"))
    return out


NAMESPACED = "ckpt-chaos-harness-namespaced"
CLUSTER = "ckpt-chaos-harness-cluster"
NODE_OPS = "ckpt-chaos-harness-node-ops"


def table() -> set[access.Access]:
    return set(access.ALWAYS) | {a for accesses in access.BY_NEMESIS.values() for a in accesses} | {access.REVIEW}


def test_every_file_parses_as_kubernetes_objects_of_known_kinds() -> None:
    kinds = {(d["apiVersion"], d["kind"]) for d in documents()}
    assert kinds <= {
        ("rbac.authorization.k8s.io/v1", "ClusterRole"), ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "ServiceAccount"), ("v1", "Namespace"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    }
    roles = {d["metadata"]["name"] for d in documents() if d["kind"] == "ClusterRole"}
    assert roles == {NAMESPACED, CLUSTER, NODE_OPS}
    for doc in documents():
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert doc["roleRef"]["name"] in roles, doc["metadata"]["name"]


def test_every_api_call_in_harness_kube_is_in_the_table_the_harness_asks_about() -> None:
    missing = calls_in_harness_kube() - table()
    assert not missing, f"calls harness.clusters.access does not know: {sorted(map(str, missing))}"


def test_the_table_holds_no_access_the_harness_never_makes() -> None:
    unused = table() - calls_in_harness_kube()
    assert not unused, f"harness.clusters.access lists accesses no call makes: {sorted(map(str, unused))}"


def test_the_roles_grant_the_table_exactly() -> None:
    granted = grants(NAMESPACED) | grants(CLUSTER) | grants(NODE_OPS)
    assert table() - granted == set(), f"not granted: {sorted(map(str, table() - granted))}"
    assert granted - table() == set(), f"granted but never used: {sorted(map(str, granted - table()))}"


def test_namespaced_role_holds_only_namespaced_resources_and_nodes_are_patched_only_by_node_ops() -> None:
    assert all(a.namespaced for a in grants(NAMESPACED))
    assert not any(a.namespaced for a in grants(CLUSTER))
    assert {str(a) for a in grants(NODE_OPS)} == {"patch nodes"}
    assert {a.verb for a in grants(CLUSTER) if a.resource == "nodes"} == {"get", "list"}, "nodes read-only"
    assert not any(a.resource in ("secrets", "configmaps") for a in table()), "no secrets, no config"


def test_every_fault_says_what_it_needs_of_the_api() -> None:
    assert set(access.BY_NEMESIS) == set(registry.NEMESES)


def test_drain_needs_node_ops_and_pod_kill_does_not() -> None:
    node_ops = grants(NODE_OPS)
    assert set(access.needed(["drain"])) & node_ops
    assert not set(access.needed(["pod-kill", "scale"])) & node_ops


def test_the_guard_keeps_the_harness_to_labelled_namespaces() -> None:
    [policy] = [d for d in documents() if d["kind"] == "ValidatingAdmissionPolicy"]
    [binding] = [d for d in documents() if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    written = {a.resource + (f"/{a.subresource}" if a.subresource else "") for a in table()
               if a.verb in ("create", "update", "patch", "delete") and (a.namespaced or a.resource == "namespaces")}
    assert written <= set(rule["resources"]), f"writes the guard does not cover: {written - set(rule['resources'])}"
    [check] = policy["spec"]["validations"]
    assert f"'{manifests.TEST_NAMESPACE_LABEL}'" in check["expression"]
    assert f"'{manifests.TEST_NAMESPACE_LABEL_VALUE}'" in check["expression"]
    [subject] = [d for d in documents() if d["kind"] == "ServiceAccount"]
    user = f"system:serviceaccount:{subject['metadata']['namespace']}:{subject['metadata']['name']}"
    assert user in policy["spec"]["matchConditions"][0]["expression"]
