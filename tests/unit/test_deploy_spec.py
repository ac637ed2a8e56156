"""The deploy spec: one parser for CLI flags and Pulumi config, one line per bad value."""

from __future__ import annotations

import dataclasses
import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils import quantity as k8s_quantity

import harness
from harness.deploy import quantity, spec


def test_defaults_follow_the_lead_contract() -> None:
    parsed = spec.parse({})
    assert parsed == spec.DeploySpec()
    assert parsed.name == "ckpt"
    assert parsed.namespace == "ckpt-chaos"
    assert parsed.image == f"ckpt-writer:{harness.__version__}"
    assert parsed.claim_template == "data"
    assert parsed.storage_class is None  # cluster default
    assert parsed.writer.listen_port == 8080


def test_every_option_changes_the_field_it_names() -> None:
    raw = {
        "name": "llm",
        "namespace": "chaos-a",
        "replicas": "5",
        "image": "reg.example/ckpt-writer:9.9.9",
        "image_pull_policy": "never",
        "storage_class": "shared",
        "volume_size": "2Gi",
        "access_mode": "RWOP",
        "claim_template": "ckpt",
        "when_deleted": "delete",
        "when_scaled": "Delete",
        "pod_management": "parallel",
        "update_strategy": "RollingUpdate",
        "partition": "2",
        "min_ready_seconds": "4",
        "termination_grace_seconds": "7",
        "pdb_min_available": "50%",
        "cpu_request": "100m",
        "memory_request": "none",
        "cpu_limit": "2",
        "memory_limit": "1Gi",
        "keep_last": "0",
        "max_checkpoint_bytes": "8Mi",
        "listen_port": "9090",
        "checkpoint_format": "torch-dcp-hardened",
    }
    parsed = spec.parse(raw)
    assert parsed == spec.DeploySpec(
        name="llm",
        namespace="chaos-a",
        replicas=5,
        image="reg.example/ckpt-writer:9.9.9",
        image_pull_policy="Never",
        storage_class="shared",
        volume_size="2Gi",
        access_mode="ReadWriteOncePod",
        claim_template="ckpt",
        when_deleted="Delete",
        when_scaled="Delete",
        pod_management="Parallel",
        update_strategy="RollingUpdate",
        partition=2,
        min_ready_seconds=4,
        termination_grace_seconds=7,
        pdb=spec.Pdb(min_available="50%", max_unavailable=None),
        resources=spec.Resources(cpu_request="100m", memory_request=None, cpu_limit="2", memory_limit="1Gi"),
        writer=spec.WriterSettings(keep_last=0, max_checkpoint_bytes=8 * 2**20, listen_port=9090,
                                   checkpoint_format="torch-dcp-hardened"),
    )
    # Every option in the table was exercised here or in the PDB tests below.
    assert set(raw) | {"pdb", "pdb_max_unavailable"} == set(spec.OPTIONS_BY_KEY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"replicas": "-1"}, "--replicas: must be 0 or more, got -1"),
        ({"replicas": "three"}, "--replicas: 'three' is not a whole number"),
        ({"volume_size": "1GB"}, "--size: '1GB' is not a Kubernetes quantity"),
        ({"volume_size": "0"}, "--size: '0' must be more than zero bytes"),
        ({"volume_size": "-1Gi"}, "--size: '-1Gi' must be more than zero bytes"),
        ({"access_mode": "ReadWriteSometimes"}, "--access-mode: 'ReadWriteSometimes' is not one of"),
        ({"when_deleted": "Keep"}, "--when-deleted: 'Keep' is not one of Retain, Delete"),
        ({"pod_management": "Ordered"}, "--pod-management: 'Ordered' is not one of OrderedReady, Parallel"),
        ({"name": "Ckpt"}, "--name: 'Ckpt' must be lower-case letters"),
        ({"name": "1ckpt"}, "--name: '1ckpt' must be lower-case letters"),
        ({"name": "x" * 53}, "at most 52 characters"),
        ({"namespace": "Chaos"}, "--namespace: 'Chaos' must be a DNS label"),
        ({"storage_class": "Fast_SSD"}, "--storage-class: 'Fast_SSD' is not a storage class name"),
        ({"listen_port": "70000"}, "--port: must be a port number 1-65535, got 70000"),
        ({"pdb_min_available": "150%"}, "--pdb-min-available: '150%' is not a percentage"),
        ({"pdb_min_available": "1", "pdb_max_unavailable": "1"}, "set either a minimum available or a maximum"),
        ({"pdb": "false", "pdb_max_unavailable": "1"}, "--pdb-max-unavailable: the PodDisruptionBudget is disabled"),
        ({"pdb": "maybe"}, "--pdb: 'maybe' is not true or false"),
        ({"update_strategy": "OnDelete", "partition": "1"}, "--partition: a partition only applies to"),
        ({"memory_request": "1Gi"}, "--memory-request: the request 1Gi is above the limit 512Mi"),
        ({"cpu_limit": "10m"}, "--cpu-limit: the request 50m is above the limit 10m"),
        ({"image": "ckpt writer"}, "--image: 'ckpt writer' is not an image reference"),
        ({"max_checkpoint_bytes": "lots"}, "--max-checkpoint-size: 'lots' is not a Kubernetes quantity"),
    ],
)
def test_bad_value_is_one_line_naming_its_flag(raw: dict[str, str], expected: str) -> None:
    with pytest.raises(spec.SpecError) as caught:
        spec.parse(raw)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_pulumi_source_names_the_config_key() -> None:
    with pytest.raises(spec.SpecError, match=r"^ckpt:replicas: must be 0 or more, got -2$"):
        spec.parse({"replicas": "-2"}, source="pulumi")
    with pytest.raises(spec.SpecError, match=r"^ckpt:volumeSize: "):
        spec.parse({"volume_size": "big"}, source="pulumi")


