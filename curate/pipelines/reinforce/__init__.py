"""Dataset reinforcement (ImageNet+-style): stored views and teacher soft labels per image."""

from curate.pipelines.reinforce.calibrate import CalibrationWarning, calibrate, teacher_sha256
from curate.pipelines.reinforce.config import POLICIES, ReinforceConfig
from curate.pipelines.reinforce.export import export_webdataset
from curate.pipelines.reinforce.runner import reinforce
from curate.pipelines.reinforce.step import ReinforceStep, content_hash

__all__ = [
    "POLICIES",
    "CalibrationWarning",
    "ReinforceConfig",
    "ReinforceStep",
    "calibrate",
    "content_hash",
    "export_webdataset",
    "reinforce",
    "teacher_sha256",
]
