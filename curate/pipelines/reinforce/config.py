"""The reinforce step's configuration: views per image, top-k, policy, mixing, teacher."""

from __future__ import annotations

from dataclasses import dataclass

from curate.engines.options import MODEL_SHARD_ROWS
from curate.train.augment import MIXES, POLICIES, get_policy


@dataclass(frozen=True)
class ReinforceConfig:
    """Options of :func:`curate.pipelines.reinforce.reinforce` (the CLI has the same names).

    Parameters
    ----------
    augs
        Views sampled per image (ImageNet+ used up to 400).
    top_k
        Teacher classes kept per view (sorted by probability, float16).
    policy
        Augmentation policy name (``curate.train.augment.POLICIES``).
    mix, mix_prob
        ``none``, ``mixup`` or ``cutmix``, and the share of views that mix in a partner (a row
        of the same batch, drawn from the view's RNG).
    size
        Side of the stored views (None: the source image's height).
    seed
        Seeds every view's parameters (per row id and view index).
    teacher
        Teacher spec (``curate.pipelines.teachers.build_teacher``); None: the same default as
        ``curate relabel`` (EfficientNet-Lite0 + a head fit on the labelled rows).
    head, teacher_image_size, teacher_split
        The default teacher's head, input size and the split its head is fit on (None: every
        labelled row).
    calibration_split
        Rows of this split are held out: neither the teacher nor the student may train on
        them. They are reinforced like the others and recorded in ``calibration.json`` (with
        the teacher's hash and its temperature on their views), and a trained student's
        temperature is fit on their clean images
        (:func:`curate.train.calibration.calibrate_student`). None, or no such rows: no record.
    batch_size
        Rows per batch: mixing partners are drawn within one.
    shard_rows
        Rows per output shard: the unit an interrupted run does not redo.
    device
        ``auto``, ``cpu`` or ``cuda``.
    """

    augs: int = 8
    top_k: int = 10
    policy: str = "randaugment"
    mix: str = "none"
    mix_prob: float = 0.5
    size: int | None = None
    seed: int = 0
    teacher: str | None = None
    head: str = "logreg"
    teacher_image_size: int | None = 64
    teacher_split: str | None = None
    calibration_split: str | None = "val"
    batch_size: int = 64
    shard_rows: int = MODEL_SHARD_ROWS
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("augs", "top_k", "batch_size", "shard_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        get_policy(self.policy)
        if self.mix not in MIXES:
            raise ValueError(f"mix={self.mix!r}: valid values are {', '.join(MIXES)}.")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob={self.mix_prob!r}: must be in [0, 1].")
        if self.size is not None and self.size < 8:
            raise ValueError(f"size={self.size!r}: must be at least 8 (or None).")


__all__ = ["POLICIES", "ReinforceConfig"]
