"""Table cells for Endpoints and EndpointSlices (``printEndpoints`` / ``printEndpointSlice`` upstream).

``kubectl get endpoints`` shows ``ip:port`` pairs of ready addresses (``formatEndpoints``),
``kubectl get endpointslices`` the address type, ports and addresses (``formatDiscoveryPorts``,
``formatDiscoveryEndpoints``); at most three of each, then ``+ N more...``; an empty list is
``<unset>`` for slices and ``<none>`` for Endpoints.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
MAX_SHOWN = 3


def _with_more(items: list[str], count: int, empty: str) -> str:
    text = ",".join(items[:MAX_SHOWN])
    if count > MAX_SHOWN:
        return f"{text} + {count - MAX_SHOWN} more..."
    return text or empty


def endpoints(ep: Obj) -> str:
    shown: list[str] = []
    for subset in ep.get("subsets") or []:
        addresses = [str(a.get("ip") or "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            shown += addresses
            continue
        for port in ports:
            shown += [f"{ip}:{port.get('port')}" for ip in addresses]
    return _with_more(shown, len(shown), "<none>")


def slice_ports(es: Obj) -> str:
    shown = []
    for port in es.get("ports") or []:
        if port.get("port") is not None:
            shown.append(str(port["port"]))
        elif port.get("name") is not None:
            shown.append(str(port["name"]))
        else:
            shown.append("*")
    return _with_more(shown, len(shown), "<unset>")


def slice_endpoints(es: Obj) -> str:
    shown = [str(a) for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return _with_more(shown, len(shown), "<unset>")
