"""Relabel (ReLabel): soft labels, multi-label sets and localized label maps from a teacher,
and ``mistakes``, a ReaL-style look at a model's errors against those sets."""

from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.runner import relabel
from curate.pipelines.relabel.step import (
    MAP_CLASSES,
    MAP_SCORES,
    SOFT_CLASSES,
    SOFT_PROBS,
    RelabelStep,
    label_sets,
)

__all__ = [
    "MAP_CLASSES",
    "MAP_SCORES",
    "SOFT_CLASSES",
    "SOFT_PROBS",
    "RelabelConfig",
    "RelabelStep",
    "label_sets",
    "relabel",
]
