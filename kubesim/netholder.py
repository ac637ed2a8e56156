"""The holder of a cluster's private network: ``python -S -E netholder.py --state DIR``.

``kubesim up --network private`` starts it in its own session (``kubesim.network``). It creates
a network namespace (``unshare(CLONE_NEWNET)``) — or, with ``KUBESIM_NETNS_JOIN_FD=N`` in its
environment, enters the existing one that inherited descriptor names: a holder restarted while
kubelets still run in the cluster's namespace must hold that one, not a new one. (An environment
variable, not an argument, so the holder's command line is always the same: ``down`` recognises
even a holder whose record was lost by it.) — brings its loopback up (all of 127.0.0.0/8 then
routes to ``lo`` inside, so pods bind their 127.x addresses there and nothing else exists to send
traffic anywhere), reports on stdout and then does nothing but wait for SIGTERM/SIGINT.

Why a process: a network namespace lives exactly as long as something uses it. Held by a
process, it outlives a SIGKILLed control plane (the holder and the kubelets keep it), and once
the holder and every process of the cluster are gone — ``down``, or everything SIGKILLed — it is
gone too: nothing stale is ever left to clean up (a bind mount under the state directory would
outlive a SIGKILL of everything, and block deleting the directory, until someone unmounted it).

Protocol: one line on stdout, ``ready net:[N]`` (the namespace, as ``/proc/<pid>/ns/net`` names
it) or ``error <what failed>`` followed by exit 2. Stdlib only, so it starts in a few ms (like the
container shim).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """``ip link set lo up`` without ip(8): SIOCSIFFLAGS on any socket of the namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _report(line: str) -> None:
    os.write(1, (line + "\n").encode())


def main(argv: list[str]) -> int:
    del argv  # --state DIR is there to name the cluster in the command line (how kubesim knows its processes)
    join = os.environ.pop("KUBESIM_NETNS_JOIN_FD", "")
    join_fd = int(join) if join else None
    # Blocked before "ready": a SIGTERM sent as soon as `up` has the pid is waited for, never lost or fatal early.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    libc = ctypes.CDLL(None, use_errno=True)
    if join_fd is not None:
        what, rc = "setns(CLONE_NEWNET)", libc.setns(join_fd, CLONE_NEWNET)
    else:
        what, rc = "unshare(CLONE_NEWNET)", libc.unshare(CLONE_NEWNET)
    if rc != 0:
        _report(f"error {what}: {os.strerror(ctypes.get_errno())}")
        return 2
    if join_fd is not None:
        os.close(join_fd)
    try:
        loopback_up()
    except OSError as exc:
        _report(f"error bringing up the loopback interface: {exc.strerror}")
        return 2
    os.chdir("/")
    _report(f"ready {os.readlink('/proc/self/ns/net')}")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    signal.sigwait(signals)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
