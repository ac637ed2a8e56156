"""``kubesim up | down | status | bench | node``: run the embedded cluster in the background.

``up`` generates the CA, serving certificate and token on first use (and reuses them, the
store and — if it is free — the port on every later start), starts the API server in its own
session, waits until it answers ``/readyz`` over TLS, and writes ``DIR/kubeconfig``. ``down``
stops exactly the processes recorded in ``DIR/state.json``. With ``--nodes N`` the control plane
also runs the controllers and add-ons and ``up`` starts N kubelets (``kubesim.nodes``), waiting
until every Node is Ready; ``down`` stops kubelets (and their containers) before the control plane.
Then ``down`` verifies that nothing of the cluster is left (:func:`kubesim.nodes.sweep`): a survivor
is SIGKILLed by pid, named on stderr, and ``down`` exits 1 — a leaked container would otherwise keep
writing to a volume long after anyone looked.

``--network private|host`` (:mod:`kubesim.network`): ``private`` (the default, as on kind) puts the
control plane, kubelets and pods in a network namespace of the cluster's own and publishes only
the API server on the host; ``host`` (explicit, where namespaces are refused) runs everything in
the host's network with an address range leased host-wide for this cluster. ``net exec`` runs a
command inside the cluster's network.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import tenacity
import typer

from kubesim import certs, network, nodes, state
from kubesim.controllers import settings as settings_mod
from kubesim.kubelet import cgroups
from kubesim.lazyfs import manage as lazyfs
from kubesim.lazyfs import mountinfo

# plain help (rich_markup_mode=None): typer's panels print the Python type after every flag
app = typer.Typer(name="kubesim", help="An embedded Kubernetes API server for tests.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(nodes.app, name="node")
net_app = typer.Typer(name="net", help="The cluster's network: run commands inside it.", no_args_is_help=True,
                      add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(net_app, name="net")

StateOpt = Annotated[Path, typer.Option("--state", help="state directory (store, certificates, kubeconfig)")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"kubesim: {message}", err=True)
    return typer.Exit(code)


def _layout(path: Path, create: bool) -> state.Layout:
    if path.exists() and not path.is_dir():
        raise _fail(f"--state {path} is a file, not a directory; pass a directory (it is created if missing)")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            # the store holds Secrets and the directory the token and CA key: only its owner may look in
            # (containers reach their volumes from inside their own root, never through this path)
            path.chmod(0o700)
        except OSError as exc:
            raise _fail(f"cannot create state directory {path}: {exc.strerror}") from None
    return state.Layout(path.resolve())


def _running(layout: state.Layout) -> state.Component | None:
    for comp in state.components(layout):
        if comp.name == "apiserver" and state.is_ours(layout, comp.pid):
            return comp
    return None


def _ready(url: str, ca: Path, token: str) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(url + "/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@app.command()
def up(  # noqa: PLR0917 - typer maps each parameter to an option
    state_dir: StateOpt,
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (0: any free port; default: the "
                                                  "previous one if free)")] = None,
    watch_window: Annotated[int | None, typer.Option(help="watch events kept before 410 Expired")] = None,
    bookmark_interval: Annotated[float | None, typer.Option(help="seconds between watch bookmarks")] = None,
    log_level: Annotated[str, typer.Option(help="apiserver log level (DEBUG logs every request)")] = "INFO",
    default_toleration_seconds: Annotated[int | None, typer.Option(
        help="tolerationSeconds for the not-ready/unreachable tolerations new pods get (upstream 300)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the server to answer")] = 30.0,
    node_count: Annotated[int | None, typer.Option("--nodes", help="kubelets to start (0: the API server alone; "
                                                   "default: as recorded by the previous up, else 0)")] = None,
    controllers: Annotated[str | None, typer.Option(
        help="controllers to run: all, none or a comma list (default: all with --nodes, none without)")] = None,
    node_monitor_grace: Annotated[str | None, typer.Option(help="silent node -> Ready=Unknown after (50s)")] = None,
    node_monitor_period: Annotated[str | None, typer.Option(help="node health re-check period (5s)")] = None,
    node_status_interval: Annotated[str | None, typer.Option(help="kubelet heartbeat period (10s)")] = None,
    toleration_seconds: Annotated[int | None, typer.Option(
        help="alias of --default-toleration-seconds")] = None,
    crashloop_base: Annotated[str | None, typer.Option(help="first container restart back-off (10s)")] = None,
    crashloop_max: Annotated[str | None, typer.Option(help="container restart back-off cap (300s)")] = None,
    timing: Annotated[str | None, typer.Option(
        envvar="KUBESIM_TIMING", show_envvar=True,
        help="upstream: readiness probed at initialDelaySeconds then every periodSeconds, pulls take "
             "--image-pull-time, as on a real cluster; fast: readiness retried every 0.1s until it first succeeds "
             "and pulls instant (conformance-style tests only). Default: as recorded by the previous up, else "
             f"{settings_mod.DEFAULT_TIMING}")] = None,
    image_pull_time: Annotated[str | None, typer.Option(
        help="how long an image pull takes (imagePullPolicy Always, or an image not yet on the node); "
             "default from --timing: 1s upstream, 0 fast")] = None,
    nodes_timeout: Annotated[float, typer.Option(help="seconds to wait for the Nodes to be Ready")] = 60.0,
    network_mode: Annotated[str | None, typer.Option(
        "--network", help="host: the host's network, with an address range of this cluster's own (pods reachable "
                          "from the host); private: a network namespace of the cluster's own, only the API server "
                          "published on 127.0.0.1 (needs root). Default: as recorded by the previous up, else "
                          f"{network.DEFAULT_MODE}")] = None,
) -> None:
    """Start the control plane (and --nodes N kubelets) in the background and write DIR/kubeconfig."""
    if node_count is not None and node_count < 0:
        raise _fail(f"--nodes {node_count} must be 0 or more")
    if network_mode is not None and network_mode not in network.MODES:
        raise _fail(f"--network {network_mode!r}: use host (the host's network) or private (a network of the "
                    "cluster's own)")
    if toleration_seconds is not None:
        default_toleration_seconds = toleration_seconds
    if timing is not None and timing not in settings_mod.TIMINGS:
        raise _fail(f"--timing {timing!r}: use {' or '.join(settings_mod.TIMINGS)}")
    # A restart (`up` again after the control plane died) keeps the cluster's shape and periods unless told otherwise.
    recorded = state.read_state(state.Layout(state_dir.resolve())) if state_dir.is_dir() else {}
    try:
        given = {k: v for k, v in {
            "node_monitor_grace": node_monitor_grace, "node_monitor_period": node_monitor_period,
            "node_status_interval": node_status_interval, "crashloop_base": crashloop_base,
            "crashloop_max": crashloop_max, "toleration_seconds": default_toleration_seconds,
            "image_pull_time": image_pull_time,
        }.items() if v is not None}
        values: dict[str, float | int] = {
            k: settings_mod.parse_duration(str(v)) if k != "toleration_seconds" else int(v) for k, v in given.items()}
        timing_flag = timing
        if timing is None and isinstance(recorded.get("timing"), str) and recorded["timing"] in settings_mod.TIMINGS:
            timing = recorded["timing"]
        timing = timing or settings_mod.DEFAULT_TIMING
        for name, value in settings_mod.TIMINGS[timing].items():  # explicit flags win over the profile
            values.setdefault(name, value)
        cluster_settings = settings_mod.ControllerSettings.derived(values)
        if not given and isinstance(recorded.get("settings"), dict):
            cluster_settings = settings_mod.ControllerSettings.from_json(recorded["settings"])
            if timing_flag is not None:  # a new profile over the recorded periods
                cluster_settings = cluster_settings.replace(**settings_mod.TIMINGS[timing_flag])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    shape = recorded.get("cluster") or {}
    if node_count is None:
        node_count = int(shape.get("nodes", 0))
    if controllers is None and isinstance(shape.get("controllers"), str):
        controllers = shape["controllers"]
    if controllers not in (None, "all", "none"):
        from kubesim.controllers import CONTROLLERS
        unknown = sorted({c.strip() for c in controllers.split(",") if c.strip()} - {n for n, _ in CONTROLLERS})
        if unknown:
            raise _fail(f"--controllers: unknown {', '.join(unknown)}; known: all, none, "
                        f"{', '.join(n for n, _ in CONTROLLERS)}")
    if port is not None and not 0 <= port <= 65535:
        raise _fail(f"--port {port} is not a TCP port; use 0..65535 (0 picks a free one)")
    if watch_window is not None and watch_window < 1:
        raise _fail(f"--watch-window {watch_window} must be at least 1")
    if default_toleration_seconds is not None and default_toleration_seconds < 0:
        raise _fail(f"--default-toleration-seconds {default_toleration_seconds} must be 0 or more")
    layout = _layout(state_dir, create=True)
    for line in lazyfs.cleanup(layout.root, live=False):  # mounts a SIGKILLed lazyfs daemon left: never reused
        typer.echo(f"kubesim: lazy volume: {line}", err=True)
    live = _running(layout)
    net = _ensure_network(layout, network_mode)
    if live is not None:
        typer.echo(f"kubesim already running (pid {live.pid}) at https://127.0.0.1:"
                   f"{state.read_state(layout).get('port')}; export KUBECONFIG={layout.kubeconfig}")
        _start_nodes(layout, node_count, nodes_timeout)
        return
    certs.ensure(layout.root)
    token = state.ensure_token(layout)
    previous = state.read_state(layout).get("port")
    cmd = [sys.executable, "-m", "kubesim.controlplane", "--state", str(layout.root), "--log-level", log_level,
           "--controllers", controllers if controllers is not None else ("all" if node_count else "none")]
    if node_count:
        cmd.append("--addons")
    if port is not None:
        cmd += ["--port", str(port)]
    elif isinstance(previous, int):
        cmd += ["--port", str(previous), "--port-fallback"]
    if watch_window is not None:
        cmd += ["--watch-window", str(watch_window)]
    if bookmark_interval is not None:
        cmd += ["--bookmark-interval", str(bookmark_interval)]
    if default_toleration_seconds is not None:
        cmd += ["--default-toleration-seconds", str(default_toleration_seconds)]
    layout.port_file.unlink(missing_ok=True)
    with state.updating_state(layout) as data:
        data["settings"] = cluster_settings.to_json()
        data["timing"] = timing
        data["cluster"] = {"nodes": node_count, "controllers": cmd[cmd.index("--controllers") + 1]}
    out = open(layout.root / "apiserver.out", "ab")  # noqa: SIM115 - handed to the child
    netns_fd = None
    try:
        if net.mode == "private":  # the server binds its host port, then enters the namespace (apiserver/__main__.py)
            netns_fd = network.open_namespace(layout)
            cmd += ["--netns-fd", str(netns_fd)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                close_fds=True, pass_fds=(netns_fd,) if netns_fd is not None else (),
                                env=nodes.cluster_env(layout))
    except network.NetworkError as exc:
        _release_network_if_idle(layout)
        raise _fail(str(exc), 1) from None
    finally:
        out.close()
        if netns_fd is not None:
            os.close(netns_fd)
    with state.updating_state(layout) as data:
        data["components"]["apiserver"] = {"pid": proc.pid, "cmd": cmd}

    def listening() -> int | None:
        if proc.poll() is not None:
            raise RuntimeError(f"the apiserver exited with code {proc.returncode}: "
                               f"{_tail(layout.root / 'apiserver.out')}")
        try:
            chosen = int(layout.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return chosen if _ready(f"https://127.0.0.1:{chosen}", layout.ca_cert, token) else None

    def _gave_up(retry_state: tenacity.RetryCallState) -> None:
        seen = layout.port_file.read_text().strip() if layout.port_file.exists() else "absent"
        raise RuntimeError(f"the apiserver (pid {proc.pid}) did not answer /readyz within {timeout:.0f}s; "
                           f"last seen port file: {seen}; see {layout.log}")

    try:
        chosen = tenacity.Retrying(
            stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.05),
            retry=tenacity.retry_if_result(lambda value: value is None), retry_error_callback=_gave_up,
        )(listening)
    except RuntimeError as exc:
        _stop(layout, proc.pid, grace=5.0)
        with state.updating_state(layout) as data:
            data["components"].pop("apiserver", None)
        _release_network_if_idle(layout)
        raise _fail(str(exc), 1) from None
    assert chosen is not None
    server = f"https://127.0.0.1:{chosen}"
    with state.updating_state(layout) as data:  # re-read: a node command may have written meanwhile
        data["port"] = chosen
    state.atomic_write(layout.kubeconfig, state.kubeconfig(server, layout.ca_cert.read_bytes(), token).encode(), 0o600)
    typer.echo(f"kubesim API server running at {server} (pid {proc.pid})\n"
               f"  network: {net.describe()}\n"
               f"  timing: {_describe_timing(state.read_state(layout))}\n"
               f"  export KUBECONFIG={layout.kubeconfig}\n  kubectl get ns\n"
               f"  stop with: python -m kubesim down --state {layout.root}")
    _start_nodes(layout, node_count, nodes_timeout)


def _ensure_network(layout: state.Layout, mode: str | None) -> network.Network:
    """The cluster's network in the asked mode (default: as recorded, else host); one line and exit if impossible.

    The mode of a cluster whose processes run cannot change under them: that needs ``down`` first.
    """
    old = network.recorded(layout)
    mode = mode or (old.mode if old is not None else network.DEFAULT_MODE)
    if old is not None and old.mode != mode:
        running = [c.name for c in state.components(layout)
                   if c.name != network.COMPONENT and state.is_ours(layout, c.pid)]
        if running:
            raise _fail(f"--network {mode}: the cluster in {layout.root} runs with --network {old.mode} "
                        f"({', '.join(running)} running); stop it with `kubesim down` to change its network")
    try:
        return network.ensure(layout, mode)
    except network.NetworkError as exc:
        raise _fail(str(exc)) from None


def _release_network_if_idle(layout: state.Layout) -> None:
    """After a failed start: drop the namespace holder and the lease unless something of the cluster still runs."""
    if not any(state.is_ours(layout, c.pid) for c in state.components(layout) if c.name != network.COMPONENT):
        network.release(layout, grace=2.0)


def _start_nodes(layout: state.Layout, count: int, timeout: float) -> None:
    """Start the kubelets of nodes 1..count that are not running and wait until all are Ready.

    Running kubelets are left alone, so ``up`` after a control-plane crash restarts only the
    control plane. On failure everything this cluster runs is stopped (nothing is left behind).
    """
    if count == 0:
        return
    names = [nodes.node_name(i) for i in range(count)]
    started = [name for name in names if nodes.kubelet_pid(layout, name) is None]
    env = nodes.cluster_env(layout)
    since = time.time()
    for name in started:
        nodes.start_kubelet(layout, name, env)
    try:
        nodes.wait_ready(layout, names, timeout, since if started else None)
    except RuntimeError as exc:
        _stop_all(layout, grace=5.0)
        raise _fail(f"{exc}\n(stopped the cluster; logs in {layout.root}/nodes/<node>/ and {layout.log})", 1) from None
    typer.echo(f"nodes Ready: {', '.join(names)}" + (f" (started {len(started)})" if started else ""))


def _stop(layout: state.Layout, pid: int, grace: float) -> bool:
    """SIGTERM the component's process group, then SIGKILL after ``grace`` seconds. True if it was running."""
    if not state.is_ours(layout, pid):
        return False
    try:
        target_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return False
    kill = os.killpg if target_group else os.kill
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not state.is_ours(layout, pid) or _reaped(pid):
            return True
        time.sleep(0.05)
    try:
        kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    _reaped(pid)
    return True


