"""Pod and host addresses in 127.0.0.0/8: every pod its own, unique across nodes.

All processes share the host's network namespace, so "a pod IP" is a loopback address the
containers bind (Linux routes all of 127/8 to lo). Node ``i`` owns 127.<10+i>.0.0/16: its host
IP is 127.<10+i>.0.1 and pods get 127.<10+i>.<a>.<b> round-robin (like the host-local IPAM kind
uses), skipping .0/.255 host parts, so a freed address is not handed out again at once.
"""

from __future__ import annotations

import re
import threading

MAX_NODE_INDEX = 245
_WORKER = re.compile(r"^kubesim-worker(\d*)$")


class AddressError(ValueError):
    pass


def node_index_from_name(name: str) -> int | None:
    """kind's naming: kubesim-worker → 1, kubesim-worker2 → 2, ...; None for other names."""
    m = _WORKER.match(name)
    if not m:
        return None
    return int(m.group(1) or "1")


def host_ip(node_index: int) -> str:
    _check(node_index)
    return f"127.{10 + node_index}.0.1"


def _check(node_index: int) -> None:
    if not 1 <= node_index <= MAX_NODE_INDEX:
        raise AddressError(f"node index {node_index} is outside 1..{MAX_NODE_INDEX}")


def _to_ip(node_index: int, n: int) -> str:
    return f"127.{10 + node_index}.{n // 256}.{n % 256}"


def _usable(n: int) -> bool:
    return n % 256 not in (0, 255) and n != 1  # .0.1 is the host


class Allocator:
    """Hands out pod IPs of one node; ``claim`` re-adopts an address a pod already reports."""

    SIZE = 65536

    def __init__(self, node_index: int) -> None:
        _check(node_index)
        self.node_index = node_index
        self._prefix = f"127.{10 + node_index}."
        self._used: dict[str, str] = {}  # ip -> pod uid
        self._last = 1
        self._lock = threading.Lock()

    def owns(self, ip: str) -> bool:
        return ip.startswith(self._prefix)

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
                ip = _to_ip(self.node_index, n)
                if _usable(n) and ip not in self._used:
                    self._last = n
                    self._used[ip] = uid
                    return ip
        raise AddressError(f"node index {self.node_index}: all pod addresses are in use")

    def release(self, uid: str) -> None:
        with self._lock:
            for ip in [ip for ip, owner in self._used.items() if owner == uid]:
                del self._used[ip]
