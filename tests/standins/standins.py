"""Stand-ins for the ``kind`` and ``docker`` command lines, backed by kubesim (no Docker here).

The executables ``tests/standins/kind`` and ``tests/standins/docker`` call :func:`kind_main` and
:func:`docker_main`. Tests put this directory first on PATH, so harness code that runs ``kind``
and ``docker`` — through pytest-kind or by itself — runs these instead, unchanged.

Fidelity is in the *command lines*: every sub-command the harness may call is parsed with the
real tool's flags (argparse mirroring kind's cobra flags, docker's, and crictl's / ctr's urfave
ones, where flags must come before arguments), and an unknown flag, a wrong number of arguments
or a sub-command that is not modelled fails loudly (exit 2, "stand-in:" on stderr) so a wrong
call fails the test instead of passing by accident. What the calls *do* is kubesim's:

* ``kind create cluster`` starts a kubesim cluster with as many nodes as the config has workers
  (at least one), with the embedded cluster's shortened periods, and writes its kubeconfig with
  the names real kind uses (cluster, user and context ``kind-<name>``), merged into the target
  file as kind merges it; ``kind delete cluster`` stops it (``kubesim down``) and removes them.
* a node's Docker container name is kubesim's node name (on real kind the API node name equals
  the container name — the harness relies on exactly that); ``docker stop`` = ``kubesim node
  crash``, ``docker start`` = ``kubesim node restore --no-wait`` (docker returns before the
  kubelet is back; the caller must wait through the API, as on real kind).
* ``docker exec NODE crictl|ctr …`` reads the node's container records
  (``nodes/<node>/containers.json``, documented in kubesim/README.md) and signals through
  ``kubesim node kill-container``. Container ids are derived from each container instance.
* ``docker build`` checks its context and Dockerfile and remembers the tags; ``kind load
  docker-image`` refuses an image the stand-in docker never built, as kind refuses an image that
  is not present locally.

Not modelled: the control-plane node is not a container (kubesim's control plane is a process),
so ``docker stop <name>-control-plane`` is "No such container"; node images are not pulled.

State lives under ``$KIND_STANDIN_STATE`` (required): ``clusters/<name>/`` (``cluster.json``,
the kubesim state in ``kubesim/``), ``images.json``, and ``calls.jsonl`` — every invocation with
its exit code, so a test can assert what was called and that nothing was refused.
``DOCKER_STANDIN_DAEMON=down`` makes the stand-in docker answer as a client whose daemon is not
running.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

KIND_VERSION = "kind v0.33.0 go1.24.4 linux/amd64 (stand-in: kubesim behind kind's command line)"
DOCKER_SERVER_VERSION = "28.3.0-standin"
#: the embedded cluster's shortened periods (harness.clusters.embedded.DEFAULT_PERIODS)
PERIODS = ("--node-monitor-grace", "4s", "--toleration-seconds", "10", "--crashloop-base", "1s",
           "--crashloop-max", "8s")
#: kind's v1alpha4 Cluster and Node fields (sigs.k8s.io/kind pkg/apis/config/v1alpha4/types.go)
CLUSTER_KEYS = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig",
                "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902", "containerdConfigPatches",
                "containerdConfigPatchesJSON6902"}
NODE_KEYS = {"role", "image", "labels", "extraMounts", "extraPortMappings", "gpus", "kubeadmConfigPatches",
             "kubeadmConfigPatchesJSON6902"}
#: kind's cluster name rule (pkg/cluster/internal/create validNameRE)
KIND_NAME = re.compile(r"^[a-z0-9.-]+$")
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^0$")
#: docker's reference grammar, enough to refuse what `docker build -t` refuses
IMAGE_REF = re.compile(r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                       r"(?::[\w][\w.-]{0,127})?$")
CRI_LABELS = ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.kubernetes.pod.uid",
              "io.kubernetes.container.name")


class Refused(Exception):
    """A call the real tool would reject: ``str()`` is its message, ``code`` its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Usage(Exception):
    """A call whose *form* is wrong (unknown flag, wrong arity, sub-command not modelled)."""


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`Usage` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise Usage(f"{self.prog}: {message}")