def test_unknown_key_is_refused_not_ignored() -> None:
    with pytest.raises(spec.SpecError, match="unknown spec option"):
        spec.parse({"replica": "3"})


def test_pdb_can_be_disabled_switched_and_re_enabled() -> None:
    assert spec.parse({"pdb": "false"}).pdb is None
    assert spec.parse({"pdb_max_unavailable": "2"}).pdb == spec.Pdb(min_available=None, max_unavailable=2)
    assert spec.parse({"pdb_min_available": "1"}).pdb == spec.Pdb(min_available=1, max_unavailable=None)
    no_pdb = spec.parse({"pdb": "off"})
    assert spec.parse({"pdb": "on"}, base=no_pdb).pdb == spec.Pdb()


def test_none_values_keep_the_base() -> None:
    base = spec.parse({"replicas": "7"})
    assert spec.parse({"replicas": None, "name": None}, base=base) == base


def test_storage_class_default_spellings_mean_cluster_default() -> None:
    assert spec.parse({"storage_class": ""}).storage_class is None
    assert spec.parse({"storage_class": "default"}).storage_class is None


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.DeploySpec().replicas = 4  # type: ignore[misc]


def test_option_table_has_unique_flags_and_config_keys() -> None:
    flags = [option.flag for option in spec.OPTIONS]
    keys = [option.config_key for option in spec.OPTIONS]
    assert len(set(flags)) == len(flags)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("500Mi", 500 * 2**20),
        ("1G", 10**9),
        ("100m", decimal.Decimal("0.1")),
        ("1e3", 1000),
        ("2E-3", decimal.Decimal("0.002")),
        (".5", decimal.Decimal("0.5")),
    ],
)
def test_quantity_values(text: str, value: object) -> None:
    assert quantity.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1GB", "Gi", "1 Gi", " 1Gi", "1e3m", "1.2.3", "--1", "1Kib", "0x10"])
def test_quantity_rejects_what_the_api_server_rejects(text: str) -> None:
    with pytest.raises(quantity.QuantityError):
        quantity.parse_quantity(text)


@given(
    number=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    suffix=st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G", "m", "e3", "E-2"]),
)
def test_quantity_agrees_with_the_kubernetes_client(number: decimal.Decimal, suffix: str) -> None:
    text = f"{number}{suffix}"
    assert quantity.parse_quantity(text) == k8s_quantity.parse_quantity(text)


def test_bytes_round_up_fractions() -> None:
    assert quantity.parse_bytes("1.5") == 2
    assert quantity.parse_bytes("1Ki") == 1024
