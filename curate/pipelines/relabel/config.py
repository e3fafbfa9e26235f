"""The relabel step's options, validated once, shared by the CLI and Python."""

from __future__ import annotations

from dataclasses import dataclass

from curate.pipelines.teachers.heads import HEADS


@dataclass(frozen=True)
class RelabelConfig:
    """What ``relabel`` computes (how it runs is the engine's options).

    Parameters
    ----------
    teacher
        None: EfficientNet-Lite0 (offline ImageNet weights) plus a ``head`` fit out of fold
        on the manifest's labels; ``timm:<name>=<weights>`` for another backbone;
        ``classifier:timm:<name>=<weights>`` for your classifier with the manifest's classes;
        ``+`` joins an ensemble (probabilities averaged).
    head
        ``logreg`` (the map's cell logits then average exactly to the global logits) or
        ``mlp``.
    folds, seed
        Stratified, seeded K-fold for the heads: no row is labelled by a head that saw it.
    top_k
        Classes kept per row (``soft_classes``/``soft_probs``) and per map cell.
    threshold
        ``labels`` holds the classes with probability at least this (always the top-1).
    image_size
        Teacher input side in pixels (the whole image, squashed); None: 480, a 15 x 15 map
        on EfficientNet-Lite0 (stride 32). 224 gives 7 x 7, 64 gives 2 x 2.
    device
        ``auto``, ``cpu``, ``cuda``.
    batch_size
        Images per teacher call.
    """

    teacher: str | None = None
    head: str = "logreg"
    folds: int = 5
    seed: int = 0
    top_k: int = 5
    threshold: float = 0.25
    image_size: int | None = None
    device: str = "auto"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r}: valid heads are {', '.join(HEADS)}.")
        for name in ("folds", "top_k", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold!r}: must be in (0, 1].")
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"image_size={self.image_size!r}: must be at least 32 (or None).")

    def teacher_options(self) -> dict:
        """The :class:`~curate.pipelines.teachers.TeacherConfig` fields this config sets."""
        return {
            "head": self.head, "folds": self.folds, "seed": self.seed,
            "image_size": self.image_size, "device": self.device, "batch_size": self.batch_size,
        }  # fmt: skip
