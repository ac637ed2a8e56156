"""Pod and host addresses in 127.0.0.0/8: every pod its own, unique within its cluster's network.

A pod IP is a loopback address the containers bind (Linux routes all of 127/8 to ``lo``, in the
host's network namespace and in a fresh one alike). Each cluster owns one /16 of it,
127.<C>.0.0/16, chosen by :mod:`kubesim.network` (``C`` = the cluster index: a host-wide lease
from 32..254 when clusters share the host's network, so two clusters on one machine never hand
out the same address; the fixed 10 inside a private network namespace, where nobody else can
see it). Node ``i`` (kubesim-worker → 1, kubesim-worker2 → 2, …) owns 127.<C>.<i>.0/24: its host
IP is 127.<C>.<i>.1 and its pods get 127.<C>.<i>.2 to .254 round-robin (like the host-local IPAM kind
uses), so a freed address is not handed out again at once. 253 addresses per node are more than
the 110 pods a node admits.
"""

from __future__ import annotations

import re
import threading

MAX_NODE_INDEX = 254
MAX_CLUSTER_INDEX = 254
_WORKER = re.compile(r"^kubesim-worker(\d*)$")


class AddressError(ValueError):
    pass


def node_index_from_name(name: str) -> int | None:
    """kind's naming: kubesim-worker → 1, kubesim-worker2 → 2, ...; None for other names."""
    m = _WORKER.match(name)
    if not m:
        return None
    return int(m.group(1) or "1")


def _check(cluster: int, node_index: int) -> None:
    if not 1 <= cluster <= MAX_CLUSTER_INDEX:
        raise AddressError(f"cluster index {cluster} is outside 1..{MAX_CLUSTER_INDEX}")
    if not 1 <= node_index <= MAX_NODE_INDEX:
        raise AddressError(f"node index {node_index} is outside 1..{MAX_NODE_INDEX}")


def cluster_range(cluster: int) -> str:
    """The cluster's addresses, as CIDR."""
    return f"127.{cluster}.0.0/16"


def host_ip(cluster: int, node_index: int) -> str:
    _check(cluster, node_index)
    return f"127.{cluster}.{node_index}.1"


class Allocator:
    """Hands out pod IPs of one node; ``claim`` re-adopts an address a pod already reports."""

    SIZE = 256

    def __init__(self, cluster: int, node_index: int) -> None:
        _check(cluster, node_index)
        self.cluster = cluster
        self.node_index = node_index
        self._prefix = f"127.{cluster}.{node_index}."
        self._used: dict[str, str] = {}  # ip -> pod uid
        self._last = 1
        self._lock = threading.Lock()

    def owns(self, ip: str) -> bool:
        host = ip.removeprefix(self._prefix)
        return host != ip and host.isdigit() and 2 <= int(host) <= 254

    def claim(self, uid: str, ip: str) -> bool:
        """Keep ``ip`` for pod ``uid`` (after a kubelet restart); False if it is not ours or taken."""
        with self._lock:
            if not self.owns(ip) or self._used.get(ip, uid) != uid:
                return False
            self._used[ip] = uid
            return True

    def allocate(self, uid: str) -> str:
        with self._lock:
            for ip, owner in self._used.items():
                if owner == uid:
                    return ip
            for step in range(1, self.SIZE):
                n = (self._last + step) % self.SIZE
                ip = f"{self._prefix}{n}"
                if 2 <= n <= 254 and ip not in self._used:  # .0 network, .1 the node, .255 broadcast
                    self._last = n
                    self._used[ip] = uid
                    return ip
        raise AddressError(f"node {self._prefix}0/24: all pod addresses are in use")

    def release(self, uid: str) -> None:
        with self._lock:
            for ip in [ip for ip, owner in self._used.items() if owner == uid]:
                del self._used[ip]
