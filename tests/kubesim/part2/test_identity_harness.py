"""The harness's least-privilege Roles (infra/rbac) are enough, and each rule is needed: proven on kubesim's RBAC.

infra/rbac's three ClusterRoles and bindings.example.yaml are applied to the session's cluster;
the harness then runs as the service account ``ckpt-chaos-harness`` with nothing but a token for
it (a kubeconfig of its own): one short scenario with both a pod kill and a drain (deploy, load,
a force-deleted pod, then its node cordoned and the pod evicted through the Eviction API, held
Pending by its local-path volume until the uncordon; the full read-back and checkers) through
``--cluster existing --harness-kubeconfig``. One run with two faults rather than two scenarios:
the drain adds a few seconds, not another deploy and read-back. Then one rule is taken out
(``create`` on statefulsets) and ``harness deploy`` must fail on the 403 that names it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.kubesim, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
RBAC_DIR = REPO / "infra" / "rbac"
ROLES = ("harness-namespaced.yaml", "harness-cluster.yaml", "harness-node-ops.yaml", "guard.yaml")
SA_NAMESPACE = SA_NAME = "ckpt-chaos-harness"
NAMESPACED_ROLE = "ckpt-chaos-harness-namespaced"

SCENARIO = textwrap.dedent('''
    """A pod force-deleted, then its node drained, mid-write: every acknowledged checkpoint survives."""
    from harness.scenario import model, schedule

    SCENARIO = model.Scenario(
        name="rbac-pod-kill-drain", claim=__doc__,
        deploy={"replicas": "1", "storage_class": "standard", "keep_last": "2"},
        faults={
            "pod-kill": model.Fault("pod-kill", "its pod was force-deleted (grace 0) and is being recreated"),
            "drain": model.Fault("drain", "its local-path volume pins it to the drained node: Pending until uncordon",
                                 hold_s=0.5),
        },
        # both faults in one run (one deploy, one read-back): a pod kill, then the drain of its node
        schedule=lambda ctx: (schedule.FaultStep(0.5, "pod-kill", schedule.Target("ordinal", "0")),
                              schedule.FaultStep(0.2, "drain", schedule.Target("node-of", "0"))),
        load=model.LoadProfile(users=1, checkpoint_bytes=4096, shards=1, tail_s=0.5),
    )

    def test_rbac_pod_kill_and_drain(run_scenario):
        run_scenario(SCENARIO)
''')


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def harness_kubeconfig(kubesim_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """infra/rbac applied (roles, the guard policy, the example bindings minus the chaos-shared RoleBinding) and a
    kubeconfig whose only credential is a token of the harness's service account; all removed afterwards."""
    admin = kubesim_cluster.kubeconfig
    bindings = [doc for doc in yaml.safe_load_all((RBAC_DIR / "bindings.example.yaml").read_text())
                if doc and doc["kind"] != "RoleBinding"]  # its namespace (chaos-shared) is the reader's to create
    files = [str(RBAC_DIR / name) for name in ROLES]
    _kubectl(admin, "apply", *(a for f in files for a in ("-f", f)))
    _kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump_all(bindings))
    try:
        token = _kubectl(admin, "create", "token", SA_NAME, "-n", SA_NAMESPACE, "--duration", "1h").stdout.strip()
        config = yaml.safe_load(admin.read_text())
        for user in config["users"]:
            user["user"] = {"token": token}
        path = tmp_path_factory.mktemp("harness-rbac") / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        yield path
    finally:
        subprocess.run([str(KUBECTL), "--kubeconfig", str(admin), "delete", "--ignore-not-found", "--wait=false",
                        *(a for f in files for a in ("-f", f)), "-f", "-"], input=yaml.safe_dump_all(bindings),
                       capture_output=True, text=True, timeout=60, check=False)


def test_the_harness_runs_pod_kill_and_drain_with_only_its_role(harness_kubeconfig: Path, tmp_path: Path) -> None:
    whoami = _kubectl(harness_kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert whoami == f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    (tmp_path / "test_rbac_scenario.py").write_text(SCENARIO)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "--timeout", "240",
                          "test_rbac_scenario.py", "--cluster", "existing", "--harness-kubeconfig",
                          str(harness_kubeconfig)], cwd=tmp_path, capture_output=True, text=True, timeout=280,
                         check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
    assert "all 2 declared faults took effect" in run.stdout, run.stdout[-4000:]  # the pod kill and the drain


def test_one_rule_less_is_a_403_naming_it(kubesim_cluster: Any, harness_kubeconfig: Path, tmp_path: Path) -> None:
    admin = kubesim_cluster.kubeconfig
    role = yaml.safe_load((RBAC_DIR / "harness-namespaced.yaml").read_text())
    for rule in role["rules"]:
        if rule["resources"] == ["statefulsets"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    _kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump(role))
    try:
        deploy = subprocess.run([str(REPO / ".venv" / "bin" / "harness"), "deploy", "--kubeconfig",
                                 str(harness_kubeconfig), "--namespace", "chaos-rbac-minus-one", "--replicas", "1",
                                 "--storage-class", "standard", "--no-wait"],
                                capture_output=True, text=True, timeout=120, check=False)
        said = deploy.stdout + deploy.stderr
        assert deploy.returncode != 0, said
        assert "403" in said or "forbidden" in said.lower(), said
        assert (f'User "system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}" cannot create resource "statefulsets" in '
                'API group "apps" in the namespace "chaos-rbac-minus-one"') in said, said
    finally:
        _kubectl(admin, "apply", "-f", str(RBAC_DIR / "harness-namespaced.yaml"))
        subprocess.run([str(KUBECTL), "--kubeconfig", str(admin), "delete", "namespace", "chaos-rbac-minus-one",
                        "--ignore-not-found", "--wait=false"], capture_output=True, text=True, timeout=60, check=False)
