"""The resource table behind discovery and routing (docs/kubesim.md A1, A7)."""

from __future__ import annotations

import pytest

from kubesim.apiserver import resources


@pytest.mark.parametrize(
    ("short", "plural"),
    [("po", "pods"), ("sts", "statefulsets"), ("pvc", "persistentvolumeclaims"), ("pv", "persistentvolumes"),
     ("no", "nodes"), ("pdb", "poddisruptionbudgets"), ("svc", "services"), ("ns", "namespaces"),
     ("ev", "events"), ("cm", "configmaps"), ("ep", "endpoints"), ("sc", "storageclasses")],
)
def test_short_names_resolve_like_kubectl(short: str, plural: str) -> None:
    row = resources.by_name_or_short_name(short)
    assert row is not None
    assert row.plural == plural


def test_every_resource_a1_names_is_served() -> None:
    wanted = {
        ("", "namespaces"), ("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"),
        ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("", "events"), ("", "configmaps"),
        ("apps", "statefulsets"), ("apps", "controllerrevisions"), ("policy", "poddisruptionbudgets"),
        ("storage.k8s.io", "storageclasses"), ("coordination.k8s.io", "leases"),
    }
    served = {(r.group, r.plural) for r in resources.RESOURCES}
    assert wanted <= served


def test_pod_eviction_is_policy_v1_eviction_and_sts_scale_is_autoscaling_v1_scale() -> None:
    pods = resources.by_gvr("", "v1", "pods")
    sts = resources.by_gvr("apps", "v1", "statefulsets")
    assert pods is not None
    assert sts is not None
    eviction = pods.subresource("eviction")
    scale = sts.subresource("scale")
    binding = pods.subresource("binding")
    assert eviction is not None
    assert (eviction.group, eviction.version, eviction.kind) == ("policy", "v1", "Eviction")
    assert eviction.verbs == ("create",)
    assert scale is not None
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert set(scale.verbs) == {"get", "patch", "update"}
    assert binding is not None
    assert binding.kind == "Binding"
    assert {"status", "eviction", "log", "binding"} <= set(pods.subresources)
    assert pods.subresource("ephemeralcontainers") is None


def test_streaming_subresources_are_listed_with_upstreams_kinds_and_verbs() -> None:
    """A7/A11-A13: discovery shows the connect subresources as a real apiserver does."""
    entries = {e["name"]: e for e in resources.discovery_entries("", "v1")}
    connect = ["create", "get"]
    proxy = ["create", "delete", "get", "patch", "update"]
    assert (entries["pods/exec"]["kind"], entries["pods/exec"]["verbs"]) == ("PodExecOptions", connect)
    assert (entries["pods/attach"]["kind"], entries["pods/attach"]["verbs"]) == ("PodAttachOptions", connect)
    assert (entries["pods/portforward"]["kind"], entries["pods/portforward"]["verbs"]) == (
        "PodPortForwardOptions", connect)
    assert (entries["pods/proxy"]["kind"], entries["pods/proxy"]["verbs"]) == ("PodProxyOptions", proxy)
    assert (entries["services/proxy"]["kind"], entries["services/proxy"]["verbs"]) == ("ServiceProxyOptions", proxy)
    assert all("group" not in entries[name] for name in ("pods/exec", "pods/proxy", "services/proxy"))


def test_namespaces_refuse_deletecollection_like_upstream() -> None:
    ns = resources.by_kind("Namespace")
    assert ns is not None
    assert "deletecollection" not in ns.verbs
    assert not ns.namespaced


def test_cluster_scoped_resources_are_marked_so() -> None:
    scoped = {r.plural for r in resources.RESOURCES if not r.namespaced}
    assert scoped == {"namespaces", "nodes", "persistentvolumes", "storageclasses",
                      "clusterroles", "clusterrolebindings", "selfsubjectaccessreviews", "selfsubjectrulesreviews",
                      "subjectaccessreviews", "selfsubjectreviews", "tokenreviews", "validatingadmissionpolicies",
                      "validatingadmissionpolicybindings"}


def test_lookup_by_api_version_and_kind_distinguishes_the_two_event_groups() -> None:
    core = resources.by_api_version_kind("v1", "Event")
    new = resources.by_api_version_kind("events.k8s.io/v1", "Event")
    assert core is not None
    assert new is not None
    assert (core.group, new.group) == ("", "events.k8s.io")
    assert resources.by_kind("Event") is core
    sts = resources.by_api_version_kind("apps/v1", "StatefulSet")
    assert sts is not None
    assert sts.group_resource == "statefulsets.apps"
    assert sts.list_kind == "StatefulSetList"
    assert sts.api_version == "apps/v1"


def test_discovery_entries_list_subresources_with_their_own_group_version() -> None:
    entries = {e["name"]: e for e in resources.discovery_entries("", "v1")}
    assert entries["pods"]["shortNames"] == ["po"]
    assert entries["pods/eviction"]["group"] == "policy"
    assert entries["pods/eviction"]["version"] == "v1"
    assert entries["pods/eviction"]["kind"] == "Eviction"
    assert "group" not in entries["pods/status"]
    apps = {e["name"]: e for e in resources.discovery_entries("apps", "v1")}
    assert apps["statefulsets/scale"]["group"] == "autoscaling"
    assert apps["statefulsets"]["categories"] == ["all"]


def test_every_listed_subresource_has_a_kind_and_verbs() -> None:
    for row in resources.RESOURCES:
        for name in row.subresources:
            sub = row.subresource(name)
            assert sub is not None, f"{row.plural}/{name}"
            assert sub.kind
            assert sub.verbs


def test_group_versions_start_with_core_and_do_not_repeat() -> None:
    gvs = resources.group_versions()
    assert gvs[0] == ("", "v1")
    assert len(gvs) == len(set(gvs))
    assert ("apps", "v1") in gvs
    assert ("policy", "v1") in gvs
