"""Relabel (ReLabel): soft labels, multi-label sets and localized label maps from a teacher,
combined with the given labels through an estimated noise channel; and ``mistakes``, a
ReaL-style look at a model's errors against those sets."""

from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.evidence import WeakTeacherError, WeakTeacherWarning
from curate.pipelines.relabel.posterior import NoiseChannel, estimate_channel
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
    "NoiseChannel",
    "RelabelStep",
    "WeakTeacherError",
    "WeakTeacherWarning",
    "estimate_channel",
    "label_sets",
    "relabel",
]
