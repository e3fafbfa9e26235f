"""An ImageNet classifier as a teacher, for a manifest of ImageNet-1k classes: the offline
EfficientNet-Lite0 weights include their 1000-class classifier, so no head is fit.

``--teacher imagenet:efficientnet_lite0`` (also ``imagenet`` alone). The manifest's ``label``
values must be ImageNet-1k indices in the standard order (sorted WordNet ids, as torchvision's
``ImageFolder`` over the ILSVRC-2012 train folder gives them): the teacher checks there are
1000 classes, it cannot check the names offline.
"""

from __future__ import annotations

from typing import Any

from curate.errors import InputError
from curate.manifests.io import Manifest
from curate.pipelines.teachers.models import RESIZE_POLICY, Backbone, Teacher, linear_cells

IMAGENET_CLASSES = 1000
#: ``imagenet:<model>`` names the classifiers available offline.
IMAGENET_MODELS = ("efficientnet_lite0",)


class ImageNetTeacher(Teacher):
    """EfficientNet-Lite0 with its own ImageNet classifier, applied to every feature-map cell.

    The classifier follows a global average pool, and is linear, so the mean of the cell
    logits is the model's own logits (the map needs no second pass).
    """

    def __init__(self, backbone: Backbone, class_names: list[str] | None = None):
        self.backbone, self.class_names = backbone, class_names
        self.image_size = backbone.image_size
        self.name = f"imagenet:{backbone.model}"
        self.grid = None

    def setup(self) -> ImageNetTeacher:
        if self.grid is None:
            self.grid = self.backbone.grid()
        return self

    def _predict(self, images, *, folds, cells):
        fmap = self.backbone.raw_features(images)
        return linear_cells(fmap, self.backbone.encoder.model._fc, cells=cells)

    def describe(self) -> dict[str, Any]:
        self.setup()
        return {
            "name": self.name,
            **self.backbone.describe(),
            "head": "imagenet-1k classifier (the checkpoint's own)",
            "classes": self.class_names or f"ImageNet-1k ({IMAGENET_CLASSES}, standard order)",
            "input_size": self.image_size,
            "grid": self.grid,
            "resize": RESIZE_POLICY,
        }


def imagenet_teacher(
    spec: str, m: Manifest, n_classes: int, names: list[str] | None, opts: dict
) -> ImageNetTeacher:
    """``imagenet[:<model>]`` for manifest ``m`` (which must have the 1000 ImageNet classes)."""
    model = spec.partition(":")[2] or IMAGENET_MODELS[0]
    if model not in IMAGENET_MODELS:
        raise InputError(
            f"teacher {spec!r}: the ImageNet classifiers available offline are "
            f"{', '.join('imagenet:' + x for x in IMAGENET_MODELS)}."
        )
    if n_classes != IMAGENET_CLASSES:
        shown = f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
        raise InputError(
            f"teacher {spec!r} predicts the {IMAGENET_CLASSES} ImageNet-1k classes but the "
            f"manifest {m.path} has {n_classes} classes{shown}; use it only on a manifest "
            "labelled with ImageNet-1k indices, or let the default teacher fit a head on "
            "your classes (no --teacher)."
        )
    from curate.pipelines.teachers.build import input_side
    from curate.pipelines.teachers.sizing import size_reason

    side = input_side("backbone", opts)
    backbone = Backbone(model, None, image_size=side, device=opts["device"])
    teacher = ImageNetTeacher(backbone, names)
    given = bool(opts.get("image_size"))
    teacher.input_reason = size_reason("backbone", opts.get("geometry"), side, given=given)
    return teacher
