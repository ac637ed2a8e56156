"""Objects every cluster starts with: the system namespaces (as kube-apiserver's bootstrap controller creates)."""

from __future__ import annotations

from kubesim.apiserver import resources, rest

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def ensure_defaults(api: rest.Api) -> None:
    namespaces = resources.by_gvr("", "v1", "namespaces")
    assert namespaces is not None
    target = rest.Target(namespaces)
    for name in SYSTEM_NAMESPACES:
        if api.store.get(target.rkey, "", name) is None:
            obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            api.create_obj(target, obj, "Namespace", {})
