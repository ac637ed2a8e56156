"""infra/__main__.py under Pulumi's mocks: it registers exactly the objects manifests.py builds.

The program runs in a child process (Pulumi's runtime settings are process-global) with
``pulumi.runtime.set_mocks``; the mock records every registered resource's wire inputs
(camelCase, numbers as floats), and ``pulumi.runtime.test`` waits for every registration
before the child prints them — no pulumi CLI, no cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.deploy import manifests, pulumi_program, spec

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "infra" / "__main__.py"

MOCK_RUNNER = r"""
import json, runpy, sys
import pulumi

registered = []

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        registered.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
        return (args.name + "-id", args.inputs)

    def call(self, args):
        return {}

pulumi.runtime.set_mocks(Mocks(), project="ckpt-chaos", stack="test", preview=False)
pulumi.runtime.set_all_config(json.loads(sys.argv[2]))

@pulumi.runtime.test
def program():
    runpy.run_path(sys.argv[1], run_name="__main__")

try:
    program()
except Exception as exc:
    print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
    sys.exit(3)
print(json.dumps({"resources": registered}))
"""

PULUMI_TYPES = {
    "Namespace": "kubernetes:core/v1:Namespace",
    "Service": "kubernetes:core/v1:Service",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    "PodDisruptionBudget": "kubernetes:policy/v1:PodDisruptionBudget",
}


def run_program(config: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", MOCK_RUNNER, str(PROGRAM), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO / "infra",
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"mock run printed no result (exit {proc.returncode}): {proc.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def normalise(value: Any) -> Any:
    """Pulumi's wire format carries every number as a float; the API (and manifests.py) use ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


