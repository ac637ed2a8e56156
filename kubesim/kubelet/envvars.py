"""A container's environment: env, envFrom, the downward API and ``$(VAR)`` expansion.

Follows ``pkg/kubelet/kubelet_pods.go`` makeEnvironmentVariables and ``pkg/fieldpath``: fieldRef
paths metadata.name/namespace/uid, metadata.labels['k'], metadata.annotations['k'],
spec.nodeName, spec.serviceAccountName, status.podIP(s), status.hostIP(s); resourceFieldRef
limits/requests.cpu|memory; configMapKeyRef/secretKeyRef (``optional``); envFrom with prefix;
``$(NAME)`` expands earlier variables and ``$$`` escapes (``third_party/forked/golang/expansion``).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from kubesim.apiserver.admission import quantity

Obj = dict[str, Any]
#: (kind "configmaps"|"secrets", namespace, name) -> object or None when it does not exist
Lookup = Callable[[str, str, str], Obj | None]

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The environment cannot be built: CreateContainerConfigError with this message."""


def field_value(pod: Obj, path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    if path not in simple:
        raise EnvError(f'unsupported fieldPath: "{path}"')
    return str(simple[path] or "")


def resource_value(container: Obj, ref: Obj, node_allocatable: Mapping[str, str]) -> str:
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name) if kind in ("limits", "requests") else None
    if raw is None and kind == "limits":
        raw = node_allocatable.get(name)
    if raw is None:
        return "0"
    try:
        value = quantity.parse_quantity(str(raw))
        divisor = quantity.parse_quantity(str(ref.get("divisor") or "1"))
    except ValueError as exc:
        raise EnvError(f"resourceFieldRef {resource}: {exc}") from None
    if divisor == 0:
        divisor = quantity.parse_quantity("1")
    return str(math.ceil(value / divisor))


def _key_ref(ref: Obj, kind: str, namespace: str, lookup: Lookup) -> str | None:
    name = str(ref.get("name") or "")
    key = str(ref.get("key") or "")
    obj = lookup(kind, namespace, name)
    singular = "configmap" if kind == "configmaps" else "secret"
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{singular} "{name}" not found')
    data = obj.get("data") or {}
    if key in data:
        value = data[key]
        return base64.b64decode(value).decode(errors="replace") if kind == "secrets" else str(value)
    binary = obj.get("binaryData") or {}
    if kind == "configmaps" and key in binary:
        return base64.b64decode(binary[key]).decode(errors="replace")
    if ref.get("optional"):
        return None
    raise EnvError(f'couldn\'t find key {key} in {"ConfigMap" if kind == "configmaps" else "Secret"} '
                   f"{namespace}/{name}")


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(NAME)`` → env[NAME] when defined (left as is otherwise); ``$$`` → ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def build(pod: Obj, container: Obj, *, pod_ip: str, host_ip: str, lookup: Lookup,
          node_allocatable: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the pod spec defines for ``container`` (image ENV is merged by the caller)."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            obj = lookup(kind, namespace, str(ref.get("name") or ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{"configmap" if kind == "configmaps" else "secret"} "{ref.get("name")}" not found')
            for k, v in (obj.get("data") or {}).items():
                env[prefix + k] = base64.b64decode(v).decode(errors="replace") if kind == "secrets" else str(v)
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if source.get("fieldRef"):
            value = field_value(pod, str(source["fieldRef"].get("fieldPath") or ""), pod_ip, host_ip)
        elif source.get("resourceFieldRef"):
            value = resource_value(container, source["resourceFieldRef"], node_allocatable or {})
        elif source.get("configMapKeyRef"):
            value = _key_ref(source["configMapKeyRef"], "configmaps", namespace, lookup)
        elif source.get("secretKeyRef"):
            value = _key_ref(source["secretKeyRef"], "secrets", namespace, lookup)
        else:
            raise EnvError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    return env
