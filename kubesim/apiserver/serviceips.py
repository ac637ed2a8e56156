"""ClusterIP allocation for Services: what kube-apiserver's service registry does on create and update.

Follows ``pkg/registry/core/service/storage/alloc.go`` (``initIPFamilyFields``,
``allocClusterIPs``, ``patchAllocatedValues``) and ``pkg/registry/core/service/ipallocator``:

* on create, ``ipFamilyPolicy`` defaults to ``SingleStack`` (``RequireDualStack`` for a headless
  Service without a selector), ``ipFamilies`` to the cluster's one family (IPv4; plus IPv6 for
  that headless case, which the allocator allows), ``clusterIPs`` to ``[clusterIP]``;
* a headless Service (``clusterIP: None``) gets ``clusterIPs: [None]`` and no address; an
  ExternalName Service gets nothing;
* any other Service gets a free address of the cluster's range (:mod:`kubesim.servicenet`,
  127.<C>.0.0/24): the one it asks for — ``failed to allocate IP …: provided IP is already
  allocated`` / ``… is not in the valid range`` otherwise, as 422s on ``spec.clusterIPs`` — or a
  random free one, preferring the upper band as upstream does (the lowest 16 addresses are kept
  for static assignments). The range's first address (the ``kubernetes`` Service's upstream) and
  the cluster DNS's .10 are never handed out, not even on request (upstream's ``kubernetes`` and
  ``kube-dns`` Services hold them: ``provided IP is already allocated``). A full range is a 500, as upstream's.
* on update, a body that omits the allocated fields (``kubectl replace`` of a manifest, a PUT
  built from scratch) keeps the old values (``patchAllocatedValues``); a ClusterIP is immutable
  (validation).

Addresses in use are the clusterIPs of the stored Services: the caller allocates under the
store's write lock, so two creates never get the same address, and a deleted Service's address
is free again at once (upstream's allocator releases it on delete too).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, MutableMapping
from typing import Any

from kubesim import servicenet
from kubesim.apiserver import errors
from kubesim.apiserver import fielderrors as fe

Obj = MutableMapping[str, Any]

NONE = "None"
STATIC_BAND_MIN, STATIC_BAND_MAX, STATIC_BAND_STEP = 16, 256, 16
"""ipallocator's static subrange: min(max(16, size/16), 256) addresses at the start of the range."""


class Allocator:
    """ClusterIPs of one IPv4 range; ``reserved`` addresses are only given to Services that ask for them."""

    def __init__(self, cidr: ipaddress.IPv4Network, reserved: Iterable[str] = (),
                 rng: random.Random | None = None) -> None:
        self.cidr = cidr
        self.reserved = frozenset(reserved)
        self._rng = rng or random.SystemRandom()
        hosts = [str(ip) for ip in cidr.hosts()]
        band = min(max(STATIC_BAND_MIN, len(hosts) // STATIC_BAND_STEP), STATIC_BAND_MAX)
        self._lower = [ip for ip in hosts[:band] if ip not in self.reserved]
        self._upper = [ip for ip in hosts[band:] if ip not in self.reserved]

    def describe(self) -> str:
        return str(self.cidr)

    def prepare_create(self, svc: Obj, used: Iterable[str]) -> None:
        """Default the IP-family fields and allocate the clusterIP(s) of a new Service (in place).

        Raises the 422/500 upstream raises; ``used`` are the clusterIPs of the Services stored now.
        """
        spec = _spec(svc)
        name = str((svc.get("metadata") or {}).get("name") or "")
        if spec.get("type") == "ExternalName":
            return
        _sync_cluster_ip_fields(spec)
        headless = spec.get("clusterIP") == NONE
        selectorless = not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless and selectorless else "SingleStack"
        families = [str(f) for f in spec.get("ipFamilies") or []]
        if headless and selectorless:
            if not families:
                families = ["IPv4"]
            if len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = families
            return
        problems = []
        if spec["ipFamilyPolicy"] == "RequireDualStack":
            problems.append(fe.invalid("spec.ipFamilyPolicy", spec["ipFamilyPolicy"],
                                       "this cluster is not configured for dual-stack services"))
        for i, family in enumerate(families):
            if family != "IPv4":
                problems.append(fe.invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster"))
        if problems:
            raise errors.invalid("", "Service", name, problems)
        spec["ipFamilies"] = families or ["IPv4"]
        if headless:
            spec["clusterIPs"] = [NONE]
            return
        wanted = str(spec.get("clusterIP") or "")
        taken = set(used)
        if wanted:
            self._check_requested(name, wanted, taken, list(spec.get("clusterIPs") or [wanted]))
            chosen = wanted
        else:
            chosen = self._next(taken)
        spec["clusterIP"] = chosen
        spec["clusterIPs"] = [chosen]

    def _check_requested(self, name: str, wanted: str, taken: set[str], shown: list[Any]) -> None:
        try:
            address = ipaddress.ip_address(wanted)
        except ValueError:
            return  # validation names the malformed address
        why = ""
        if address not in self.cidr or address in (self.cidr.network_address, self.cidr.broadcast_address):
            why = f"the provided IP ({wanted}) is not in the valid range. The range of valid IPs is {self.cidr}"
        elif wanted in taken or wanted in self.reserved:  # reserved: held by upstream's kubernetes / kube-dns
            why = "provided IP is already allocated"
        if why:
            raise errors.invalid("", "Service", name, [
                fe.invalid("spec.clusterIPs", shown, f"failed to allocate IP {wanted}: {why}")])

    def _next(self, taken: set[str]) -> str:
        for band in (self._upper, self._lower):
            free = [ip for ip in band if ip not in taken]
            if free:
                return self._rng.choice(free)
        raise errors.internal("failed to allocate a serviceIP: range is full")


def for_network(net: servicenet.ServiceNetwork) -> Allocator:
    """The allocator of a cluster's service range, keeping the ``kubernetes`` Service's and the DNS's addresses."""
    return Allocator(net.service_cidr, reserved=(net.kubernetes_ip, net.dns_ip))


def prepare_update(new: Obj, old: Obj) -> None:
    """patchAllocatedValues + the policy inheritance of initIPFamilyFields: keep what was allocated."""
    spec, old_spec = _spec(new), _spec(old)
    if spec.get("type") == "ExternalName":
        return
    if not spec.get("clusterIP") and not spec.get("clusterIPs") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
        if old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    _sync_cluster_ip_fields(spec)
    for key in ("ipFamilyPolicy", "ipFamilies"):
        if spec.get(key) is None and old_spec.get(key) is not None:
            spec[key] = old_spec[key]


def cluster_ips(svc: Any) -> list[str]:
    """The allocated addresses of a stored Service (none for headless / ExternalName ones)."""
    spec = (svc.get("spec") if isinstance(svc, dict) else None) or {}
    ips = [str(ip) for ip in spec.get("clusterIPs") or [] if ip and ip != NONE]
    first = spec.get("clusterIP")
    if first and first != NONE and first not in ips:
        ips.append(str(first))
    return ips


def _spec(svc: Obj) -> Obj:
    spec = svc.get("spec")
    if not isinstance(spec, MutableMapping):
        spec = svc["spec"] = {}
    return spec


def _sync_cluster_ip_fields(spec: Obj) -> None:
    """SetDefaults_Service / conversion: ``clusterIPs[0]`` and ``clusterIP`` say the same."""
    ips = spec.get("clusterIPs")
    if not ips and spec.get("clusterIP"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif ips and not spec.get("clusterIP"):
        spec["clusterIP"] = ips[0]