CONFIGS = {
    "defaults": {},
    "scenario-like": {
        "ckpt:replicas": "5",
        "ckpt:storageClass": "shared",
        "ckpt:whenDeleted": "Delete",
        "ckpt:whenScaled": "Delete",
        "ckpt:podManagementPolicy": "Parallel",
        "ckpt:partition": "2",
        "ckpt:pdbMinAvailable": "2",
        "ckpt:keepLast": "5",
        "ckpt:maxCheckpointSize": "16Mi",
        # another namespace's keys are the provider's business, not the program's
        "kubernetes:context": "kind-ckpt-chaos",
    },
    "no-pdb-ondelete": {"ckpt:pdb": "false", "ckpt:updateStrategy": "OnDelete", "ckpt:name": "llm"},
    "existing-namespace": {"ckpt:manageNamespace": "false", "ckpt:namespace": "team-chaos"},
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def registered(request: pytest.FixtureRequest) -> tuple[dict[str, str], list[dict[str, Any]]]:
    config = CONFIGS[request.param]
    result = run_program(config)
    assert "resources" in result, result
    return config, result["resources"]


def test_registered_resources_equal_the_manifests_field_for_field(
    registered: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    config, resources = registered
    built = manifests.build(pulumi_program.spec_from_config(config))
    expected = [
        obj for obj in built if obj.kind != "Namespace" or pulumi_program.manage_namespace_from_config(config)
    ]
    by_type = {resource["type"]: resource for resource in resources}
    assert len(by_type) == len(resources), "one resource per type"
    assert set(by_type) == {PULUMI_TYPES[obj.kind] for obj in expected}
    for obj in expected:
        resource = by_type[PULUMI_TYPES[obj.kind]]
        assert resource["name"] == pulumi_program.resource_name(obj)
        assert normalise(resource["inputs"]) == obj.body, f"{obj.ref} differs from manifests.py"


def test_claim_templates_are_specs_not_claim_resources(
    registered: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    _, resources = registered
    assert not [r for r in resources if r["type"].endswith(":PersistentVolumeClaim")]
    (sts,) = [r for r in resources if r["type"] == PULUMI_TYPES["StatefulSet"]]
    templates = sts["inputs"]["spec"]["volumeClaimTemplates"]
    assert templates
    for template in templates:
        assert set(template) == {"metadata", "spec"}
        assert "urn" not in json.dumps(template)  # not a reference to another resource


def test_headless_service_named_by_service_name_is_registered(
    registered: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    _, resources = registered
    (sts,) = [r for r in resources if r["type"] == PULUMI_TYPES["StatefulSet"]]
    services = [r for r in resources if r["type"] == PULUMI_TYPES["Service"]]
    governing = [
        s
        for s in services
        if s["inputs"]["metadata"]["name"] == sts["inputs"]["spec"]["serviceName"]
        and s["inputs"]["metadata"]["namespace"] == sts["inputs"]["metadata"]["namespace"]
    ]
    assert len(governing) == 1
    assert governing[0]["inputs"]["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"ckpt:volumeSize": "1GB"}, "ckpt:volumeSize: '1GB' is not a Kubernetes quantity"),
        ({"ckpt:storageClass": "Fast_SSD"}, "ckpt:storageClass: 'Fast_SSD' is not a storage class name"),
        ({"ckpt:manageNamespace": "perhaps"}, "ckpt:manageNamespace: 'perhaps' is not true or false"),
    ],
)
def test_bad_config_value_is_one_line_naming_its_key(config: dict[str, str], expected: str) -> None:
    def program_settings() -> None:  # what infra/__main__.py reads, in its order
        pulumi_program.spec_from_config(config)
        pulumi_program.manage_namespace_from_config(config)

    with pytest.raises(spec.SpecError) as caught:
        program_settings()
    assert str(caught.value).startswith(expected)


def test_config_keys_map_onto_spec_fields() -> None:
    parsed = pulumi_program.spec_from_config(CONFIGS["scenario-like"])
    assert parsed.replicas == 5
    assert parsed.storage_class == "shared"
    assert parsed.pod_management == "Parallel"
    assert parsed.pdb == spec.Pdb(min_available=2, max_unavailable=None)
    assert parsed.writer.max_checkpoint_bytes == 16 * 2**20
    # the older engine spelling of keys still maps
    assert pulumi_program.spec_from_config({"ckpt:config:replicas": "4"}).replicas == 4
    assert pulumi_program.manage_namespace_from_config({}) is True
    assert pulumi_program.manage_namespace_from_config({"ckpt:manageNamespace": "false"}) is False


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"ckpt:replicas": "-1"}, "ckpt:replicas: must be 0 or more, got -1"),
        ({"ckpt:replica": "3"}, "ckpt:replica is not a setting of this program"),
    ],
)
def test_bad_config_fails_the_program_with_one_line_and_registers_nothing(
    config: dict[str, str], expected: str
) -> None:
    result = run_program(config)
    assert result.get("type") == "RunError", result
    assert expected in result["error"]
    assert "\n" not in result["error"]
    assert "resources" not in result


def test_config_table_in_infra_readme_lists_every_key() -> None:
    readme = (REPO / "infra" / "README.md").read_text()
    for option in spec.OPTIONS:
        assert f"`ckpt:{option.config_key}`" in readme, option.config_key
    assert f"`ckpt:{pulumi_program.MANAGE_NAMESPACE_KEY}`" in readme


def test_automation_stack_names_and_ownership_check() -> None:
    from harness.deploy import pulumi as pulumi_deploy

    assert pulumi_deploy.stack_name(spec.parse({"namespace": "ckpt-chaos", "name": "ckpt"})) == "ckpt-chaos.ckpt"
    assert pulumi_deploy.default_state_dir() == REPO / "infra" / ".pulumi"  # git-ignored

    class Exported:
        deployment = {
            "resources": [
                {"urn": "urn:pulumi:ckpt-chaos.ckpt::ckpt-chaos::pulumi:pulumi:Stack::ckpt-chaos-ckpt-chaos.ckpt"},
                {"urn": "urn:pulumi:ckpt-chaos.ckpt::ckpt-chaos::kubernetes:core/v1:Namespace::ckpt-chaos-namespace"},
            ]
        }

    class FakeStack:
        def export_stack(self) -> Exported:
            return Exported()

    assert pulumi_deploy._stack_owns(FakeStack(), "ckpt-chaos-namespace")  # type: ignore[arg-type]
    assert not pulumi_deploy._stack_owns(FakeStack(), "other-namespace")  # type: ignore[arg-type]
