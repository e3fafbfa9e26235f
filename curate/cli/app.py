"""The ``curate`` command: one module per command group, each adding its commands here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from curate.errors import CurateError

app = typer.Typer(
    name="curate",
    help="Curate image and image-text datasets and fix their labels, over Parquet manifests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _register_commands() -> None:
    from curate.cli import (
        check_cmd,
        distill_cmd,
        embed_cmd,
        evaluate_cmd,
        ingest_cmd,
        label_issues_cmd,
        manifest_cmds,
        prune_cmd,
        reinforce_cmd,
        relabel_cmd,
        report_cmd,
    )

    commands = (manifest_cmds, ingest_cmd, embed_cmd, prune_cmd, label_issues_cmd, evaluate_cmd)
    for module in (*commands, check_cmd, distill_cmd, relabel_cmd, reinforce_cmd, report_cmd):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: bad input prints one clear line and exits with status 2."""
    try:
        code = app(args=argv, standalone_mode=False)  # a typer.Exit(n) comes back as n
    except CurateError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
