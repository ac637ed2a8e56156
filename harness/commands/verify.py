"""``harness verify DIR``: judge a checkpoint volume offline (reads only)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from harness import facts


def verify(
    data_dir: Annotated[Path, typer.Argument(metavar="DIR", help="the volume's data directory (holds identity.json)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object (harness.facts.VolumeFacts)")] = False,
    ordinal: Annotated[
        int | None,
        typer.Option("--ordinal", min=0,
                     help="the ordinal whose claim this volume is (needed when it has no identity stamp); "
                          "a stamp naming another ordinal is reported as a swapped volume"),
    ] = None,
) -> None:
    """Validate every checkpoint; exit 0 when all are valid, 1 when any is torn, 2 on bad input."""
    from harness.workload import verify as verify_mod

    try:
        found, warnings = verify_mod.verify_volume(data_dir, ordinal)
    except verify_mod.VerifyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if as_json:
        print(json.dumps(dataclasses.asdict(found), sort_keys=True))
    else:
        _print_table(found)
    raise typer.Exit(0 if verify_mod.all_valid(found) else 1)


def _print_table(found: facts.VolumeFacts) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    stamp = found.stamp
    read_as = f"read as ordinal {found.read_as}" if found.read_as is not None else f"ordinal {found.ordinal} (stamp)"
    console.print(
        f"{read_as}  stamp: "
        + (f"{stamp.statefulset}/{stamp.namespace} ordinal {stamp.ordinal} claim {stamp.claim} volume {stamp.volume_id}"
           if stamp else "none")
    )
    if stamp is not None and stamp.ordinal != found.ordinal:
        console.print(f"[red]SWAPPED: stamped for ordinal {stamp.ordinal}, read as ordinal {found.ordinal}[/red]")
    table = Table("step", "valid", "digest", "request_id", "problem")
    for c in found.checkpoints:
        valid = "yes" if c.valid else "[red]TORN[/red]"
        table.add_row(str(c.step), valid, (c.digest or "")[:16], c.request_id or "", c.problem or "")
    console.print(table)
    console.print(
        f"latest valid step: {found.latest_valid_step}; torn: {sum(not c.valid for c in found.checkpoints)}; "
        f"orphaned temp dirs: {found.temp_dirs} ({found.temp_bytes} bytes)"
    )


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
