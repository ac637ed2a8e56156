"""The ``harness`` console script.

Each sub-command lives in its own module under :mod:`harness.commands` and registers itself
on the app, so the owner of a feature owns its command and heavy imports (kubernetes,
locust, pulumi) happen only when that command runs.
"""

from __future__ import annotations

import importlib

import typer

#: Modules under harness.commands, each exposing ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "check",
    "report",
    "verify",
    "writer",
    "deploy",
    "image",
    "load",
    "bench",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="harness",
        help="Chaos and durability harness for StatefulSet checkpoint volumes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # plain help: typer's rich panels print <bool> after every flag and the Python type of
        # every value (<str> for numbers the spec parser reads from text); options say what they take
        rich_markup_mode=None,
    )

    @app.callback()
    def _root() -> None:
        """Chaos and durability harness for StatefulSet checkpoint volumes."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"harness.commands.{name}").register(app)
    return app


def main() -> None:
    build_app()()