def parser(prog: str, *, kind_globals: bool = False) -> Parser:
    made = Parser(prog=prog, add_help=False, allow_abbrev=False)
    if kind_globals:  # kind's persistent flags, accepted by every sub-command
        made.add_argument("-q", "--quiet", action="store_true")
        made.add_argument("-v", "--verbosity", type=int, default=0)
    return made


# ----- shared state ------------------------------------------------------------------------------


def state_root() -> Path:
    raw = os.environ.get("KIND_STANDIN_STATE")
    if not raw:
        raise Usage("stand-in: set KIND_STANDIN_STATE to the directory that holds the stand-in clusters")
    root = Path(raw)
    root.mkdir(parents=True, exist_ok=True)
    return root


def record(tool: str, argv: Sequence[str], code: int, note: str = "") -> None:
    entry = {"tool": tool, "argv": list(argv), "rc": code, "note": note, "time": time.time()}
    with (state_root() / "calls.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")


def cluster_dir(name: str) -> Path:
    return state_root() / "clusters" / name


def cluster_info(name: str) -> dict[str, Any] | None:
    try:
        data = json.loads((cluster_dir(name) / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_cluster(name: str, info: dict[str, Any]) -> None:
    path = cluster_dir(name) / "cluster.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(path)


def cluster_names() -> list[str]:
    base = state_root() / "clusters"
    return sorted(p.name for p in base.iterdir() if (p / "cluster.json").is_file()) if base.is_dir() else []


def images() -> dict[str, Any]:
    try:
        data = json.loads((state_root() / "images.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def kubesim(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """``python -m kubesim ARGS`` with this interpreter; its output is passed through on failure."""
    return subprocess.run([sys.executable, "-m", "kubesim", *args], capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def kubesim_ok(*args: str, what: str, timeout: float = 180.0) -> str:
    done = kubesim(*args, timeout=timeout)
    if done.returncode != 0:
        raise Refused(f"{what}: kubesim {' '.join(args[:3])} failed ({done.returncode}): "
                      f"{(done.stderr or done.stdout).strip()[-600:]}")
    return done.stdout


def kubesim_state(name: str) -> Path:
    return cluster_dir(name) / "kubesim"


def node_owner(node: str) -> str:
    """The stand-in cluster whose node (= Docker container) is ``node``."""
    owners = [name for name in cluster_names() if node in (cluster_info(name) or {}).get("nodes", [])]
    if not owners:
        raise Refused(f"Error response from daemon: No such container: {node}")
    if len(owners) > 1:
        raise Usage(f"stand-in: container name {node} belongs to clusters {', '.join(owners)}; run one at a time")
    return owners[0]


def node_running(cluster: str, node: str) -> bool:
    """Whether the node's kubelet process runs (``kubesim node list``'s KUBELET column)."""
    listing = kubesim_ok("node", "list", "--state", str(kubesim_state(cluster)), what="docker inspect")
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == node:
            return len(fields) > 1 and fields[1] == "running"
    return False


# ----- kubeconfigs ------------------------------------------------------------------------------


def default_kubeconfig() -> Path:
    """Where kind writes without --kubeconfig: the first $KUBECONFIG entry, else ~/.kube/config."""
    for part in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if part:
            return Path(part).expanduser()
    return Path("~/.kube/config").expanduser()


def kind_kubeconfig(name: str) -> dict[str, Any]:
    """kubesim's kubeconfig with kind's names: cluster, user and context ``kind-<name>``."""
    doc = yaml.safe_load((kubesim_state(name) / "kubeconfig").read_text())
    ref = f"kind-{name}"
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": ref, "cluster": doc["clusters"][0]["cluster"]}],
        "users": [{"name": ref, "user": doc["users"][0]["user"]}],
        "contexts": [{"name": ref, "context": {"cluster": ref, "user": ref}}],
        "current-context": ref,
    }


def _load_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    doc = yaml.safe_load(text) if text.strip() else {}
    if doc is not None and not isinstance(doc, dict):
        raise Refused(f"ERROR: failed to load kubeconfig {path}: not a kubeconfig")
    return doc or {}


def merge_kubeconfig(target: Path, name: str) -> None:
    """kind's merge: replace the ``kind-<name>`` entries, keep every other, make it current."""
    ours = kind_kubeconfig(name)
    doc = _load_config(target)
    ref = f"kind-{name}"
    for key in ("clusters", "users", "contexts"):
        kept = [e for e in (doc.get(key) or []) if isinstance(e, dict) and e.get("name") != ref]
        doc[key] = kept + ours[key]
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    doc["current-context"] = ref
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    target.chmod(0o600)


def remove_from_kubeconfig(target: Path, name: str) -> None:
    doc = _load_config(target)
    if not doc:
        return
    ref = f"kind-{name}"
    for key in ("clusters", "users", "contexts"):
        doc[key] = [e for e in (doc.get(key) or []) if isinstance(e, dict) and e.get("name") != ref]
    if doc.get("current-context") == ref:
        doc["current-context"] = ""
    target.write_text(yaml.safe_dump(doc, sort_keys=False))


# ----- kind -------------------------------------------------------------------------------------


def kind_main(argv: Sequence[str]) -> int:
    return _main("kind", argv, _kind)


def _kind(argv: list[str]) -> int:
    commands: dict[tuple[str, ...], Callable[[list[str]], int]] = {
        ("create", "cluster"): kind_create, ("delete", "cluster"): kind_delete,
        ("get", "clusters"): kind_get_clusters, ("get", "nodes"): kind_get_nodes,
        ("get", "kubeconfig"): kind_get_kubeconfig, ("load", "docker-image"): kind_load,
        ("export", "logs"): kind_export_logs, ("export", "kubeconfig"): kind_export_kubeconfig,
        ("version",): kind_version,
    }
    for words, run in commands.items():
        if tuple(argv[: len(words)]) == words:
            return run(argv[len(words):])
    raise Usage(f"stand-in kind: `kind {' '.join(argv[:2])}` is not a command the stand-in models "
                f"(known: {', '.join(' '.join(w) for w in commands)})")


def kind_version(argv: list[str]) -> int:
    parser("kind version", kind_globals=True).parse_args(argv)
    print(KIND_VERSION)
    return 0


def _read_kind_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise Refused(f"ERROR: failed to create cluster: error reading file: open {path}: {exc.strerror}") from None
    if not isinstance(config, dict) or config.get("kind") != "Cluster" \
            or config.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise Refused(f"ERROR: failed to create cluster: {path} is not a kind.x-k8s.io/v1alpha4 Cluster")
    unknown = set(config) - CLUSTER_KEYS
    if unknown:
        raise Refused(f'ERROR: failed to create cluster: unknown field "{sorted(unknown)[0]}"')
    roles = []
    for node in config.get("nodes") or [{"role": "control-plane"}]:
        if not isinstance(node, dict) or set(node) - NODE_KEYS or node.get("role") not in ("control-plane", "worker"):
            raise Refused(f"ERROR: failed to create cluster: invalid node entry {node!r}")
        roles.append(node["role"])
    if "control-plane" not in roles:
        raise Refused("ERROR: failed to create cluster: must have at least one control-plane node")
    return config


def kind_create(argv: list[str]) -> int:
    p = parser("kind create cluster", kind_globals=True)
    p.add_argument("-n", "--name", default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--image", default=None)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--retain", action="store_true")
    p.add_argument("--wait", default="0s")
    args = p.parse_args(argv)
    if not GO_DURATION.match(args.wait):
        raise Usage(f'invalid argument "{args.wait}" for "--wait" flag: time: invalid duration')
    config = _read_kind_config(Path(args.config)) if args.config else {"nodes": [{"role": "control-plane"}]}
    name = args.name or config.get("name") or "kind"
    if not KIND_NAME.match(name):
        raise Refused(f"ERROR: failed to create cluster: '{name}' is not a valid cluster name, cluster names must "
                      "match `^[a-z0-9.-]+$`")
    if cluster_info(name) is not None or cluster_dir(name).exists():
        raise Refused(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"')
    workers = sum(1 for n in (config.get("nodes") or []) if n.get("role") == "worker")
    print(f'Creating cluster "{name}" ...', file=sys.stderr)
    state = kubesim_state(name)
    state.mkdir(parents=True)
    save_cluster(name, {"name": name, "config": args.config, "image": args.image, "nodes": [], "loaded": []})
    try:
        kubesim_ok("up", "--state", str(state), "--port", "0", "--nodes", str(max(1, workers)), *PERIODS,
                   what="ERROR: failed to create cluster")
        nodes = _kubesim_nodes(name)
        save_cluster(name, {**(cluster_info(name) or {}), "nodes": nodes})
        merge_kubeconfig(Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig(), name)
    except BaseException:
        _teardown(name)  # nothing half-created, as kind deletes a cluster it failed to create
        raise
    print(f'Set kubectl context to "kind-{name}"', file=sys.stderr)
    return 0


def _kubesim_nodes(name: str) -> list[str]:
    listing = kubesim_ok("node", "list", "--state", str(kubesim_state(name)), what="kind get nodes")
    return [line.split()[0] for line in listing.splitlines()[1:] if line.split()]


def _teardown(name: str) -> subprocess.CompletedProcess[str] | None:
    done = kubesim("down", "--state", str(kubesim_state(name)), "--grace", "5") \
        if kubesim_state(name).is_dir() else None
    shutil.rmtree(cluster_dir(name), ignore_errors=True)
    return done


def kind_delete(argv: list[str]) -> int:
    p = parser("kind delete cluster", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("--kubeconfig", default=None)
    args = p.parse_args(argv)
    print(f'Deleting cluster "{args.name}" ...', file=sys.stderr)
    info = cluster_info(args.name)
    remove_from_kubeconfig(Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig(), args.name)
    if info is None:
        return 0  # kind deletes nothing and succeeds
    done = _teardown(args.name)
    if done is not None and done.returncode != 0:
        raise Refused(f"ERROR: failed to delete cluster: kubesim down: {(done.stderr or done.stdout).strip()[-600:]}")
    print(f"Deleted nodes: {info.get('nodes')}", file=sys.stderr)
    return 0


def kind_get_clusters(argv: list[str]) -> int:
    parser("kind get clusters", kind_globals=True).parse_args(argv)
    names = cluster_names()
    if not names:
        print("No kind clusters found.", file=sys.stderr)
    for name in names:
        print(name)
    return 0


def kind_get_nodes(argv: list[str]) -> int:
    p = parser("kind get nodes", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("-A", "--all-clusters", action="store_true")
    args = p.parse_args(argv)
    names = cluster_names() if args.all_clusters else [args.name]
    nodes = [node for name in names for node in (cluster_info(name) or {}).get("nodes", [])]
    if not nodes:
        print(f'No kind nodes found for cluster "{args.name}".', file=sys.stderr)
    for node in nodes:
        print(node)
    return 0


def _need_cluster(name: str) -> dict[str, Any]:
    info = cluster_info(name)
    if info is None:
        raise Refused(f"ERROR: could not locate any control plane nodes for cluster named '{name}'. "
                      "Use the --name option to select a different cluster")
    return info


def kind_get_kubeconfig(argv: list[str]) -> int:
    p = parser("kind get kubeconfig", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("--internal", action="store_true")
    args = p.parse_args(argv)
    _need_cluster(args.name)
    print(yaml.safe_dump(kind_kubeconfig(args.name), sort_keys=False), end="")
    return 0


def kind_export_kubeconfig(argv: list[str]) -> int:
    p = parser("kind export kubeconfig", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--internal", action="store_true")
    args = p.parse_args(argv)
    _need_cluster(args.name)
    merge_kubeconfig(Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig(), args.name)
    print(f'Set kubectl context to "kind-{args.name}"', file=sys.stderr)
    return 0


def kind_load(argv: list[str]) -> int:
    p = parser("kind load docker-image", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("--nodes", default=None)
    p.add_argument("images", nargs="+")
    args = p.parse_args(argv)
    info = cluster_info(args.name)
    if info is None:
        raise Refused(f'ERROR: no nodes found for cluster "{args.name}"')
    built = images()
    for image in args.images:
        if image not in built:
            raise Refused(f'ERROR: image: "{image}" not present locally')
    if args.nodes:
        unknown = sorted(set(args.nodes.split(",")) - set(info["nodes"]))
        if unknown:
            raise Refused(f"ERROR: unknown node: {unknown[0]}")
    info["loaded"] = sorted(set(info.get("loaded", [])) | set(args.images))
    save_cluster(args.name, info)
    for image in args.images:
        print(f'Image: "{image}" with ID "{built[image]["id"]}" not yet present on node(s), loading...',
              file=sys.stderr)
    return 0


def kind_export_logs(argv: list[str]) -> int:
    p = parser("kind export logs", kind_globals=True)
    p.add_argument("-n", "--name", default="kind")
    p.add_argument("dir", nargs="?", default=None)
    args = p.parse_args(argv)
    info = _need_cluster(args.name)
    dest = Path(args.dir) if args.dir else state_root() / "exported-logs" / args.name
    dest.mkdir(parents=True, exist_ok=True)
    state = kubesim_state(args.name)
    (dest / "kind-version.txt").write_text(KIND_VERSION + "\n")
    (dest / "docker-info.txt").write_text(f"Server Version: {DOCKER_SERVER_VERSION}\n")
    plane = dest / f"{args.name}-control-plane"
    for name in ("apiserver.log", "apiserver.out", "controlplane.log", "controlplane.out"):
        _copy(state / name, plane / name)
    for node in info["nodes"]:
        node_state = state / "nodes" / node
        _copy(node_state / "kubelet.log", dest / node / "kubelet.log")
        _copy(node_state / "containers.json", dest / node / "containers.json")
        for log in sorted(node_state.glob("pods/*/*/*.log")):
            _copy(log, dest / node / "pods" / log.relative_to(node_state / "pods"))
    print(f'Exporting logs for cluster "{args.name}" to:\n{dest}')
    return 0


def _copy(src: Path, dst: Path) -> None:
    with contextlib.suppress(OSError):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


# ----- docker -----------------------------------------------------------------------------------


def docker_main(argv: Sequence[str]) -> int:
    return _main("docker", argv, _docker)


def _docker(argv: list[str]) -> int:
    commands: dict[str, Callable[[list[str]], int]] = {
        "info": docker_info, "build": docker_build, "stop": docker_stop, "start": docker_start, "exec": docker_exec,
    }
    if not argv or argv[0] not in commands:
        raise Usage(f"stand-in docker: `docker {argv[0] if argv else ''}` is not a command the stand-in models "
                    f"(known: {', '.join(commands)})")
    if argv[0] != "info" and os.environ.get("DOCKER_STANDIN_DAEMON") == "down":
        raise Refused("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                      "Is the docker daemon running?")
    return commands[argv[0]](argv[1:])


def docker_info(argv: list[str]) -> int:
    p = parser("docker info")
    p.add_argument("-f", "--format", default=None)
    args = p.parse_args(argv)
    if os.environ.get("DOCKER_STANDIN_DAEMON") == "down":
        print("Client:\n Version: 28.3.0-standin")
        raise Refused("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                      "Is the docker daemon running?")
    if args.format is None:
        print(f"Server:\n Server Version: {DOCKER_SERVER_VERSION}\n Storage Driver: stand-in (kubesim)")
    elif args.format.strip() == "{{.ServerVersion}}":
        print(DOCKER_SERVER_VERSION)
    else:
        raise Usage(f"stand-in docker info: --format {args.format!r} is not modelled (only {{{{.ServerVersion}}}})")
    return 0


def docker_build(argv: list[str]) -> int:
    p = parser("docker build")
    p.add_argument("-f", "--file", default=None)
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--target", default=None)
    p.add_argument("--platform", default=None)
    p.add_argument("--progress", default=None)
    p.add_argument("--pull", action="store_true")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("context")
    args = p.parse_args(argv)
    context = Path(args.context)
    if not context.is_dir():
        raise Refused(f'ERROR: unable to prepare context: path "{context}" not found')
    dockerfile = Path(args.file) if args.file else context / "Dockerfile"
    try:
        text = dockerfile.read_text()
    except OSError:
        raise Refused(f"ERROR: failed to solve: failed to read dockerfile: open {dockerfile}: no such file or "
                      "directory") from None
    instructions = [line.split()[0].upper() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    if not instructions or next((i for i in instructions if i != "ARG"), "") != "FROM":
        raise Refused("ERROR: failed to solve: dockerfile parse error: no FROM before the first instruction")
    for tag in args.tag:
        if not IMAGE_REF.match(tag):
            raise Refused(f'ERROR: invalid tag "{tag}": invalid reference format')
    digest = "sha256:" + hashlib.sha256(text.encode() + str(context.resolve()).encode()).hexdigest()
    built = images()
    for tag in args.tag:
        built[tag] = {"id": digest, "dockerfile": str(dockerfile), "context": str(context.resolve())}
    (state_root() / "images.json").write_text(json.dumps(built, indent=2))
    print(f"#1 [internal] load build definition from {dockerfile.name}\n#1 DONE 0.0s")
    for tag in args.tag:
        print(f"#2 naming to docker.io/library/{tag} done")
    return 0


def docker_stop(argv: list[str]) -> int:
    p = parser("docker stop")
    p.add_argument("-t", "--time", type=int, default=None)
    p.add_argument("-s", "--signal", default=None)
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    for node in args.containers:
        cluster = node_owner(node)
        kubesim_ok("node", "crash", node, "--state", str(kubesim_state(cluster)), what=f"docker stop {node}")
        print(node)
    return 0


def docker_start(argv: list[str]) -> int:
    p = parser("docker start")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    for node in args.containers:
        cluster = node_owner(node)
        kubesim_ok("node", "restore", node, "--no-wait", "--state", str(kubesim_state(cluster)),
                   what=f"docker start {node}")
        print(node)
    return 0


def docker_exec(argv: list[str]) -> int:
    p = parser("docker exec")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user", default=None)
    p.add_argument("-w", "--workdir", default=None)
    p.add_argument("--detach-keys", default=None)
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if not args.command:
        raise Usage("docker exec: requires at least 2 arguments (CONTAINER COMMAND)")
    cluster = node_owner(args.container)
    if not node_running(cluster, args.container):
        raise Refused(f"Error response from daemon: container {args.container} is not running")
    program, rest = args.command[0], args.command[1:]
    node = Node(cluster, args.container)
    if program == "crictl":
        return crictl(node, rest)
    if program == "ctr":
        return ctr(node, rest)
    raise Usage(f"stand-in docker exec: {program!r} inside a node is not modelled (crictl and ctr are)")


# ----- the runtime inside a node: crictl and ctr -------------------------------------------------


class Node:
    """One stand-in node's containers, as its runtime would list them."""

    def __init__(self, cluster: str, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.state = kubesim_state(cluster)

    def containers(self) -> list[dict[str, Any]]:
        try:
            data = json.loads((self.state / "nodes" / self.name / "containers.json").read_text())
        except (OSError, ValueError):
            return []
        found = []
        for key, entry in (data.items() if isinstance(data, dict) else []):
            namespace, _, rest = key.partition("/")
            pod, _, container = rest.partition("/")
            if not isinstance(entry, dict) or not container:
                continue
            instance = f"{self.name}/{key}/{entry.get('pid')}/{entry.get('start')}"
            found.append({"id": hashlib.sha256(instance.encode()).hexdigest(), "key": key, "entry": entry,
                          "labels": {"io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.name": pod,
                                     "io.kubernetes.pod.uid": str(entry.get("uid", "")),
                                     "io.kubernetes.container.name": container},
                          "state": "CONTAINER_RUNNING"})
        return found

    def find(self, ref: str, *, prefix: bool) -> dict[str, Any] | None:
        matches = [c for c in self.containers() if c["id"] == ref or (prefix and c["id"].startswith(ref))]
        if len(matches) > 1:
            raise Refused(f'ambiguous container id "{ref}"')
        return matches[0] if matches else None

    def signal(self, container: dict[str, Any], name: str) -> None:
        labels = container["labels"]
        kubesim_ok("node", "kill-container", labels["io.kubernetes.pod.name"], labels["io.kubernetes.container.name"],
                   "-n", labels["io.kubernetes.pod.namespace"], "--signal", name, "--state", str(self.state),
                   what=f"signal {name} to {container['key']}")

    def gone(self, container: dict[str, Any]) -> bool:
        return all(c["id"] != container["id"] for c in self.containers())


def _split_urfave(argv: list[str], options: Parser) -> tuple[list[str], list[str]]:
    """urfave/cli (crictl, ctr) stops reading flags at the first argument: flags before it, arguments
    after — a flag given after an argument is an argument (and then fails as an unknown id)."""
    takes_value = {s for action in options._actions for s in action.option_strings if action.nargs != 0}
    flags: list[str] = []
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        flags.append(flag)
        if "=" not in flag and flag in takes_value and rest:
            flags.append(rest.pop(0))
    return flags, rest


def crictl(node: Node, argv: list[str]) -> int:
    g = parser("crictl")
    g.add_argument("-r", "--runtime-endpoint", default=None)
    g.add_argument("-i", "--image-endpoint", default=None)
    g.add_argument("-t", "--timeout", default=None)
    g.add_argument("-c", "--config", default=None)
    g.add_argument("-D", "--debug", action="store_true")
    global_flags, rest = _split_urfave(argv, g)
    g.parse_args(global_flags)
    if not rest or rest[0] not in ("ps", "stop"):
        raise Usage(f"stand-in crictl: sub-command {rest[:1]} is not modelled (ps, stop are)")
    if rest[0] == "ps":
        return crictl_ps(node, rest[1:])
    return crictl_stop(node, rest[1:])


def crictl_ps(node: Node, argv: list[str]) -> int:
    p = parser("crictl ps")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--name", default=None)
    p.add_argument("--id", default=None)
    p.add_argument("-p", "--pod", default=None)
    p.add_argument("-s", "--state", default=None)
    p.add_argument("-o", "--output", default="table", choices=["table", "json"])
    p.add_argument("-n", "--last", type=int, default=0)
    p.add_argument("--image", default=None)
    flags, args = _split_urfave(argv, p)
    opts = p.parse_args(flags)
    if args:
        raise Usage(f"crictl ps takes no arguments, got {args} (flags must come before arguments)")
    wanted = {}
    for label in opts.label:
        key, eq, value = label.partition("=")
        if not eq:
            raise Usage(f"crictl ps: --label {label!r} must be key=value")
        wanted[key] = value
    if opts.state is not None and opts.state.lower() not in ("created", "running", "exited", "unknown"):
        raise Usage(f"crictl ps: --state {opts.state!r} must be created, running, exited or unknown")
    shown = [c for c in node.containers()
             if all(c["labels"].get(k) == v for k, v in wanted.items())
             and (opts.name is None or re.search(opts.name, c["labels"]["io.kubernetes.container.name"]))
             and (opts.state is None or opts.state.lower() == "running")]
    if opts.output == "json":
        print(json.dumps({"containers": [{"id": c["id"], "labels": c["labels"], "state": c["state"]}
                                         for c in shown]}, indent=2))
        return 0
    for c in shown:
        ident = c["id"] if opts.no_trunc else c["id"][:13]
        if opts.quiet:
            print(ident)
        else:
            print(f"{ident}  Running  {c['labels']['io.kubernetes.container.name']}  "
                  f"{c['labels']['io.kubernetes.pod.name']}")
    return 0


def crictl_stop(node: Node, argv: list[str]) -> int:
    p = parser("crictl stop")
    p.add_argument("-t", "--timeout", type=int, default=0)
    flags, args = _split_urfave(argv, p)
    opts = p.parse_args(flags)
    if not args:
        raise Usage("crictl stop: ID cannot be empty (flags must come before the IDs)")
    for ref in args:
        container = node.find(ref, prefix=True)
        if container is None:
            raise Refused(f'stopping the container "{ref}": rpc error: code = NotFound desc = an error occurred when '
                          f'try to find container "{ref}": not found')
        if opts.timeout <= 0:
            node.signal(container, "KILL")
        else:  # the runtime's StopContainer: the stop signal, then SIGKILL when the timeout runs out
            node.signal(container, "TERM")
            if not _gone_within(node, container, opts.timeout):
                with contextlib.suppress(Refused):
                    node.signal(container, "KILL")
        print(ref)
    return 0


def _gone_within(node: Node, container: dict[str, Any], seconds: float) -> bool:
    """Whether the container instance leaves the node's records within ``seconds`` (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    tick = threading.Event()  # never set: the wait is the polling period of a deadline-bounded check
    while time.monotonic() < deadline:
        if node.gone(container):
            return True
        tick.wait(0.05)
    return node.gone(container)


def ctr(node: Node, argv: list[str]) -> int:
    g = parser("ctr")
    g.add_argument("-n", "--namespace", default=os.environ.get("CONTAINERD_NAMESPACE", "default"))
    g.add_argument("-a", "--address", default=None)
    g.add_argument("--timeout", default=None)
    g.add_argument("--connect-timeout", default=None)
    g.add_argument("--debug", action="store_true")
    global_flags, rest = _split_urfave(argv, g)
    opts = g.parse_args(global_flags)
    if len(rest) < 2 or rest[0] not in ("task", "tasks", "t") or rest[1] != "kill":
        raise Usage(f"stand-in ctr: {' '.join(rest[:2])!r} is not modelled (task kill is)")
    p = parser("ctr task kill")
    p.add_argument("-s", "--signal", default="SIGTERM")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--exec-id", default=None)
    flags, args = _split_urfave(rest[2:], p)
    kill = p.parse_args(flags)
    if len(args) != 1:
        raise Usage(f"ctr task kill: exactly one container id required, got {args} (flags must come before it)")
    container = node.find(args[0], prefix=False) if opts.namespace == "k8s.io" else None
    if container is None:
        raise Refused(f'ctr: container "{args[0]}" in namespace "{opts.namespace}": not found')
    name = kill.signal.upper()
    if name.isdigit():
        name = signal.Signals(int(name)).name
    if not name.startswith("SIG") or name not in signal.Signals.__members__:
        raise Refused(f'ctr: invalid signal "{kill.signal}"')
    node.signal(container, name.removeprefix("SIG"))
    return 0


# ----- one entry point for both ------------------------------------------------------------------


def _main(tool: str, argv: Sequence[str], run: Callable[[list[str]], int]) -> int:
    args = list(argv)
    try:
        code = run(args)
    except Usage as exc:
        print(f"stand-in {tool}: refused a call the real {tool} would not accept: {exc}", file=sys.stderr)
        _safe_record(tool, args, 2, f"usage: {exc}")
        return 2
    except Refused as exc:
        print(str(exc), file=sys.stderr)
        _safe_record(tool, args, exc.code, str(exc))
        return exc.code
    _safe_record(tool, args, code)
    return code


def _safe_record(tool: str, argv: list[str], code: int, note: str = "") -> None:
    with contextlib.suppress(Usage, OSError):
        record(tool, argv, code, note)
