"""The ``curate`` command: one module per command group, each adding its commands here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from curate.cli.errors import ClickException, CurateGroup, NoArgsIsHelpError, usage_line
from curate.errors import CurateError

app = typer.Typer(
    name="curate",
    cls=CurateGroup,
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
        export_cmd,
        ingest_cmd,
        label_issues_cmd,
        manifest_cmds,
        prune_cmd,
        reinforce_cmd,
        relabel_cmd,
        report_cmd,
    )

    commands = (manifest_cmds, ingest_cmd, embed_cmd, prune_cmd, label_issues_cmd, evaluate_cmd)
    later = (check_cmd, distill_cmd, relabel_cmd, reinforce_cmd, export_cmd, report_cmd)
    for module in (*commands, *later):
        module.register(app)


_register_commands()


def _fail(message: str) -> None:
    """Print ``error: message`` as one line on stderr and exit with status 2."""
    from rich.markup import escape

    line = escape(" ".join(message.split()))  # one line, whatever the message held
    err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a usage error or bad input prints one line (``error: ...``
    with the fix) on stderr and exits with status 2, never a traceback."""
    try:
        # a typer.Exit(n) comes back as n
        code = app(args=argv, prog_name="curate", standalone_mode=False)
    except CurateError as exc:
        _fail(str(exc))
    except NoArgsIsHelpError as exc:  # ``curate`` alone, or a group without a command: help
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:
        _fail(usage_line(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
