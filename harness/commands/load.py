"""``harness load``: checkpoint-write load without chaos, recorded so ``harness check`` can judge it.

Targets either explicit URLs (``--urls``) or a deployed StatefulSet on any cluster
(``--statefulset`` with ``--namespace`` and kubeconfig/context; pods reached by pod IP or
``kubectl port-forward``, followed as they move). Every endpoint must answer ``/readyz``
before the load starts. The run folder (``<out>/<utc>-load/``) gets run.json, the history
of every locust process, locust's CSV/HTML/JSON under ``load/`` and, with ``--volumes``,
facts.json read back from the local volumes — then ``harness check`` can judge it.

Exit codes: 0 the load ran; 1 locust failed or the run could not be completed; 2 bad input
(one line, nothing created).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from harness.kube import endpoints as kube_endpoints
    from harness.load import runner


def _bad(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _parse_volumes(text: str) -> dict[int, Path]:
    volumes: dict[int, Path] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        ordinal, sep, path = item.partition("=")
        if not sep or not ordinal.strip().isdigit():
            raise ValueError(f"--volumes entry {item!r} must be ORDINAL=DIR, e.g. 0=/data/ckpt-0")
        directory = Path(path.strip())
        if not directory.is_dir():
            raise ValueError(f"--volumes: {directory} is not a directory")
        volumes[int(ordinal)] = directory
    return volumes


def load(
    *,
    urls: Annotated[str | None, typer.Option("--urls", help="URL[,URL] (ordinal = position) or ORD=URL[,...]")] = None,
    statefulset: Annotated[str | None, typer.Option("--statefulset", help="StatefulSet to load")] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="its namespace")] = "default",
    kubeconfig: Annotated[Path | None, typer.Option("--kubeconfig", help="kubeconfig (default: kubectl's)")] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context")] = None,
    reach: Annotated[str, typer.Option("--reach", help="auto | pod-ip | port-forward")] = "auto",
    users: Annotated[int, typer.Option("--users", "-u", help="locust users (spread over ordinals)")] = 4,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", "-r", help="users started per second")] = 10.0,
    duration: Annotated[str, typer.Option("--duration", "-t", help="load time, e.g. 30s, 5m")] = "30s",
    size: Annotated[str, typer.Option("--size", help="checkpoint size, e.g. 64KiB, 1MiB")] = "1MiB",
    shards: Annotated[int, typer.Option("--shards", help="shard files per checkpoint")] = 1,
    rate_per_ordinal: Annotated[
        float, typer.Option("--rate-per-ordinal", help="checkpoints/s per ordinal; 0 = as fast as possible")
    ] = 0.0,
    workers: Annotated[int, typer.Option("--workers", help="locust worker processes (0 = one local process)")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds before a request counts as info")] = 60.0,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="changing load DURATION:USERS[@RATE],... e.g. 30s:4,2m:16@4 "
                     "(replaces --users/--duration)"),
    ] = None,
    volumes: Annotated[
        str | None, typer.Option("--volumes", help="ORD=DIR[,...]: local volumes to read back into facts.json")
    ] = None,
    keep_last: Annotated[int, typer.Option("--keep-last", help="the writers' KEEP_LAST (for the checker)")] = 3,
    out: Annotated[Path, typer.Option("--out", help="reports folder")] = Path("reports"),
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", help="seconds to wait for /readyz")] = 5.0,
) -> None:
    """Write checkpoints to every ordinal with locust; print a summary; store a checkable run folder."""
    from harness.load import endpoints, preflight, runner, units
    from harness.load import stages as stages_mod

    try:
        duration_s = units.parse_duration(duration)
        size_bytes = units.parse_size(size)
        load_stages = stages_mod.parse(stages) if stages is not None else ()
        if load_stages:
            duration_s = stages_mod.total_s(load_stages)
            users = max(s.users for s in load_stages)
        volume_dirs = _parse_volumes(volumes) if volumes else {}
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if reach not in ("auto", "pod-ip", "port-forward"):
        raise _bad(f"--reach {reach!r} must be auto, pod-ip or port-forward")
    if (urls is None) == (statefulset is None):
        raise _bad("no endpoints: pass either --urls http://HOST:PORT[,...] or --statefulset NAME (with -n, --context)")
    staging = Path(tempfile.mkdtemp(prefix="harness-load-"))
    endpoints_path = staging / "endpoints.json"
    publisher: kube_endpoints.EndpointsPublisher | None = None
    try:
        try:
            spec = runner.LoadSpec(
                endpoints_file=endpoints_path, run_dir=staging, users=users, spawn_rate=spawn_rate,
                duration_s=duration_s, size_bytes=size_bytes, shards=shards, rate_per_ordinal=rate_per_ordinal,
                workers=workers, request_timeout_s=timeout, stages=load_stages,
            )
            if urls is not None:
                endpoints.write(endpoints_path, endpoints.parse_url_list(urls).urls)
            else:
                publisher = _start_publisher(
                    statefulset or "", namespace=namespace, kubeconfig=kubeconfig, context=context, reach=reach,
                    path=endpoints_path,
                )
            preflight.check_ready(endpoints.read(endpoints_path), deadline_s=ready_timeout)
        except (ValueError, endpoints.EndpointsError) as exc:
            raise _bad(str(exc)) from None
        settings: dict[str, object] = {
            "urls": urls, "statefulset": statefulset, "namespace": namespace, "context": context, "reach": reach,
            "users": users, "spawn_rate": spawn_rate, "duration_s": duration_s, "size_bytes": size_bytes,
            "shards": shards, "rate_per_ordinal": rate_per_ordinal, "workers": workers, "timeout_s": timeout,
            "keep_last": keep_last, "stages": stages, "volumes": {str(o): str(p) for o, p in volume_dirs.items()},
        }
        code = _run(
            spec, out, volume_dirs=volume_dirs, keep_last=keep_last, settings=settings,
            cluster_kind="none" if urls is not None else "existing",
        )
    finally:
        if publisher is not None:
            publisher.stop()
        shutil.rmtree(staging, ignore_errors=True)
    raise typer.Exit(code)


def _start_publisher(
    statefulset: str,
    *, namespace: str, kubeconfig: Path | None, context: str | None, reach: str, path: Path
) -> kube_endpoints.EndpointsPublisher:
    """Only this path imports the kubernetes client (the --urls path never does)."""
    from harness.kube import client
    from harness.kube import endpoints as kube_eps
    from harness.load import endpoints

    try:
        api = client.new_api_client(kubeconfig, context)
    except client.KubeconfigError as exc:
        raise endpoints.EndpointsError(str(exc)) from None
    kubectl_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    kubectl_args += ["--context", context] if context else []
    publisher = kube_eps.EndpointsPublisher(
        api, namespace, statefulset, path, mode=cast(kube_eps.Mode, reach), kubectl_args=kubectl_args
    )
    try:
        return publisher.start()
    except kube_eps.KubeEndpointsError as exc:
        publisher.stop()
        raise endpoints.EndpointsError(str(exc)) from None


def _run(
    spec: runner.LoadSpec,
    out: Path,
    *,
    volume_dirs: dict[int, Path],
    keep_last: int,
    settings: dict[str, object],
    cluster_kind: str,
) -> int:
    """Create the run folder, run locust into it, read volumes back, print the summary."""
    from rich.console import Console
    from rich.table import Table

    from harness import history, store
    from harness.load import runner, summary, volumes

    console = Console()
    try:
        run = store.create_run("load", seed=0, cluster_kind=cluster_kind, settings=settings, base=out)
    except store.StoreError as exc:
        raise _bad(str(exc)) from None
    spec = dataclasses.replace(spec, run_dir=run.path)
    code = 0
    try:
        with console.status(
            f"load: {spec.users} users writing {spec.size_bytes:,}-byte checkpoints for {spec.duration_s:.0f}s "
            f"({spec.workers or 1} process{'es' if spec.workers > 1 else ''}); waiting for locust to finish"
        ):
            result = runner.run(spec)
        if result.exit_code != 0:
            console.print(f"[red]locust exited {result.exit_code}[/red]: see {spec.load_dir / 'locust.log'}")
            code = 1
    except runner.LoadError as exc:
        console.print(f"[red]load failed:[/red] {exc}")
        code = 1
    finally:
        shutil.copy2(spec.endpoints_file, spec.load_dir / "endpoints.json")
    if volume_dirs:
        with console.status(f"reading back {len(volume_dirs)} volume(s) with harness verify"):
            try:
                run.write_facts(volumes.run_facts(volume_dirs, keep_last))
            except volumes.VolumeReadError as exc:
                console.print(f"[red]cannot read volumes back:[/red] {exc}")
                code = 1
    run.finish()
    got = summary.summarise(history.read_history(run.path))
    table = Table("ordinal", "ok", "fail", "info", "MB acknowledged", title=f"load: {run.path}")
    for row in got.ordinals:
        table.add_row(str(row.ordinal), str(row.ok), str(row.fail), str(row.info), f"{row.bytes_ok / 1e6:.1f}")
    console.print(table)
    p50 = f"{got.p50_ms:.1f}" if got.p50_ms is not None else "-"
    p99 = f"{got.p99_ms:.1f}" if got.p99_ms is not None else "-"
    console.print(
        f"{got.requests} requests: {got.ok} ok, {got.fail} fail, {got.info} info; "
        f"{got.mb_per_s:.1f} MB/s acknowledged; ok latency p50 {p50} ms, p99 {p99} ms"
    )
    console.print(f"locust report: {spec.load_dir / 'locust.html'}")
    if volume_dirs:
        console.print(f"judge it: harness check {run.path}")
    else:
        console.print("no facts.json (pass --volumes ORD=DIR,... to read local volumes back for harness check)")
    return code


def register(app: typer.Typer) -> None:
    app.command("load")(load)
