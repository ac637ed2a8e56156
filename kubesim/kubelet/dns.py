"""A pod's ``/etc/resolv.conf``, as the kubelet's DNS configurer forms it (``pkg/kubelet/network/dns/dns.go``).

* ``dnsPolicy: ClusterFirst`` (the default; ``ClusterFirstWithHostNet`` too): the cluster DNS as the
  only nameserver (:mod:`kubesim.servicenet`, 127.<C>.0.10), search ``<ns>.svc.cluster.local
  svc.cluster.local cluster.local`` followed by the node's own search domains (duplicates
  dropped), ``options ndots:5``. A ``hostNetwork`` pod with ClusterFirst falls back to Default.
* ``Default``: the node's resolver configuration (the host's ``/etc/resolv.conf``: its
  nameservers, search and options — in a private cluster network those nameservers are
  unreachable, as a real node's resolver is from nowhere else).
* ``None``: nothing but what ``dnsConfig`` says.
* ``dnsConfig`` is appended in every case: nameservers and searches added without duplicates,
  options merged by name (the pod's value wins).
* Limits (``formDNSConfigFitsLimits``): at most 3 nameservers, 32 search domains, none longer
  than 253 characters, 2048 characters in all (upstream also records a ``DNSConfigForming``
  event when it cuts; kubesim cuts silently).

The file is written as containerd writes it (``search``, ``nameserver`` lines, ``options``) into
the pod's directory and bind-mounted over the container's ``/etc/resolv.conf`` (beside the
kubelet-managed ``/etc/hosts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubesim import servicenet

Obj = dict[str, Any]

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
MAX_SEARCH_PATH_LENGTH = 253
DEFAULT_OPTIONS = ("ndots:5",)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """parseResolvConf: nameserver lines accumulate; the last search line and the last options line win."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            nameservers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return nameservers, searches, options


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: list[str], extra: list[Obj]) -> list[str]:
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for given in extra:
        merged[str(given.get("name") or "")] = str(given.get("value") or "")
    return [f"{name}:{value}" if value else name for name, value in merged.items() if name]


def _fit_search(searches: list[str]) -> list[str]:
    out = [s for s in searches[:MAX_SEARCH_PATHS] if len(s) <= MAX_SEARCH_PATH_LENGTH]
    while out and len(" ".join(out)) > MAX_SEARCH_CHARS:
        out.pop()
    return out


def pod_dns(pod: Obj, net: servicenet.ServiceNetwork, host_resolv: str) -> tuple[list[str], list[str], list[str]]:
    """GetPodDNS: (nameservers, searches, options) for the pod."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_servers, host_search, host_options = parse_resolv_conf(host_resolv)
    if policy == "None":
        servers, searches, options = [], [], []
    elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        servers = [net.dns_ip]
        cluster_search = [f"{namespace}.svc.{net.domain}", f"svc.{net.domain}", net.domain]
        searches = _unique(cluster_search + host_search)
        options = list(DEFAULT_OPTIONS)
    else:
        servers, searches, options = host_servers, host_search, host_options
    config: Obj = spec.get("dnsConfig") or {}
    if config:
        servers = _unique(servers + [str(s) for s in config.get("nameservers") or []])
        searches = _unique(searches + [str(s) for s in config.get("searches") or []])
        options = _merge_options(options, list(config.get("options") or []))
    return servers[:MAX_NAMESERVERS], _fit_search(searches), options


def render(servers: list[str], searches: list[str], options: list[str]) -> str:
    lines = []
    if searches:
        lines.append("search " + " ".join(searches))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_resolv_conf(pod_dir: Path, pod: Obj, cluster_index: int) -> Path:
    """The pod's resolv.conf, written (if changed) into its directory; returns its path."""
    try:
        host = HOST_RESOLV_CONF.read_text()
    except OSError:
        host = ""
    text = render(*pod_dns(pod, servicenet.ServiceNetwork(cluster_index), host))
    path = pod_dir / "resolv.conf"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
