"""``python -m kubesim.lazyfs``: mount / power-loss / unmount / status / sync / cleanup / check / bench.

argparse rather than the typer CLI of ``kubesim``: the ``daemon`` subcommand is what every mount
starts, and it should not pay for importing typer and rich.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubesim.lazyfs import manage


def _find(state: Path, mountpoint: Path) -> manage.Mount:
    from kubesim.lazyfs import mountinfo

    where = mountinfo.canonical(mountpoint)
    for m in manage.find(state):
        if str(m.mountpoint) == where:
            return m
    raise manage.LazyFSError(f"no lazyfs mount of {where} is recorded under {state}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim.lazyfs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("mount", help="mount over a backing dir; returns once mounted (the daemon stays)")
    p.add_argument("--backing", type=Path, required=True)
    p.add_argument("--mountpoint", type=Path, required=True)
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--owner-pid", type=int, default=0,
                   help="unmount (cleanly) when this process ends; default 0: the mount outlives this command")
    for name, text in (("power-loss", "drop everything not durable and end the mount"),
                       ("unmount", "clean unmount (keeps everything)"),
                       ("status", "what a power loss now would drop"),
                       ("sync", "make everything durable")):
        q = sub.add_parser(name, help=text)
        q.add_argument("--mountpoint", type=Path, required=True)
        q.add_argument("--state", type=Path, required=True)
    q = sub.add_parser("cleanup", help="unmount every lazyfs mount recorded under a state dir, live or dead")
    q.add_argument("--state", type=Path, required=True)
    sub.add_parser("check", help="say whether lazyfs can mount here (exit 0) or what is missing (exit 2)")
    b = sub.add_parser("bench", help="the checkpoint writer's throughput through a lazyfs mount vs direct")
    b.add_argument("--bytes", type=int, default=1 << 20)
    b.add_argument("--shards", type=int, default=4)
    b.add_argument("--seconds", type=float, default=5.0)
    d = sub.add_parser("daemon", help="internal: the process that serves one mount")
    d.add_argument("--backing", type=Path, required=True)
    d.add_argument("--mountpoint", type=Path, required=True)
    d.add_argument("--socket", type=Path, required=True)
    d.add_argument("--fsname", required=True)
    d.add_argument("--owner-pid", type=int)
    d.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except manage.LazyFSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "daemon":
        from kubesim.lazyfs import daemon

        return daemon.run(args.backing, args.mountpoint, args.socket, args.fsname, owner_pid=args.owner_pid,
                          ready_fd=args.ready_fd)
    if args.command == "check":
        reason = manage.unavailable_reason()
        print(reason or "lazyfs can mount here")
        return 2 if reason else 0
    if args.command == "bench":
        from kubesim.lazyfs import bench

        print(json.dumps(bench.run(nbytes=args.bytes, shards=args.shards, seconds=args.seconds), indent=1))
        return 0
    if args.command == "cleanup":
        for line in manage.cleanup(args.state, live=True):
            print(line)
        return 0
    if args.command == "mount":
        m = manage.mount(args.backing, args.mountpoint, args.state, owner_pid=args.owner_pid)
        print(json.dumps(manage.describe(m)))
        return 0
    m = _find(args.state, args.mountpoint)
    if args.command == "power-loss":
        print(json.dumps({"dropped": manage.power_loss(m)}))
    elif args.command == "unmount":
        manage.unmount(m)
    elif args.command == "status":
        print(json.dumps({"undurable": manage.status(m)}))
    elif args.command == "sync":
        print(json.dumps({"made_durable": manage.sync(m)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
