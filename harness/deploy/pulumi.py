"""`harness deploy --via pulumi`: the same objects through Pulumi's Automation API.

The inline program is :func:`harness.deploy.pulumi_program.declare`, the one infra/__main__.py
runs, so this path and `pulumi up` in infra/ are the same deployment. State lives in a local
file backend (no Pulumi Cloud login). The Automation API drives the `pulumi` CLI, which many
machines lack: that is detected first and reported in one line pointing at `--via direct`.
The same offline validation and cluster preflight as the direct path run before Pulumi does.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.deploy import checkout, direct, manifests, pulumi_program
from harness.deploy import spec as deploy_spec
from harness.kube import client as kube_client

if TYPE_CHECKING:
    from pulumi import automation as auto

PULUMI_MISSING = (
    "the pulumi CLI is not on PATH (the Automation API runs it); install it from "
    "https://www.pulumi.com/docs/install/ or deploy with --via direct"
)


def cli_problem() -> str | None:
    return None if shutil.which("pulumi") is not None else PULUMI_MISSING


def default_state_dir() -> Path:
    """infra/.pulumi in a source checkout (git-ignored), else a per-user directory."""
    root = checkout.source_root()
    if root is not None:
        return root / "infra" / ".pulumi"
    return Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser() / "ckpt-chaos" / "pulumi"


def stack_name(spec: deploy_spec.DeploySpec) -> str:
    """One stack per (namespace, set): two deployments never share state."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{spec.namespace}.{spec.name}")


def _stack(
    spec: deploy_spec.DeploySpec, target: direct.Target, state_dir: Path, program: Callable[[], None]
) -> auto.Stack:
    from pulumi import automation as auto

    state_dir.mkdir(parents=True, exist_ok=True)
    project = auto.ProjectSettings(
        name=pulumi_program.PROJECT_NAME,
        runtime="python",
        backend=auto.ProjectBackend(url=state_dir.resolve().as_uri()),
    )
    env = {"PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    stack = auto.create_or_select_stack(
        stack_name=stack_name(spec),
        project_name=pulumi_program.PROJECT_NAME,
        program=program,
        opts=auto.LocalWorkspaceOptions(project_settings=project, env_vars=env, secrets_provider="passphrase"),
    )
    version = importlib.metadata.version("pulumi_kubernetes")
    stack.workspace.install_plugin("kubernetes", f"v{version}")
    kubeconfig = target.kubeconfig if target.kubeconfig is not None else kube_client.default_kubeconfig_path()
    stack.set_config("kubernetes:kubeconfig", auto.ConfigValue(value=str(kubeconfig.resolve())))
    if target.context is not None:
        stack.set_config("kubernetes:context", auto.ConfigValue(value=target.context))
    return stack


def deploy(
    spec: deploy_spec.DeploySpec,
    target: direct.Target,
    *,
    state_dir: Path,
    progress: direct.Progress,
) -> dict[str, object]:
    """`pulumi up` of the inline program; returns the stack outputs."""
    problem = cli_problem()
    if problem is not None:
        raise direct.DeployError(problem, bad_input=True)
    built = manifests.build(spec)
    direct.validate_offline(built)
    api = direct.connect(target, progress)
    try:
        namespace_state, _storage = direct.preflight(api, built)
    finally:
        kube_client.close(api)
    from pulumi import automation as auto

    owns_namespace = [namespace_state == "missing"]
    stack = _stack(spec, target, state_dir, lambda: _declare(built, manage_namespace=owns_namespace[0]))
    if not owns_namespace[0]:
        # It exists: the stack may own it from an earlier `up`; if not, it must stay hands-off.
        owns_namespace[0] = _stack_owns(stack, pulumi_program.resource_name(built.namespace))
        if not owns_namespace[0]:
            progress(f"namespace {spec.namespace} exists and is labelled for tests; the stack will not own it")
    progress(f"pulumi up: stack {stack_name(spec)} (state in {state_dir})")
    try:
        result = stack.up(on_output=progress)
    except auto.errors.CommandError as exc:
        raise direct.DeployError(f"pulumi up failed: {_last_line(str(exc))}", bad_input=False) from None
    return {key: output.value for key, output in result.outputs.items()}


def undeploy(
    spec: deploy_spec.DeploySpec, target: direct.Target, *, state_dir: Path, progress: direct.Progress
) -> None:
    """`pulumi destroy` of the stack for this (namespace, set)."""
    problem = cli_problem()
    if problem is not None:
        raise direct.DeployError(problem, bad_input=True)
    from pulumi import automation as auto

    built = manifests.build(spec)
    stack = _stack(spec, target, state_dir, lambda: _declare(built, manage_namespace=True))
    progress(f"pulumi destroy: stack {stack_name(spec)}")
    try:
        stack.destroy(on_output=progress)
    except auto.errors.CommandError as exc:
        raise direct.DeployError(f"pulumi destroy failed: {_last_line(str(exc))}", bad_input=False) from None


def _declare(built: manifests.Manifests, *, manage_namespace: bool) -> None:
    pulumi_program.declare(built, manage_namespace=manage_namespace)


def _stack_owns(stack: auto.Stack, resource_name: str) -> bool:
    """Whether the stack's recorded state holds a resource of that logical name."""
    deployment = stack.export_stack().deployment or {}
    resources = deployment.get("resources") or []
    return any(str(resource.get("urn", "")).endswith(f"::{resource_name}") for resource in resources)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
