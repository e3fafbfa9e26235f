"""Teachers shared by relabel and reinforce: frozen backbones with out-of-fold heads, user
classifiers and ensembles, all offline-capable.

The public API (stable; reinforce builds on it)::

    from curate.pipelines.teachers import build_teacher, Teacher, Ensemble, fit_head

    t = build_teacher(None, "m/train", head="logreg", folds=5, seed=0, image_size=224)
    t.class_names, t.image_size, t.grid      # grid: side of the cell map (7 at 224 px)
    out = t.predict(x, folds=t.folds_for(ids))   # x: float (N, 3, H, W) RGB in [0, 1]
    out.logits                               # (N, C) float32 torch, on the teacher's device
    out.cells                                # (N, C, g, g): per-cell logits, rows top to bottom
    t.logits(x); t.cell_logits(x)            # the same, one each
    t.describe()                             # name, checkpoint sha256, classes, input size, grid
    t.save("dir")                            # teacher.json (+ heads.npz for fitted heads)

    t.oof_                                   # OutOfFold: ids, given labels, probabilities
    t = build_teacher(None, "m/all", split="train", folds=1)  # one head on every train row
    t = build_teacher("cnn", "m/small")      # a pixel CNN on small images (own size, 7x7 at 28)
    t = build_teacher("classifier:timm:resnet18=ckpt.pth", "m")   # the user's classifier
    t = build_teacher("efficientnet_lite0+classifier:timm:resnet18=ckpt.pth", "m")  # ensemble

- The teacher resizes its input itself (the whole image squashed to ``image_size``, no crop,
  so every map cell lies on the image) and normalises it; callers pass [0, 1] RGB. Without
  ``image_size`` the size comes from the images (:mod:`.sizing`).
- ``folds`` (one fold index per row, -1 for none) picks, for each row, the head that was not
  fit on it (out of fold); None or -1 averages the fold heads' logits. Teachers without
  fitted heads ignore it.
- For the logistic head the global logits are the mean of the cell logits (exactly: the
  head is affine and the cells share one normalisation), as ReLabel's GAP + linear teacher.
- :func:`fit_head` fits heads on features you already have; :func:`decode_table` turns a
  manifest batch into the float batch teachers take.
"""

from curate.pipelines.teachers.build import (
    DEFAULT_BACKBONE,
    DEFAULT_GRID,
    SmallClassWarning,
    TeacherConfig,
    build_teacher,
    decode_table,
    default_image_size,
    embed_labelled,
)
from curate.pipelines.teachers.heads import (
    HEADS,
    FoldHeads,
    Head,
    OutOfFold,
    fit_head,
    fit_one_head,
)
from curate.pipelines.teachers.models import (
    RESIZE_POLICY,
    Backbone,
    BackboneTeacher,
    ClassifierTeacher,
    Ensemble,
    Teacher,
    TeacherOutput,
)

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_GRID",
    "HEADS",
    "RESIZE_POLICY",
    "Backbone",
    "BackboneTeacher",
    "ClassifierTeacher",
    "Ensemble",
    "FoldHeads",
    "Head",
    "OutOfFold",
    "SmallClassWarning",
    "Teacher",
    "TeacherConfig",
    "TeacherOutput",
    "build_teacher",
    "decode_table",
    "default_image_size",
    "embed_labelled",
    "fit_head",
    "fit_one_head",
]
