"""The registry of distillation methods by name."""

from __future__ import annotations

from curate.pipelines.distill.base import DistillMethod, UnknownMethodError
from curate.pipelines.distill.datadam import AttentionMatching
from curate.pipelines.distill.dm import DistributionMatching

#: Distillation methods by name; add a :class:`DistillMethod` subclass here to register one.
METHODS: dict[str, type[DistillMethod]] = {
    "dm": DistributionMatching,
    "datadam": AttentionMatching,
}


def get_method(name: str, **params) -> DistillMethod:
    """An instance of the method registered as ``name``."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown distillation method {name!r}; choose one of {', '.join(METHODS)}"
        ) from None
    return cls(**params)