def _reaped(pid: int) -> bool:
    """Reap our own child if it has exited (``up`` and ``down`` may run in one process, e.g. tests)."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


@app.command()
def down(
    state_dir: StateOpt,
    purge: Annotated[bool, typer.Option(help="also delete the state directory (store, certificates)")] = False,
    grace: Annotated[float, typer.Option(help="seconds between SIGTERM and SIGKILL")] = 10.0,
) -> None:
    """Stop every process recorded in DIR/state.json, then SIGKILL (and name, exit 1) any of the cluster left."""
    if not state_dir.exists():
        raise _fail(f"--state {state_dir} does not exist; nothing to stop")
    layout = _layout(state_dir, create=False)
    stopped, survivors = _stop_all(layout, grace)
    typer.echo("stopped " + ", ".join(stopped) if stopped else "kubesim was not running")
    if purge:
        shutil.rmtree(layout.root)
        typer.echo(f"removed {layout.root}")
    if survivors:
        raise typer.Exit(1)


def _stop_all(layout: state.Layout, grace: float) -> tuple[list[str], list[str]]:
    """Stop everything, then make sure nothing is left; returns (what was stopped, what had to be ended after:
    processes SIGKILLed, lazy volume mounts detached)."""
    with network.pinned(layout) as netns:  # a private namespace's identity stays the cluster's until the sweep
        rec = nodes.recorded(layout, netns)  # read first: stopping rewrites the records
        stopped = _stop_recorded(layout, grace)
        survivors = nodes.sweep(layout, rec)
    mounts = lazyfs.mounted_under(layout.root)
    for entry in mounts:  # a lazyfs mount the cleanup above did not end (its daemon was just SIGKILLed, say)
        mountinfo.umount_detach(Path(entry.mountpoint))
    # the kubelets removed their containers' cgroups; one that was SIGKILLed left its node's parents behind
    stuck = cgroups.sweep_cluster(layout.root)
    if stuck:
        typer.echo(f"kubesim: {len(stuck)} cgroup(s) of this cluster could not be removed:", err=True)
        for path in stuck:
            typer.echo(f"  {path}", err=True)
    if survivors:
        typer.echo(f"kubesim: {len(survivors)} process(es) of this cluster outlived `down` stopping it and were "
                   "SIGKILLed (a kubesim bug: nothing it starts may survive its kubelet or sandbox):", err=True)
        for leftover in survivors:
            typer.echo(f"  {leftover.describe()}", err=True)
    if mounts:
        typer.echo(f"kubesim: {len(mounts)} lazy volume mount(s) outlived `down` stopping the cluster and were "
                   "detached (a kubesim bug: a kubelet unmounts its volumes, and `down` every one left):", err=True)
        for entry in mounts:
            typer.echo(f"  {entry.mountpoint} ({entry.source})", err=True)
    return stopped, ([lo.describe() for lo in survivors] + [f"mount {e.mountpoint}" for e in mounts]
                     + [f"cgroup {path}" for path in stuck])


def _stop_recorded(layout: state.Layout, grace: float) -> list[str]:
    """Kubelets first (then the container groups they recorded), then the control plane, then the network
    (namespace holder, address lease); by recorded pid."""
    stopped: list[str] = []
    for node in nodes.recorded_nodes(layout):
        pid = nodes.kubelet_pid(layout, node)
        if nodes.stop_kubelet(layout, node, grace):
            stopped.append(f"{nodes.PREFIX}{node} (pid {pid})")
    with state.updating_state(layout) as data:
        for name in [n for n in data["components"] if n.startswith(nodes.PREFIX)]:
            data["components"].pop(name)
    # the kubelets unmounted their lazy volumes as they stopped; a kubelet that had to be SIGKILLed left its
    # daemons ending on their own, and a SIGKILLed daemon a dead mount: end all of them now, by record and pid
    stopped += [f"lazy volume ({line})" for line in lazyfs.cleanup(layout.root, live=True)]
    for comp in state.components(layout):
        if comp.name == network.COMPONENT:
            continue
        if _stop(layout, comp.pid, grace):
            stopped.append(f"{comp.name} (pid {comp.pid})")
        with state.updating_state(layout) as data:
            data["components"].pop(comp.name, None)
    return stopped + network.release(layout, grace)


@app.command()
def status(state_dir: StateOpt) -> None:
    """Say whether kubesim runs for this state directory, and where."""
    if not state_dir.exists():
        raise _fail(f"--state {state_dir} does not exist; start one with: python -m kubesim up --state {state_dir}", 1)
    layout = _layout(state_dir, create=False)
    live = _running(layout)
    if live is None:
        typer.echo(f"kubesim is not running (state {layout.root})")
        raise typer.Exit(1)
    typer.echo(f"kubesim running (pid {live.pid}) at https://127.0.0.1:{state.read_state(layout).get('port')}; "
               f"KUBECONFIG={layout.kubeconfig}")
    net = network.recorded(layout)
    if net is not None:
        typer.echo(f"network: {net.describe()}")
    typer.echo(f"timing: {_describe_timing(state.read_state(layout))}")


def _describe_timing(recorded: dict[str, object]) -> str:
    """``upstream (probe fast start off, image pull 1s)``: the profile and what it set, for `up` and `status`."""
    values = recorded.get("settings") if isinstance(recorded.get("settings"), dict) else {}
    assert isinstance(values, dict)
    fast = float(values.get("probe_fast_start", 0) or 0)
    pull = float(values.get("image_pull_time", 0) or 0)
    probe = f"readiness retried every {fast:g}s until Ready" if fast else "probes every periodSeconds"
    return f"{recorded.get('timing') or 'upstream (not recorded)'} ({probe}, image pull {pull:g}s)"


@net_app.command("exec", context_settings={"ignore_unknown_options": True})
def net_exec(
    state_dir: StateOpt,
    command: Annotated[list[str], typer.Argument(help="the command and its arguments (after --)")],
) -> None:
    """Run a command inside the cluster's network (like `docker exec` into a kind node): pod IPs are reachable
    there, and the kubeconfig works unchanged. With --network host the host is that network: it runs as is."""
    if not state_dir.is_dir():
        raise _fail(f"--state {state_dir} is not a kubesim state directory; pass the one given to `kubesim up`")
    layout = _layout(state_dir, create=False)
    net = network.recorded(layout)
    if net is None:
        raise _fail(f"no cluster network recorded in {layout.root}; start the cluster with `kubesim up`", 1)
    if net.mode == "private":
        try:
            fd = network.open_namespace(layout)
        except network.NetworkError as exc:
            raise _fail(str(exc), 1) from None
        network.enter(fd)  # this process has one thread: the command inherits the namespace at exec
        os.close(fd)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        raise _fail(f"cannot run {command[0]!r}: {exc.strerror}", 127) from None


@app.command()
def bench() -> None:
    """Measure the API server (GET/LIST/watch with 1,000 pods), a 3-node cluster (StatefulSet readiness,
    pod replacement, idle CPU), pod start, port-forward, power loss and 64 replicas on 8 nodes, each
    against a baseline measured in the same run."""
    import rich.console

    import kubesim.bench as bench_module
    import kubesim.bench_cluster as cluster_bench
    import kubesim.bench_portforward as portforward_bench
    import kubesim.bench_powerloss as powerloss_bench
    import kubesim.bench_scale as scale_bench
    import kubesim.kubelet.bench as kubelet_bench

    console = rich.console.Console()
    console.rule("kubesim: API server")
    bench_module.run(console)
    console.rule("kubesim: cluster (control plane + 3 kubelets)")
    cluster_bench.run(console)
    console.rule("kubesim: kubelet pod start")
    kubelet_bench.run(console)
    console.rule("kubesim: port-forward against a direct connection")
    portforward_bench.run(console)
    console.rule("kubesim: power loss (lazy file system, power-loss cycle)")
    powerloss_bench.run(console)
    scale_bench.run(console)  # prints its own rule, with the sizes it measures


def main() -> None:
    app()
