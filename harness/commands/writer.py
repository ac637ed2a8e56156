"""``harness writer``: the checkpoint writer that runs in every pod, and its benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

writer_app = typer.Typer(help="The checkpoint writer (runs in every pod of the StatefulSet).", no_args_is_help=True)


@writer_app.command("serve")
def serve(
    *,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="the volume's mount point")] = Path("/data"),
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", help="checkpoints to keep, 0 = all [env KEEP_LAST, default 3]")
    ] = None,
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", help="largest checkpoint accepted [env MAX_CHECKPOINT_BYTES, 4 GiB]")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="listen address [env LISTEN_HOST, 0.0.0.0]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="listen port, 0 = free [env LISTEN_PORT, 8080]")] = None,
    shard_workers: Annotated[int, typer.Option("--shard-workers", min=1, help="parallel shard writers")] = 4,
    connection_timeout: Annotated[
        float | None,
        typer.Option("--connection-timeout", help="seconds a connection may idle between requests or take to send "
                     "one [env WRITER_CONNECTION_TIMEOUT, 30]"),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option("--max-connections", help="connections served at once, more are answered 503 "
                     "[env WRITER_MAX_CONNECTIONS, 256]"),
    ] = None,
    checkpoint_format: Annotated[
        str | None,
        typer.Option("--format", help="checkpoint format: raw, safetensors, torch-dcp, orbax, each library format also "
                     "-hardened (docs/formats.md) [env WRITER_FORMAT, raw]"),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="POD",
                     help="run outside a pod as this pod, <statefulset>-<ordinal> (e.g. ckpt-0) [env POD_NAME]"),
    ] = None,
    unsafe_skip: Annotated[
        str | None,
        typer.Option(
            "--unsafe-skip",
            help="NEGATIVE CONTROL ONLY: comma-separated publish-protocol steps to skip "
            "(file-fsync, flush, tmpdir-fsync, parent-fsync, atomic-rename) [env WRITER_UNSAFE_SKIP]",
        ),
    ] = None,
) -> None:
    """Serve the checkpoint API on the volume at --data-dir (who it is: the pod's environment, or --name)."""
    from harness.workload import config
    from harness.workload import serve as serve_mod

    env = dict(os.environ)
    if name is not None:  # local use: the identity a pod would get from the downward API
        env["POD_NAME"] = name
    elif not env.get("POD_NAME", "").strip():
        print("error: who is this writer? In a pod, POD_NAME comes from the downward API; outside one, pass "
              "--name <statefulset>-<ordinal> (e.g. --name ckpt-0)", file=sys.stderr)
        raise typer.Exit(2)
    try:
        cfg = config.writer_config(
            env, data_dir, host=host, port=port, keep_last=keep_last, max_bytes=max_bytes,
            unsafe_skip=unsafe_skip, shard_workers=shard_workers, connection_timeout=connection_timeout,
            max_connections=max_connections, checkpoint_format=checkpoint_format,
        )
        code = serve_mod.serve(cfg, env)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@writer_app.command("bench")
def bench(
    dir: Annotated[Path | None, typer.Option("--dir", help="directory to measure in (default: a temp dir)")] = None,
) -> None:
    """Writer throughput and commit rate against a raw write+fsync baseline in the same directory."""
    from rich.console import Console

    from harness.workload import bench as bench_mod

    if dir is not None and not dir.is_dir():
        print(f"error: --dir {dir} is not a directory; create it or pick an existing one", file=sys.stderr)
        raise typer.Exit(2)
    bench_mod.run(Console(), base_dir=dir)


def register(app: typer.Typer) -> None:
    app.add_typer(writer_app, name="writer")
