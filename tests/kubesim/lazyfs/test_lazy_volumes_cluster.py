"""The `lazy` storage class on a real one-node kubesim cluster: `kubesim node power-loss` drops what a pod
never made durable, `node restore` brings back the rest, and no lazyfs mount outlives its kubelet or the cluster.

One cluster for the module (``kubesim up --nodes 1``). A pod on a `lazy` claim writes three files:
``early`` (no fsync; its directory entry is made durable by the later directory fsync, its data is not),
``synced`` (fsync of the file, then of the directory) and ``late`` (no fsync at all). After a power
loss the backing directory — what the disk holds — has ``synced`` whole, ``early`` empty and no
``late``; the restored node's kubelet mounts the volume again and the pod's restarted container sees
exactly that. The last test SIGKILLs a kubelet (its mounts go down cleanly with it: a crash keeps the
page cache), then a lazyfs daemon and its kubelet together (a dead FUSE mount nobody is left to
detach), and checks ``kubesim down`` leaves nothing mounted in ``/proc/self/mountinfo`` and no daemon.

Skipped, with one line naming what is missing, where lazyfs cannot mount (no /dev/fuse, not root,
libfuse 3 missing) or the process kubelet is not available.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
from lazyfs_support import require_lazyfs

from kubesim import client, network, nodes, state
from kubesim.lazyfs import manage, mountinfo

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

NODE = "kubesim-worker"
NETWORK = os.environ.get("KUBESIM_TEST_NETWORK", network.DEFAULT_MODE)
WAIT = 40.0

#: the container: on its first start it writes the three files and says so; on a later start (after the
#: reboot) it reports what it sees, one ``name=<content or ABSENT>`` line each, then idles
SCRIPT = r"""
import os, sys, time
def put(name, data, sync):
    fd = os.open("/data/" + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
def sync_dir():
    fd = os.open("/data", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
if os.path.exists("/data/synced"):
    for name in ("early", "synced", "late"):
        path = "/data/" + name
        print(name + "=" + (open(path).read() if os.path.exists(path) else "ABSENT"), flush=True)
    print("seen", flush=True)
else:
    put("early", b"early-bytes", False)
    put("synced", b"kept", True)
    sync_dir()
    put("late", b"late-bytes", False)
    print("written", flush=True)
while True:
    time.sleep(3600)
"""


@dataclasses.dataclass(frozen=True)
class Cluster:
    state_dir: Path
    client: client.Client

    @property
    def layout(self) -> state.Layout:
        return state.Layout(self.state_dir.resolve())

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``python -m kubesim <args> --state <dir>``; raises with its output when ``check`` and it fails."""
        proc = subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(self.state_dir)],
                              capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubesim {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def mounts(self) -> list[mountinfo.MountEntry]:
        """Every lazyfs mount of this cluster in the kernel's table (recorded or not)."""
        return manage.mounted_under(self.state_dir)

    def daemons(self) -> list[int]:
        """Every live lazyfs daemon serving a mount of this cluster (by its --fsname)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "cmdline").read_bytes()
                status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            cmd = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
            if status not in ("Z", "X") and manage.is_daemon_of(self.state_dir, cmd):
                out.append(int(entry.name))
        return out


def until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``probe`` until it returns something truthy; a timeout names what and the last value seen."""
    last: list[Any] = [None]

    def attempt() -> Any:
        last[0] = probe()
        if not last[0]:
            raise AssertionError(what)
        return last[0]

    try:
        return tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.1),
                                 reraise=True)(attempt)
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last[0]!r}") from None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_lazyfs()
    if importlib.util.find_spec("kubesim.kubelet.__main__") is None:
        pytest.skip("kubesim.kubelet has no __main__: a cluster with real kubelets cannot start")
    state_dir = tmp_path_factory.mktemp("lazy-cluster")
    up = subprocess.run([sys.executable, "-m", "kubesim", "up", "--state", str(state_dir), "--port", "0",
                         "--nodes", "1", "--network", NETWORK, "--crashloop-base", "1s", "--crashloop-max", "4s"],
                        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    try:
        if up.returncode != 0:
            raise RuntimeError(f"kubesim up failed ({up.returncode}): {up.stdout}{up.stderr}")
        kube = client.Client.from_kubeconfig(state_dir / "kubeconfig")
        try:
            yield Cluster(state_dir, kube)
        finally:
            kube.close()
    finally:
        subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir), "--grace", "5"],
                       capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        # whatever a test did: nothing of this cluster stays mounted for the tests after it
        for entry in manage.mounted_under(state_dir):
            mountinfo.umount_detach(Path(entry.mountpoint))


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.client.create("namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        if nodes.kubelet_pid(cluster.layout, NODE) is None:  # a test that failed with its node down
            cluster.run("node", "restore", NODE, check=False)
        try:
            cluster.client.delete("namespaces", name)
        except client.ApiError as exc:
            print(f"could not delete namespace {name}: {exc}")


def lazy_pod(api: client.Client, ns: str, name: str) -> None:
    """A claim of the `lazy` class and a pod running :data:`SCRIPT` on it."""
    api.create("persistentvolumeclaims", {"metadata": {"name": name}, "spec": {
        "storageClassName": "lazy", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        ns)
    api.create("pods", {"metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox", "command": [sys.executable, "-c", SCRIPT],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": name}}]}}, ns)


def log_of(api: client.Client, ns: str, name: str) -> str:
    try:
        return api.raw_get(f"/api/v1/namespaces/{ns}/pods/{name}/log").decode()
    except client.ApiError:
        return ""  # not started yet


def backing_of(api: client.Client, ns: str, claim: str) -> Path:
    """The `lazy` PV's backing directory (what the node's disk holds), from the bound PV."""
    pv = api.get("persistentvolumes", api.get("persistentvolumeclaims", claim, ns)["spec"]["volumeName"])
    csi = pv["spec"]["csi"]
    assert csi["driver"] == "lazy.kubesim.io", pv["spec"]
    return Path(csi["volumeAttributes"]["backing"])


def written(cluster: Cluster, ns: str, name: str) -> Path:
    """Start the pod, wait until it wrote its files through a lazyfs mount; returns the backing directory."""
    lazy_pod(cluster.client, ns, name)
    until(f"pod {ns}/{name} wrote its files", lambda: "written" in log_of(cluster.client, ns, name))
    backing = backing_of(cluster.client, ns, name)
    mounted = [e for e in cluster.mounts() if e.mountpoint.endswith("/" + backing.name.split("_")[0])]
    assert mounted, f"no lazyfs mount of {backing.name} in /proc/self/mountinfo: {cluster.mounts()}"
    return backing


def test_power_loss_drops_what_was_never_fsynced_and_restore_keeps_the_rest(cluster: Cluster, namespace: str) -> None:
    api = cluster.client
    backing = written(cluster, namespace, "pl")
    assert (backing / "late").read_bytes() == b"late-bytes"  # write-through: the backing dir has it all, for now

    done = cluster.run("node", "power-loss", NODE, "--json")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["node"] == NODE, report
    assert report["kubelet"] is not None, report
    assert report["problems"] == [], report
    assert len(report["volumes"]) == 1, report
    dropped = report["dropped"]  # early's and late's data, late's directory entry
    assert dropped["files_with_undurable_data"] >= 2, report
    assert dropped["undurable_entries"] >= 1, report
    assert cluster.mounts() == [], "a powered-off node's lazy volume is still mounted"
    assert nodes.kubelet_pid(cluster.layout, NODE) is None

    # the disk after the lights went out
    assert (backing / "synced").read_bytes() == b"kept", "fsync + directory fsync did not survive"
    assert (backing / "early").read_bytes() == b"", "un-fsynced data survived a power loss"
    assert not (backing / "late").exists(), "an entry never made durable survived a power loss"
    assert not (backing / manage.PRIVATE).exists(), "the lazyfs private directory was left in the volume"

    cluster.run("node", "restore", NODE)
    until("the restarted container reporting what it sees after the reboot",
          lambda: "seen" in log_of(api, namespace, "pl"))
    seen = log_of(api, namespace, "pl").splitlines()
    assert "synced=kept" in seen, seen
    assert "early=" in seen, seen  # its entry was made durable by the directory fsync, its data never
    assert "late=ABSENT" in seen, seen
    assert len(cluster.mounts()) == 1, f"the rebooted node did not mount its lazy volume again: {cluster.mounts()}"

    # the last pod using the volume on the node is gone: unmounted (cleanly)
    api.delete("pods", "pl", namespace, grace_period_seconds=0)
    until("the lazy volume unmounted once its pod is gone", lambda: cluster.mounts() == [])


def test_no_lazy_mount_outlives_a_sigkilled_kubelet_or_kubesim_down(cluster: Cluster, namespace: str) -> None:
    """Last in the module: it ends the cluster (the fixture's own ``down`` then finds nothing to do)."""
    backing = written(cluster, namespace, "kill")
    kubelet = nodes.kubelet_pid(cluster.layout, NODE)
    assert kubelet is not None

    # 1. a kubelet SIGKILLed (not by kubesim): its daemons unmount when their owner dies, cleanly — a crash,
    #    not a power loss, so even what was never fsynced is still there
    os.kill(kubelet, signal.SIGKILL)
    until("the lazy mount gone with its SIGKILLed kubelet", lambda: cluster.mounts() == [])
    until("its lazyfs daemon gone", lambda: cluster.daemons() == [])
    assert (backing / "late").read_bytes() == b"late-bytes", "a kubelet crash (not a power loss) lost data"
    cluster.run("node", "restore", NODE)
    until("the restored kubelet mounting the volume again", lambda: len(cluster.mounts()) == 1)

    # 2. the daemon SIGKILLed, then its kubelet: a dead FUSE mount that nobody is left to detach
    daemons = until("the volume's lazyfs daemon", cluster.daemons)
    assert len(daemons) == 1, daemons
    kubelet = nodes.kubelet_pid(cluster.layout, NODE)
    assert kubelet is not None
    os.kill(daemons[0], signal.SIGKILL)
    until("the daemon gone", lambda: cluster.daemons() == [])
    os.kill(kubelet, signal.SIGKILL)
    assert cluster.mounts(), "expected the dead mount of the SIGKILLed daemon to stay until someone detaches it"

    down = cluster.run("down", "--grace", "5", check=False)
    said = down.stdout + down.stderr
    assert cluster.mounts() == [], f"kubesim down left lazyfs mounts: {cluster.mounts()}; it said {said}"
    assert "detached dead mount" in said, f"kubesim down did not say it detached the dead mount: {said}"
    assert down.returncode == 0, f"a dead mount down detached by its record is not a leftover: {said}"
    assert cluster.daemons() == [], f"kubesim down left lazyfs daemons {cluster.daemons()}"
    assert not [e for e in mountinfo.entries() if e.mountpoint.startswith(str(cluster.state_dir.resolve()))], \
        "something of the cluster is still mounted"
