"""Negative-control writers in a scenario (``writer_unsafe_skip``): validated before a cluster is touched, reach
the writer only as ``WRITER_UNSAFE_SKIP``, and never through a deploy flag (scenarios/test_power_loss_controls.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.deploy import manifests
from harness.deploy import spec as deploy_spec
from harness.scenario import model, schedule


def scenario(**kw: Any) -> model.Scenario:
    fields: dict[str, Any] = {
        "name": "control", "claim": "a writer skipping a step is caught",
        "faults": {"power-loss": model.Fault("power-loss", "its node lost power")},
        "schedule": lambda ctx: schedule.repeat(ctx.seed, "power-loss", schedule.ordinals("node-of", ctx.replicas), 1),
        "deploy": {"replicas": "2", "storage_class": "lazy"},
        **kw,
    }
    return model.Scenario(**fields)


def writer_env(spec: deploy_spec.DeploySpec) -> dict[str, Any]:
    body: Any = manifests.statefulset(spec).body
    container = body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_skipped_steps_reach_the_writer_as_its_environment() -> None:
    spec = scenario(writer_unsafe_skip=("parent-fsync", "file-fsync")).deploy_spec("ns")
    assert spec.writer.unsafe_skip == ("parent-fsync", "file-fsync")
    assert writer_env(spec)["WRITER_UNSAFE_SKIP"] == "parent-fsync,file-fsync"
    assert scenario(writer_unsafe_skip=("file-fsync",)).settings()["writer_unsafe_skip"] == ["file-fsync"]


def test_a_correct_writer_gets_no_unsafe_switch_and_no_deploy_flag_sets_one() -> None:
    assert "WRITER_UNSAFE_SKIP" not in writer_env(scenario().deploy_spec("ns"))
    assert "unsafe_skip" not in deploy_spec.OPTIONS_BY_KEY
    with pytest.raises(deploy_spec.SpecError, match="unknown spec option"):
        deploy_spec.parse({"unsafe_skip": "file-fsync"})


def test_an_unknown_step_or_a_library_format_is_refused_at_construction() -> None:
    with pytest.raises(model.ScenarioError, match="fsync-everything is not a publish step"):
        scenario(writer_unsafe_skip=("fsync-everything",))
    with pytest.raises(model.ScenarioError, match="raw format only"):
        scenario(writer_unsafe_skip=("file-fsync",), deploy={"checkpoint_format": "safetensors"})
