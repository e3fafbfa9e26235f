"""The relabel step's options, validated once, shared by the CLI and Python."""

from __future__ import annotations

from dataclasses import dataclass

from curate.pipelines.relabel.posterior import TARGETS
from curate.pipelines.teachers.build import MIN_IMAGE_SIDE
from curate.pipelines.teachers.heads import HEADS

#: What to do when the teacher looks weaker than the labels (see ``weak_teacher``).
WEAK_TEACHER = ("warn", "error", "proceed")


@dataclass(frozen=True)
class RelabelConfig:
    """What ``relabel`` computes (how it runs is the engine's options).

    Parameters
    ----------
    teacher
        None (``auto``): the candidate with the best out-of-fold accuracy against the given
        labels, measured here: ``cnn`` (a pixel CNN, small images only),
        ``efficientnet_lite0`` (offline ImageNet weights + a ``head``) and their ensemble
        ``cnn+efficientnet_lite0`` (see :mod:`curate.pipelines.relabel.choose`). Or one of
        them by name; ``timm:<name>=<weights>`` for another backbone;
        ``classifier:timm:<name>=<weights>`` for your classifier with the manifest's classes;
        ``+`` joins an ensemble (probabilities averaged).
    target
        ``posterior`` (default): the teacher's probabilities times the noise channel
        ``P(given | true)`` estimated with cleanlab's confident joint, so the given label
        counts as evidence as far as the labels are reliable; ``teacher``: ReLabel's own
        target, the teacher alone (for a teacher much stronger than the labels).
    prior, temperature
        The posterior's prior (pseudo-rows per class whose label is right, added to the
        confident joint: a channel from few rows trusts the labels) and the teacher's
        temperature (``p ** (1 / temperature)``); both chosen on validation splits cut from
        training rows (BENCHMARKS.md, Relabel).
    head
        ``logreg`` (the map's cell logits then average exactly to the global logits) or
        ``mlp``, for backbone teachers.
    folds, seed
        Stratified, seeded K-fold: no row is labelled by a model that saw its label. 3 folds
        train each pixel CNN on two thirds of the rows: 3 networks instead of 5, on 67% of
        the rows instead of 80%, about half the time of 5 folds.
    cnn_epochs
        Training epochs of each fold's pixel CNN.
    choice_rows, choice_margin
        ``auto`` measures its candidates on a seeded sample of this many labelled rows (all
        of them when there are fewer) and takes the cheapest within ``choice_margin`` of the
        best accuracy (cheapest first: cnn, efficientnet_lite0, the ensemble).
    weak_teacher
        When the posterior estimates the teacher right on fewer rows than the given labels
        (:mod:`curate.pipelines.relabel.evidence`): ``warn`` (a :class:`WeakTeacherWarning`,
        then go on), ``error`` (stop before any row is written) or ``proceed`` (go on
        silently; the figures are still in run.json).
    top_k
        Classes kept per row (``soft_classes``/``soft_probs``) and per map cell.
    threshold
        ``labels`` holds the classes with probability at least this (always the top-1).
    image_size
        Teacher input side in pixels (the whole image, squashed); None: chosen from the
        images (the pixel CNN at their own size; a backbone at their size rounded up to 32,
        within [128, 480]: 480 is ReLabel's 15 x 15 map, for photos).
    device
        ``auto``, ``cpu``, ``cuda``.
    batch_size
        Images per teacher call.
    """

    teacher: str | None = None
    target: str = "posterior"
    prior: float = 50.0
    temperature: float = 1.0
    head: str = "logreg"
    folds: int = 3
    seed: int = 0
    cnn_epochs: int = 8
    choice_rows: int = 2000
    choice_margin: float = 0.005
    weak_teacher: str = "warn"
    top_k: int = 5
    threshold: float = 0.25
    image_size: int | None = None
    device: str = "auto"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r}: valid heads are {', '.join(HEADS)}.")
        if self.target not in TARGETS:
            raise ValueError(f"target={self.target!r}: valid targets are {', '.join(TARGETS)}.")
        if self.weak_teacher not in WEAK_TEACHER:
            raise ValueError(
                f"weak_teacher={self.weak_teacher!r}: valid values are {', '.join(WEAK_TEACHER)}."
            )
        for name in ("folds", "top_k", "batch_size", "cnn_epochs", "choice_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold!r}: must be in (0, 1].")
        if not self.prior >= 0.0:
            raise ValueError(f"prior={self.prior!r}: must be zero or positive.")
        if not self.temperature > 0.0:
            raise ValueError(f"temperature={self.temperature!r}: must be positive.")
        if not 0.0 <= self.choice_margin < 1.0:
            raise ValueError(f"choice_margin={self.choice_margin!r}: must be in [0, 1).")
        if self.image_size is not None and self.image_size < MIN_IMAGE_SIDE:
            raise ValueError(
                f"image_size={self.image_size!r}: must be at least {MIN_IMAGE_SIDE} (or None)."
            )

    @property
    def auto(self) -> bool:
        """Whether the teacher is chosen by measurement."""
        return self.teacher in (None, "auto")

    def teacher_options(self) -> dict:
        """The :class:`~curate.pipelines.teachers.TeacherConfig` fields this config sets."""
        return {
            "head": self.head, "folds": self.folds, "seed": self.seed,
            "image_size": self.image_size, "device": self.device, "batch_size": self.batch_size,
            "cnn_epochs": self.cnn_epochs,
        }  # fmt: skip
