"""Step configs from keyword options: one rule for every step's ``config=`` / ``**options``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from curate.errors import InputError, OptionError, OptionValueError

C = TypeVar("C")


def resolve_config(cls: type[C], config: C | None, options: Mapping[str, Any], *, step: str) -> C:
    """``config`` as given, or ``cls(**options)``; never both.

    An unknown option name raises :class:`~curate.errors.OptionError` (a ``TypeError``) that
    lists the valid ones; a bad value raises the config's ``ValueError`` message as an
    :class:`~curate.errors.OptionValueError` (a ``ValueError`` and an ``InputError``, so the
    CLI prints it as one line).
    """
    if config is not None:
        if options:
            raise OptionError(f"{step}(): pass either config= or keyword options, not both.")
        return config
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise OptionError(f"{step}() got unknown option(s) {unknown}; valid options are {valid}.")
    try:
        return cls(**options)
    except InputError:
        raise
    except ValueError as exc:
        raise OptionValueError(f"{step}(): {exc}") from exc
