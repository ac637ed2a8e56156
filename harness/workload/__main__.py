"""``python -m harness.workload serve ...``: the writer without the harness CLI around it.

Same flags and behaviour as ``harness writer serve`` (both build the config with
:func:`config.writer_config`), but it imports only the standard library and blake3: it starts
in ~0.1 s instead of ~0.4 s (typer, click and rich), which matters to a pod restarting after a
crash and to the crash test that restarts it hundreds of times, and it lets the container
image carry nothing but the writer's own dependencies.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.workload import config, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the checkpoint API on a volume")
    p.add_argument("--data-dir", type=Path, default=Path("/data"))
    p.add_argument("--keep-last", type=int)
    p.add_argument("--max-bytes", type=int)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--shard-workers", type=int, default=4)
    p.add_argument("--connection-timeout", type=float, help="seconds a connection may idle or take to send a request")
    p.add_argument("--max-connections", type=int, help="connections served at once; more get 503")
    p.add_argument("--unsafe-skip", help="NEGATIVE CONTROL ONLY: publish-protocol steps to skip")
    p.add_argument("--format", dest="checkpoint_format",
                   help=f"checkpoint format: {', '.join(config.CHECKPOINT_FORMATS)} [env {config.FORMAT_ENV}, raw]")
    p.add_argument("--name", metavar="POD",
                   help="run outside a pod as this pod, <statefulset>-<ordinal> (e.g. ckpt-0) [env POD_NAME]")
    args = parser.parse_args(argv)
    env = {**os.environ, "POD_NAME": args.name} if args.name is not None else dict(os.environ)
    try:
        cfg = config.writer_config(
            env, args.data_dir, host=args.host, port=args.port, keep_last=args.keep_last,
            max_bytes=args.max_bytes, unsafe_skip=args.unsafe_skip, shard_workers=args.shard_workers,
            connection_timeout=args.connection_timeout, max_connections=args.max_connections,
            checkpoint_format=args.checkpoint_format,
        )
        return serve.serve(cfg, env)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
