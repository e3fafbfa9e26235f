"""Usage errors as one line with the fix: a typo'd command or option, a bad or missing value.

typer (through click) raises a usage error for anything wrong on the command line; by default
it prints a usage block, a help hint and a framed message. :func:`usage_line` turns one into a
single line that names what was wrong and how to put it right, e.g. ``no such command 'prun';
did you mean 'prune'? (curate --help lists them)``.
"""

from __future__ import annotations

import difflib
from typing import Any

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import (
        BadOptionUsage,
        BadParameter,
        ClickException,
        MissingParameter,
        NoArgsIsHelpError,
        NoSuchOption,
        UsageError,
    )
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import (
        BadOptionUsage,
        BadParameter,
        ClickException,
        MissingParameter,
        NoSuchOption,
        UsageError,
    )

    class NoArgsIsHelpError(UsageError):  # never raised by this click
        pass


from typer.core import TyperGroup

__all__ = ["ClickException", "CurateGroup", "NoArgsIsHelpError", "NoSuchCommand", "usage_line"]


class NoSuchCommand(UsageError):
    """A command name that the app does not have."""

    def __init__(self, name: str, ctx: Any) -> None:
        super().__init__(f"No such command {name!r}.", ctx)
        self.name = name


class CurateGroup(TyperGroup):
    """The app's command group: an unknown command raises :class:`NoSuchCommand`."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        if (
            name is not None
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            raise NoSuchCommand(name, ctx)
        return super().resolve_command(ctx, args)


#: What a value of each type looks like, for "give a number, e.g. --keep 0.5".
_EXAMPLES = {
    "int": ("a whole number", "4"),
    "integer": ("a whole number", "4"),
    "float": ("a number", "0.5"),
    "bool": ("true or false", "true"),
    "boolean": ("true or false", "true"),
}


def _command_path(exc: UsageError) -> str:
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if ctx is not None else "curate"


def _help(exc: UsageError) -> str:
    return f"{_command_path(exc)} --help"


def _type_name(param: Any) -> str | None:
    """``int``, ``float``... for a parameter (typer's annotation, or click's type name)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type):
        return annotation.__name__
    name = getattr(getattr(param, "type", None), "name", None)
    return name.lower() if isinstance(name, str) else None


def _flag(param: Any) -> str:
    """The name a user types: the longest option flag, or an argument's metavar."""
    opts = [o for o in getattr(param, "opts", []) or [] if o.startswith("-")]
    if opts:
        return max(opts, key=len)
    return (getattr(param, "metavar", None) or param.name or "VALUE").upper()


def _given(exc: BadParameter) -> str | None:
    """The value the user gave, where the error carries it (typer's pydantic check does)."""
    errors = getattr(exc.__cause__, "errors", None)
    if callable(errors):
        try:
            value = errors()[0].get("input")
        except (IndexError, AttributeError, TypeError, ValueError):
            return None
        return None if value is None else str(value)
    return None


def _usage(exc: UsageError) -> str:
    """``curate prune [OPTIONS] MANIFEST``: the command with its positional arguments."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return "curate COMMAND [OPTIONS]"
    args = [
        _flag(p)
        for p in getattr(ctx.command, "params", [])
        if getattr(p, "param_type_name", "") == "argument"
    ]
    return " ".join([ctx.command_path, "[OPTIONS]", *args])


def _suggest(name: str, names: list[str]) -> str:
    """``; did you mean 'prune'?`` for the closest of ``names``, or nothing."""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _no_such_command(exc: UsageError, name: str) -> str:
    ctx = exc.ctx
    names = ctx.command.list_commands(ctx) if ctx is not None else []
    return f"no such command {name!r}{_suggest(name, names)} ({_help(exc)} lists them)"


def _no_such_option(exc: NoSuchOption) -> str:
    ctx = getattr(exc, "ctx", None)
    params = getattr(ctx.command, "params", []) if ctx is not None else []
    flags = [o for p in params for o in (*p.opts, *getattr(p, "secondary_opts", []))]
    names = [f for f in flags if f.startswith("--")] or list(exc.possibilities or [])
    return (
        f"{_command_path(exc)}: no such option {exc.option_name!r}"
        f"{_suggest(exc.option_name, names)} ({_help(exc)} lists the options)"
    )


def _missing(exc: MissingParameter) -> str:
    param, where = exc.param, _command_path(exc)
    if param is None:
        return f"{where}: {exc.format_message()}; usage: {_usage(exc)}"
    if getattr(param, "param_type_name", "") == "argument":
        return f"{where}: missing argument {_flag(param)}; usage: {_usage(exc)}"
    flag = _flag(param)
    return f"{where}: missing option {flag}; usage: {_usage(exc)} {flag} {param.name.upper()}"


def _bad_value(exc: BadParameter) -> str:
    param, where = exc.param, _command_path(exc)
    if param is None:
        return f"{where}: {exc.format_message()}; see {_help(exc)}"
    flag, given = _flag(param), _given(exc)
    shown = f" {given!r}" if given is not None else ""
    kind = _EXAMPLES.get(_type_name(param) or "")
    if kind is not None:
        what, example = kind
        return f"{where}: {flag}{shown} is not {what}; give {what}, e.g. {flag} {example}"
    message = str(exc.message).rstrip(".")
    if message.endswith("is not readable"):
        return f"{where}: {flag}: {message}; make it readable (chmod u+r) or run as its owner"
    return f"{where}: invalid value for {flag}{shown}: {message}; see {_help(exc)}"


def usage_line(exc: ClickException) -> str:
    """One line naming what was wrong on the command line and the fix (no ``error:`` prefix)."""
    if isinstance(exc, NoSuchOption):
        return _no_such_option(exc)
    if isinstance(exc, MissingParameter):
        return _missing(exc)
    if isinstance(exc, BadParameter):
        return _bad_value(exc)
    if isinstance(exc, NoSuchCommand):
        return _no_such_command(exc, exc.name)
    message = " ".join(str(exc.format_message()).split())
    if isinstance(exc, BadOptionUsage) and "requires" in message:
        flag = exc.option_name
        return f"{_command_path(exc)}: option {flag!r} needs a value; give {flag} VALUE"
    if isinstance(exc, UsageError):
        return f"{_command_path(exc)}: {message[0].lower()}{message[1:]}; usage: {_usage(exc)}"
    return message
