"""Dataset distillation: a few synthetic images per class (DM, DataDAM, FYI) from a manifest."""

from curate.pipelines.distill.config import DistillConfig
from curate.pipelines.distill.loop import DivergedError
from curate.pipelines.distill.methods import METHODS, get_method
from curate.pipelines.distill.output import read_pixels, to_uint8
from curate.pipelines.distill.runner import DistillWarning, distill, flip_is_unsafe

__all__ = [
    "METHODS",
    "DistillConfig",
    "DistillWarning",
    "DivergedError",
    "distill",
    "flip_is_unsafe",
    "get_method",
    "read_pixels",
    "to_uint8",
]
