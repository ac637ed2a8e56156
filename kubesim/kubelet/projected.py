"""Projected volumes and the in-cluster API address: what a pod needs to talk to the API server as itself.

* **projected** (``pkg/volume/projected``): the files of its ``sources`` in one directory —
  ``serviceAccountToken`` (a TokenRequest for the pod's service account bound to the pod, as the
  kubelet's token manager sends it: ``audience`` if set, ``expirationSeconds`` (default 3600) and
  ``boundObjectRef`` = the pod), ``configMap``, ``secret`` (``items``/``optional`` as their own
  volumes) and ``downwardAPI`` (``fieldRef`` items). The ServiceAccount admission plugin adds one
  such volume (``kube-api-access-*``: token, ``ca.crt``, ``namespace``) to every pod.
* **the master service's variables** (``pkg/kubelet/kubelet_pods.go`` getServiceEnvVarMap): every
  container gets ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the docker-link ``KUBERNETES_PORT*``
  variables whether or not ``enableServiceLinks`` is set, which is how ``rest.InClusterConfig``
  (client-go, the Python client's ``load_incluster_config``) finds the API server. Upstream they
  name the ``kubernetes`` Service's ClusterIP and port 443; kubesim names the address the kubelet
  itself reaches the API server at (127.0.0.1 and the server's port, which its certificate covers
  and which pods reach: they share the cluster's network with the kubelets).

Token rotation is not done: the token the admission plugin asks for (3607 s, bound to the pod)
is issued for a year, as ``--service-account-extend-token-expiration`` does upstream.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubesim.kubelet import envvars

Obj = dict[str, Any]
Getter = Callable[[str, str, str], Obj | None]  # (plural, namespace, name) -> object or None
TokenSource = Callable[[str, str, Obj], str]
"""(namespace, service account, TokenRequest body) -> the issued token; raises on refusal."""

DEFAULT_TOKEN_EXPIRATION = 3600


class ProjectionError(Exception):
    """A source cannot be projected (yet): the volume's mount fails with this message and is retried."""


def token_request(pod: Obj, source: Obj) -> Obj:
    """The TokenRequest the kubelet's token manager sends for one ``serviceAccountToken`` source."""
    meta = pod.get("metadata") or {}
    spec: Obj = {"expirationSeconds": int(source.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION),
                 "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": str(meta.get("name") or ""),
                                    "uid": str(meta.get("uid") or "")}}
    if source.get("audience"):
        spec["audiences"] = [str(source["audience"])]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def _object_files(kind: str, source: Obj, namespace: str, get: Getter) -> dict[str, bytes]:
    name = str(source.get("name") or "")
    obj = get(kind, namespace, name)
    singular = "configmap" if kind == "configmaps" else "secret"
    if obj is None:
        if source.get("optional"):
            return {}
        raise ProjectionError(f'{singular} "{name}" not found')
    data: dict[str, bytes]
    if kind == "secrets":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    items = source.get("items")
    if not items:
        return data
    out: dict[str, bytes] = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if source.get("optional"):
                continue
            raise ProjectionError(f"{singular} references non-existent config key: {key}")
        out[str(item.get("path") or key)] = data[key]
    return out


def files(pod: Obj, projected: Obj, get: Getter, token: TokenSource | None, *, pod_ip: str,
          host_ip: str) -> dict[str, bytes]:
    """Every file of a projected volume (relative path -> content); raises ProjectionError."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    out: dict[str, bytes] = {}
    for source in projected.get("sources") or []:
        if not isinstance(source, dict):
            continue
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"] or {}
            if token is None:
                raise ProjectionError("this kubelet cannot request service account tokens")
            account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
            try:
                issued = token(namespace, account, token_request(pod, sat))
            except Exception as exc:
                raise ProjectionError(f'failed to fetch token: {exc}') from None
            out[str(sat.get("path") or "token")] = issued.encode()
        elif "configMap" in source or "secret" in source:
            kind = "configmaps" if "configMap" in source else "secrets"
            out.update(_object_files(kind, source.get("configMap") or source.get("secret") or {}, namespace, get))
        elif "downwardAPI" in source:
            for item in (source["downwardAPI"] or {}).get("items") or []:
                ref = item.get("fieldRef")
                if not ref:
                    raise ProjectionError("only fieldRef items of downwardAPI are supported by kubesim")
                try:
                    value = envvars.field_value(pod, str(ref.get("fieldPath")), pod_ip, host_ip)
                except envvars.EnvError as exc:
                    raise ProjectionError(str(exc)) from None
                out[str(item.get("path"))] = value.encode()
        else:
            kinds = sorted(source)
            raise ProjectionError(f"projected source {kinds} is not supported by kubesim")
    return out


def master_service_env(host: str, port: int) -> dict[str, str]:
    """The ``kubernetes`` service's variables as the kubelet sets them in every container."""
    url = f"tcp://{host}:{port}"
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": url, prefix: url,
            f"{prefix}_PROTO": "tcp", f"{prefix}_PORT": str(port), f"{prefix}_ADDR": host}
