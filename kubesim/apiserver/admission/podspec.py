"""Pod spec validation (`pkg/apis/core/validation/validation.go` ValidatePodSpec and helpers).

Shared by pods and anything else that embeds a pod spec; field paths are rooted at the caller's
`path` so errors read `spec.containers[0].image` for a pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver import selectors
from kubesim.apiserver.admission import defaults, quantity
from kubesim.apiserver.admission.meta import (
    NEGATIVE_MSG,
    Errors,
    as_list,
    as_map,
    dns1123_label_errors,
    name_is_dns_label,
    name_is_dns_subdomain,
    nonnegative,
    validate_labels,
)

PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
IANA_SVC_NAME_RE = re.compile("^[-a-z0-9]+$")
_ONE_LETTER_RE = re.compile("[a-z]")

# ---------------------------------------------------------------------------------------------
# Quantities and resources
# ---------------------------------------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def validate_quantity(value: object, path: str, *, positive: bool = False) -> Errors:
    try:
        amount = quantity.parse_quantity(value)
    except ValueError as exc:
        return [fe.invalid(path, value, str(exc))]
    if positive and amount <= 0:
        return [fe.invalid(path, value, "must be greater than zero")]
    if amount < 0:
        return [fe.invalid(path, value, NEGATIVE_MSG)]
    return []


def validate_resource_requirements(resources_: object, path: str) -> Errors:
    errs: Errors = []
    res = as_map(resources_)
    limits, requests = as_map(res.get("limits")), as_map(res.get("requests"))
    for section, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            errs += validate_quantity(value, f"{path}.{section}[{name}]")
    for name, request in requests.items():
        if name not in limits:
            continue
        try:
            req, lim = quantity.parse_quantity(request), quantity.parse_quantity(limits[name])
        except ValueError:
            continue
        if req > lim:
            errs.append(fe.invalid(f"{path}.requests[{name}]", request,
                                   f"must be less than or equal to {name} limit of {limits[name]}"))
    return errs


# ---------------------------------------------------------------------------------------------
# Pod spec
# ---------------------------------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def port_name_errors(name: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME)."""
    errs: list[str] = []
    if len(name) > 15:
        errs.append(selectors.max_len_error(15))
    if not IANA_SVC_NAME_RE.match(name):
        errs.append("must contain only alphanumeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if not _ONE_LETTER_RE.search(name):
        errs.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def valid_port_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _validate_probe(probe: object, path: str) -> Errors:
    if probe is None:
        return []
    p = as_map(probe)
    errs: Errors = []
    handlers = [h for h in _PROBE_HANDLERS if p.get(h) is not None]
    if not handlers:
        errs.append(fe.required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        errs.append(fe.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += nonnegative(p.get(key), f"{path}.{key}")
    http_get = p.get("httpGet")
    if isinstance(http_get, Mapping):
        port = http_get.get("port")
        if isinstance(port, str):
            errs += [fe.invalid(f"{path}.httpGet.port", port, msg) for msg in port_name_errors(port)]
        elif not valid_port_number(port):
            errs.append(fe.invalid(f"{path}.httpGet.port", port, PORT_RANGE_MSG))
    return errs


def _validate_container(ctr: Mapping[str, Any], path: str, volume_names: set[str]) -> Errors:
    errs: Errors = []
    name = ctr.get("name") or ""
    if not name:
        errs.append(fe.required(f"{path}.name"))
    else:
        errs += [fe.invalid(f"{path}.name", name, msg) for msg in dns1123_label_errors(str(name))]
    image = ctr.get("image") or ""
    if not image:
        errs.append(fe.required(f"{path}.image"))
    elif image != image.strip():
        errs.append(fe.invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    policy = ctr.get("imagePullPolicy")
    if policy not in PULL_POLICIES:
        errs.append(fe.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    tmp = ctr.get("terminationMessagePolicy")
    if tmp not in TERMINATION_MESSAGE_POLICIES:
        errs.append(fe.not_supported(f"{path}.terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES))
    port_names: set[str] = set()
    for i, raw_port in enumerate(as_list(ctr.get("ports"))):
        ppath = f"{path}.ports[{i}]"
        port = as_map(raw_port)
        pname = port.get("name")
        if pname:
            errs += [fe.invalid(f"{ppath}.name", pname, msg) for msg in port_name_errors(str(pname))]
            if pname in port_names:
                errs.append(fe.duplicate(f"{ppath}.name", pname))
            port_names.add(str(pname))
        cport = port.get("containerPort")
        if not cport:
            errs.append(fe.required(f"{ppath}.containerPort"))
        elif not valid_port_number(cport):
            errs.append(fe.invalid(f"{ppath}.containerPort", cport, PORT_RANGE_MSG))
        if port.get("hostPort") and not valid_port_number(port.get("hostPort")):
            errs.append(fe.invalid(f"{ppath}.hostPort", port.get("hostPort"), PORT_RANGE_MSG))
        if port.get("protocol") not in PROTOCOLS:
            errs.append(fe.not_supported(f"{ppath}.protocol", port.get("protocol"), PROTOCOLS))
    for i, env in enumerate(as_list(ctr.get("env"))):
        if not as_map(env).get("name"):
            errs.append(fe.required(f"{path}.env[{i}].name"))
    mount_paths: set[str] = set()
    for i, raw_mount in enumerate(as_list(ctr.get("volumeMounts"))):
        mpath = f"{path}.volumeMounts[{i}]"
        mount = as_map(raw_mount)
        mname = mount.get("name") or ""
        if not mname:
            errs.append(fe.required(f"{mpath}.name"))
        elif mname not in volume_names:
            errs.append(fe.not_found(f"{mpath}.name", mname))
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            errs.append(fe.required(f"{mpath}.mountPath"))
        elif mount_path in mount_paths:
            errs.append(fe.invalid(f"{mpath}.mountPath", mount_path, "must be unique"))
        mount_paths.add(str(mount_path))
    errs += validate_resource_requirements(ctr.get("resources"), f"{path}.resources")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        errs += _validate_probe(ctr.get(probe), f"{path}.{probe}")
    return errs


def validate_pod_spec(spec: object, path: str) -> Errors:
    s = as_map(spec)
    errs: Errors = []
    volume_names: set[str] = set()
    for i, raw_vol in enumerate(as_list(s.get("volumes"))):
        vpath = f"{path}.volumes[{i}]"
        vol = as_map(raw_vol)
        vname = vol.get("name") or ""
        if not vname:
            errs.append(fe.required(f"{vpath}.name"))
        else:
            errs += [fe.invalid(f"{vpath}.name", vname, msg) for msg in dns1123_label_errors(str(vname))]
            if vname in volume_names:
                errs.append(fe.duplicate(f"{vpath}.name", vname))
            volume_names.add(str(vname))
        sources = [k for k in vol if k in defaults.VOLUME_SOURCES and vol[k] is not None]
        if not sources:
            errs.append(fe.required(vpath, "must specify a volume type"))
        elif len(sources) > 1:
            errs.append(fe.forbidden(f"{vpath}.{sources[1]}", "may not specify more than 1 volume type"))
        claim = as_map(vol.get("persistentVolumeClaim"))
        if "persistentVolumeClaim" in sources and not claim.get("claimName"):
            errs.append(fe.required(f"{vpath}.persistentVolumeClaim.claimName"))
    containers = as_list(s.get("containers"))
    if not containers:
        errs.append(fe.required(f"{path}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, raw_ctr in enumerate(as_list(s.get(key))):
            cpath = f"{path}.{key}[{i}]"
            ctr = as_map(raw_ctr)
            errs += _validate_container(ctr, cpath, volume_names)
            cname = ctr.get("name")
            if cname:
                if cname in seen:
                    errs.append(fe.duplicate(f"{cpath}.name", cname))
                seen.add(str(cname))
    policy = s.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        errs.append(fe.not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    dns = s.get("dnsPolicy")
    if dns not in DNS_POLICIES:
        errs.append(fe.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    deadline = s.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= 2**31 - 1):
        errs.append(fe.invalid(f"{path}.activeDeadlineSeconds", deadline,
                               "must be between 1 and 2147483647, inclusive"))
    for key, check in (("nodeName", name_is_dns_subdomain), ("serviceAccountName", name_is_dns_subdomain),
                       ("hostname", name_is_dns_label), ("subdomain", name_is_dns_label)):
        value = s.get(key)
        if value:
            errs += [fe.invalid(f"{path}.{key}", value, msg) for msg in check(str(value), False)]
    errs += validate_labels(s.get("nodeSelector"), f"{path}.nodeSelector")
    for i, tol in enumerate(as_list(s.get("tolerations"))):
        errs += _validate_toleration(as_map(tol), f"{path}.tolerations[{i}]")
    return errs


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _validate_toleration(tol: Mapping[str, Any], path: str) -> Errors:
    """validateTolerations: key syntax, operator/value pairing, effect, tolerationSeconds only with NoExecute."""
    errs: Errors = []
    key = tol.get("key") or ""
    if key:
        errs += [fe.invalid(f"{path}.key", key, msg) for msg in selectors.qualified_name_errors(str(key))]
    operator = tol.get("operator") or ""
    if not key and operator != "Exists":
        errs.append(fe.invalid(f"{path}.operator", operator, "operator must be Exists when `key` is empty, "
                                                             "which means \"match all values and all keys\""))
    if operator in ("Equal", ""):
        value_errs = selectors.label_value_errors(str(tol.get("value") or ""))
        if value_errs:
            errs.append(fe.invalid(f"{path}.operator", tol.get("value"), ";".join(value_errs)))
    elif operator == "Exists":
        if tol.get("value"):
            errs.append(fe.invalid(f"{path}.operator", dict(tol), "value must be empty when `operator` is 'Exists'"))
    else:
        errs.append(fe.not_supported(f"{path}.operator", operator, ("Equal", "Exists")))
    effect = tol.get("effect")
    if effect and effect not in TAINT_EFFECTS:
        errs.append(fe.not_supported(f"{path}.effect", effect, TAINT_EFFECTS))
    if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
        errs.append(fe.invalid(f"{path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return errs
