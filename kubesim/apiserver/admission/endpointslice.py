"""EndpointSlice (discovery.k8s.io/v1) defaulting and validation.

Follows ``pkg/apis/discovery/v1/defaults.go`` (a port without a name gets ``""``, without a
protocol ``TCP``) and ``pkg/apis/discovery/validation/validation.go``: ``addressType`` required,
one of IPv4/IPv6/FQDN and immutable; at most 1000 endpoints, each with 1-100 addresses of the
slice's type; hostnames DNS-1123 labels; at most 100 ports with unique DNS-1123-label names,
protocols TCP/UDP/SCTP and numbers 1-65535.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, MutableMapping
from typing import Any

from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver.admission.meta import as_list, as_map, dns1123_label_errors, immutable

Obj = MutableMapping[str, Any]
Errors = list[fe.FieldError]

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 100


def default(es: Obj) -> None:
    for port in as_list(es.get("ports")):
        if isinstance(port, MutableMapping):
            if port.get("name") is None:
                port["name"] = ""
            if port.get("protocol") is None:
                port["protocol"] = "TCP"


def _address_errors(address: object, address_type: object, path: str) -> Errors:
    text = str(address)
    if address_type in ("IPv4", "IPv6"):
        try:
            parsed = ipaddress.ip_address(text)
        except ValueError:
            return [fe.invalid(path, address, "must be a valid IP address")]
        if (parsed.version == 4) != (address_type == "IPv4"):
            return [fe.invalid(path, address, f"must be an {address_type} address")]
    return []


def validate(es: Mapping[str, Any]) -> Errors:
    errs: Errors = []
    address_type = es.get("addressType")
    if not address_type:
        errs.append(fe.required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errs.append(fe.not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = as_list(es.get("endpoints"))
    if len(endpoints) > MAX_ENDPOINTS:
        errs.append(fe.FieldError(fe.TOO_MANY, "endpoints", f"must have at most {MAX_ENDPOINTS} items",
                                  len(endpoints)))
    for i, raw in enumerate(endpoints):
        path = f"endpoints[{i}]"
        endpoint = as_map(raw)
        addresses = as_list(endpoint.get("addresses"))
        if not addresses:
            errs.append(fe.required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(fe.FieldError(fe.TOO_MANY, f"{path}.addresses", f"must have at most {MAX_ADDRESSES} items",
                                      len(addresses)))
        for j, address in enumerate(addresses):
            errs += _address_errors(address, address_type, f"{path}.addresses[{j}]")
        hostname = endpoint.get("hostname")
        if hostname is not None:
            errs += [fe.invalid(f"{path}.hostname", hostname, msg) for msg in dns1123_label_errors(str(hostname))]
    ports = as_list(es.get("ports"))
    if len(ports) > MAX_PORTS:
        errs.append(fe.FieldError(fe.TOO_MANY, "ports", f"must have at most {MAX_PORTS} items", len(ports)))
    names: set[str] = set()
    for i, raw in enumerate(ports):
        path = f"ports[{i}]"
        port = as_map(raw)
        name = str(port.get("name") or "")
        if name:
            errs += [fe.invalid(f"{path}.name", name, msg) for msg in dns1123_label_errors(name)]
        if name in names:
            errs.append(fe.duplicate(f"{path}.name", name))
        names.add(name)
        if port.get("protocol") not in PROTOCOLS:
            errs.append(fe.not_supported(f"{path}.protocol", port.get("protocol"), PROTOCOLS))
        number = port.get("port")
        if number is not None and (not isinstance(number, int) or not 1 <= number <= 65535):
            errs.append(fe.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive"))
    return errs


def validate_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> Errors:
    return validate(new) + immutable(new.get("addressType"), old.get("addressType"), "addressType")
