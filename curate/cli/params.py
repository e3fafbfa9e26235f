"""Build typer commands from one list of parameters, for commands with many options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer


def option(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    """A keyword-only typer option; ``decls`` are its flags (default: derived from ``name``)."""
    info = typer.Option(*decls, help=help)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, annotation=Annotated[annotation, info], default=default)


def argument(name: str, annotation: Any, *, help: str) -> inspect.Parameter:
    """A required positional typer argument."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Parameter(
        name, kind, annotation=Annotated[annotation, typer.Argument(help=help)]
    )


def command(fn: Callable[..., Any], params: list[inspect.Parameter]) -> Callable[..., Any]:
    """Give ``fn(**options)`` the signature typer reads: one list holds all its parameters."""
    fn.__signature__ = inspect.Signature(params)
    return fn


#: ``--progress``, shared by the commands that run a step.
PROGRESS_PARAM = option(
    "progress",
    str,
    "auto",
    "--progress",
    help="auto (a bar on a terminal, a line at least every 25 s in logs), bar, lines or off.",
)


#: ``--engine``, ``--ray-address`` and ``--progress``, shared by the commands that run a step.
ENGINE_PARAMS = [
    option("engine", str, "local", "--engine", help="local (default) or ray."),
    option(
        "ray_address",
        str | None,
        None,
        "--ray-address",
        help="A running Ray cluster (host:6379, ray://host:10001); default: start a local one.",
    ),
    PROGRESS_PARAM,
]


def pop_engine(options: dict[str, Any]) -> dict[str, Any]:
    """Take the engine options (and ``progress``) out of a command's options, for the
    library call."""
    return {k: options.pop(k) for k in ("engine", "ray_address", "progress")}
