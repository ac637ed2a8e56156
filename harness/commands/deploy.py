"""`harness deploy` and `harness undeploy`: the checkpointing StatefulSet on a cluster.

The spec flags are generated from :data:`harness.deploy.spec.OPTIONS` (the same table that
maps Pulumi config keys), and every value arrives as a string so that the one parser in
harness.deploy.spec judges it and a bad value is one line, exit 2, before any object exists.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer

Via = Literal["direct", "pulumi"]
DEFAULT_TIMEOUT = 300.0


def _fail(message: str, *, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _progress_printer() -> Callable[[str], None]:
    """Lines to stderr as they come; never read as rich markup (Pulumi output is full of brackets)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def say(line: str) -> None:
        console.print(line, markup=False)

    return say


def _timeout(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        _fail(f"--timeout {raw!r} is not a number of seconds", code=2)
    if not value > 0:
        _fail(f"--timeout must be more than 0 seconds, got {raw}", code=2)
    return value


def _via(raw: str) -> Via:
    if raw == "direct":
        return "direct"
    if raw == "pulumi":
        return "pulumi"
    _fail(f"--via {raw!r} is not one of direct, pulumi", code=2)


def deploy_command(
    *,
    via: str | None,
    render: Path | None,
    overwrite: bool,
    kubeconfig: Path | None,
    context: str | None,
    wait: bool,
    timeout: str,
    state_dir: Path | None,
    **spec_values: str | None,
) -> None:
    """Deploy the checkpointing StatefulSet (namespace, headless Service, set, PDB)."""
    from harness.deploy import direct, manifests
    from harness.deploy import render as render_mod
    from harness.deploy import spec as deploy_spec

    say = _progress_printer()
    if render is not None and via is not None:
        _fail("--via has no effect with --render (the YAML is what both ways deploy); drop one of them", code=2)
    method = _via(via or "direct")
    wait_timeout = _timeout(timeout) if wait else None
    try:
        spec = deploy_spec.parse(spec_values, source="cli")
    except deploy_spec.SpecError as exc:
        _fail(str(exc), code=2)
    if render is not None:
        built = manifests.build(spec)
        try:
            direct.validate_offline(built)
            paths = render_mod.render(built, render, overwrite=overwrite)
        except render_mod.RenderError as exc:
            _fail(str(exc), code=2)
        except direct.DeployError as exc:
            _fail(str(exc), code=1)
        for path in paths:
            print(path)
        return
    target = direct.Target(kubeconfig=kubeconfig, context=context)
    try:
        if method == "pulumi":
            from harness.deploy import pulumi as pulumi_deploy

            outputs = pulumi_deploy.deploy(
                spec,
                target,
                state_dir=state_dir if state_dir is not None else pulumi_deploy.default_state_dir(),
                progress=say,
            )
            say(f"deployed with pulumi: {outputs}")
            return
        result = direct.deploy(spec, target, wait_timeout=wait_timeout, progress=say)
    except direct.DeployError as exc:
        _fail(str(exc), code=2 if exc.bad_input else 1)
    summary = ", ".join(f"{a.ref} {a.action}" for a in result.applied) or "nothing to change"
    say(f"deployed {spec.namespace}/{spec.name}: {summary}")
    if result.rollout is not None:
        say(f"rollout complete: {result.rollout}")


def undeploy_command(
    *,
    name: str | None,
    namespace: str | None,
    via: str | None,
    delete_claims: bool,
    delete_namespace: bool,
    kubeconfig: Path | None,
    context: str | None,
    wait: bool,
    timeout: str,
    state_dir: Path | None,
) -> None:
    """Delete the StatefulSet, its Service and PDB (claims and namespace only when asked)."""
    from harness.deploy import direct
    from harness.deploy import spec as deploy_spec

    say = _progress_printer()
    method = _via(via or "direct")
    wait_timeout = _timeout(timeout) if wait else None
    try:
        spec = deploy_spec.parse({"name": name, "namespace": namespace}, source="cli")
    except deploy_spec.SpecError as exc:
        _fail(str(exc), code=2)
    target = direct.Target(kubeconfig=kubeconfig, context=context)
    try:
        if method == "pulumi":
            from harness.deploy import pulumi as pulumi_deploy

            pulumi_deploy.undeploy(
                spec,
                target,
                state_dir=state_dir if state_dir is not None else pulumi_deploy.default_state_dir(),
                progress=say,
            )
            return
        deleted = direct.undeploy(
            spec,
            target,
            delete_claims=delete_claims,
            delete_namespace=delete_namespace,
            wait_timeout=wait_timeout,
            progress=say,
        )
    except direct.DeployError as exc:
        _fail(str(exc), code=2 if exc.bad_input else 1)
    say(f"undeployed {spec.namespace}/{spec.name}: {len(deleted)} objects deleted")


_COMMON = {
    "via": Annotated[str | None, typer.Option("--via", metavar="direct|pulumi",
                                              help="direct (kubernetes client) or pulumi (Automation API) "
                                                   "[default: direct]")],
    "kubeconfig": Annotated[
        Path | None, typer.Option("--kubeconfig", help="kubeconfig file [default: $KUBECONFIG or ~/.kube/config]")
    ],
    "context": Annotated[str | None, typer.Option("--context", metavar="NAME",
                                                  help="kubeconfig context [default: current]")],
    "wait": Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the rollout / pods to finish")],
    "timeout": Annotated[str, typer.Option("--timeout", metavar="SECONDS", help="seconds to wait before giving up")],
    "state_dir": Annotated[
        Path | None, typer.Option("--state-dir", help="Pulumi file-backend state [default: infra/.pulumi]")
    ],
}


#: what each spec flag takes (every value arrives as text for the one parser, so the help says
#: what the text must be rather than its Python type)
_SPEC_METAVARS: dict[str, str] = {
    "name": "NAME", "namespace": "NAME", "replicas": "N", "image": "IMAGE",
    "image_pull_policy": "IfNotPresent|Always|Never", "storage_class": "CLASS", "volume_size": "QUANTITY",
    "access_mode": "MODE", "claim_template": "NAME", "when_deleted": "Retain|Delete",
    "when_scaled": "Retain|Delete", "pod_management": "OrderedReady|Parallel",
    "update_strategy": "RollingUpdate|OnDelete", "partition": "N", "min_ready_seconds": "SECONDS",
    "termination_grace_seconds": "SECONDS", "pdb": "true|false", "pdb_min_available": "N|NN%",
    "pdb_max_unavailable": "N|NN%", "cpu_request": "QUANTITY", "memory_request": "QUANTITY",
    "cpu_limit": "QUANTITY", "memory_limit": "QUANTITY", "keep_last": "N", "max_checkpoint_bytes": "QUANTITY",
    "listen_port": "PORT", "checkpoint_format": "FORMAT",
}


def _keyword(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _deploy_signature() -> inspect.Signature:
    from harness.deploy import spec as deploy_spec

    params = [
        _keyword("via", _COMMON["via"], None),
        _keyword(
            "render",
            Annotated[
                Path | None,
                typer.Option("--render", help="write the objects as YAML into this directory instead of deploying"),
            ],
            None,
        ),
        _keyword(
            "overwrite",
            Annotated[bool, typer.Option("--overwrite", help="let --render replace existing files")],
            False,
        ),
        _keyword("kubeconfig", _COMMON["kubeconfig"], None),
        _keyword("context", _COMMON["context"], None),
        _keyword("wait", _COMMON["wait"], True),
        _keyword("timeout", _COMMON["timeout"], str(DEFAULT_TIMEOUT)),
        _keyword("state_dir", _COMMON["state_dir"], None),
    ]
    for option in deploy_spec.OPTIONS:
        params.append(
            _keyword(
                option.key,
                Annotated[str | None, typer.Option(option.flag, help=option.help, show_default=False,
                                                   metavar=_SPEC_METAVARS.get(option.key, "TEXT"))],
                None,
            )
        )
    return inspect.Signature(params)


def _undeploy_signature() -> inspect.Signature:
    return inspect.Signature(
        [
            _keyword("name", Annotated[str | None, typer.Option("--name", help="StatefulSet name [ckpt]")], None),
            _keyword(
                "namespace",
                Annotated[str | None, typer.Option("--namespace", help="namespace [ckpt-chaos]")],
                None,
            ),
            _keyword("via", _COMMON["via"], None),
            _keyword(
                "delete_claims",
                Annotated[bool, typer.Option("--delete-claims", help="also delete the set's PVCs (and their data)")],
                False,
            ),
            _keyword(
                "delete_namespace",
                Annotated[bool, typer.Option("--delete-namespace", help="also delete the namespace")],
                False,
            ),
            _keyword("kubeconfig", _COMMON["kubeconfig"], None),
            _keyword("context", _COMMON["context"], None),
            _keyword("wait", _COMMON["wait"], True),
            _keyword("timeout", _COMMON["timeout"], str(DEFAULT_TIMEOUT)),
            _keyword("state_dir", _COMMON["state_dir"], None),
        ]
    )


def register(app: typer.Typer) -> None:
    # typer reads parameters from the signature; the spec flags come from one table, so the
    # signature is built from it rather than written out twice.
    deploy_command.__signature__ = _deploy_signature()  # type: ignore[attr-defined]
    undeploy_command.__signature__ = _undeploy_signature()  # type: ignore[attr-defined]
    app.command("deploy")(deploy_command)
    app.command("undeploy")(undeploy_command)
