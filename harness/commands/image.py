"""`harness image build`: the ckpt-writer image (infra/Dockerfile), optionally loaded into kind."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

image_app = typer.Typer(help="The ckpt-writer container image.", no_args_is_help=True)


@image_app.command("build")
def build(
    *,
    tag: Annotated[
        str | None, typer.Option("--tag", help="image reference [default: ckpt-writer:<harness version>]")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="after building, load the image into this kind cluster")
    ] = None,
    context: Annotated[
        Path | None, typer.Option("--context", help="repository root to build from [default: this checkout]")
    ] = None,
    formats: Annotated[
        str | None, typer.Option("--formats", metavar="torch,orbax",
                                 help="also install these checkpoint libraries (the torch-dcp and orbax formats; "
                                      "several hundred MB each) [default: raw and safetensors only]")
    ] = None,
) -> None:
    """Build the writer image with Docker (and `kind load` it when --kind is given)."""
    from harness.deploy import image

    try:
        plan = image.plan(context, tag, kind, image.parse_formats(formats))
        image.build(plan, echo=lambda line: print(line, file=sys.stderr))
    except image.ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    print(plan.tag)


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")
