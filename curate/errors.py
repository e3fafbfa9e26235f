"""Exceptions curate raises for bad input; the CLI prints their message and exits non-zero."""

from __future__ import annotations


class CurateError(Exception):
    """Base class: the message names the file, row or column at fault and the fix."""


class ManifestError(CurateError):
    """A manifest is missing, malformed, incomplete or has the wrong schema."""


class InputError(CurateError):
    """An input path, option or value is unusable as given."""


class OutputExistsError(CurateError):
    """The output path already exists and ``overwrite`` was not requested."""


class OptionError(InputError, TypeError):
    """A step was called with an unknown option name, or with both config= and options."""


class OptionValueError(InputError, ValueError):
    """A step option has a value outside what it accepts (the message names the option)."""


class MissingExtraError(CurateError):
    """An optional dependency is not installed; the message names the pip extra."""


def require(module: str, extra: str, *, package: str | None = None):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module
        raise MissingExtraError(
            f"{pkg} is needed for this step but is not installed: "
            f"pip install 'curate-ml[{extra}]' (or pip install {pkg})"
        ) from exc
