"""Discovery documents (legacy, unaggregated) and ``/version``.

kubectl asks for the aggregated form first (``Accept: application/json;g=apidiscovery.k8s.io;
v=v2;as=APIGroupDiscoveryList, ..., application/json``); answering with the legacy document and
``Content-Type: application/json`` makes client-go fall back to legacy discovery
(``discovery_client.go``: the response content type decides the format), which is what an
older apiserver does. Everything here is derived from :mod:`kubesim.apiserver.resources`.

OpenAPI: see :mod:`kubesim.apiserver.openapi` (v3 per group/version with schemas, and v2).
"""

from __future__ import annotations

from typing import Any

from kubesim import version as kubesim_version
from kubesim.apiserver import resources, store

KUBERNETES_VERSION = kubesim_version.KUBERNETES_VERSION
"""Matches the kubectl wheel's minor version so kubectl prints no version-skew warning (:mod:`kubesim.version`)."""


def version() -> bytes:
    major, minor, _patch = KUBERNETES_VERSION
    return store.dumps({
        "major": str(major),
        "minor": str(minor),
        "emulationMajor": str(major),
        "emulationMinor": str(minor),
        "minCompatibilityMajor": str(major),
        "minCompatibilityMinor": str(minor - 1),
        "gitVersion": kubesim_version.GIT_VERSION,  # = every node's kubeletVersion
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })


def core_versions(server_address: str) -> bytes:
    return store.dumps({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for g, v in resources.group_versions() if g == name]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def group_names() -> list[str]:
    names: list[str] = []
    for group, _version in resources.group_versions():
        if group and group not in names:
            names.append(group)
    return names


def group_list() -> bytes:
    return store.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in group_names()]})


def group(name: str) -> bytes | None:
    if name not in group_names():
        return None
    doc = _group(name)
    doc.update({"kind": "APIGroup", "apiVersion": "v1"})
    return store.dumps(doc)


def resource_list(group_name: str, version_name: str) -> bytes | None:
    if (group_name, version_name) not in resources.group_versions():
        return None
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    return store.dumps({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources.discovery_entries(group_name, version_name),
    })
