"""Build a teacher from a spec string: decode a manifest's images, embed them, fit the heads."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.config import resolve_config
from curate.engines.progress import Heartbeat
from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.pipelines.teachers.heads import HEADS, OutOfFold, fit_head, head_probs
from curate.pipelines.teachers.models import (
    Backbone,
    BackboneTeacher,
    ClassifierTeacher,
    Ensemble,
    Teacher,
)
from curate.pipelines.teachers.sizing import (
    MIN_BACKBONE_SIDE,
    backbone_side,
    classifier_side,
    pixel_side,
    probe_images,
    size_reason,
)

#: The default teacher backbone: real ImageNet weights, offline.
DEFAULT_BACKBONE = "efficientnet_lite0"
#: Input side per backbone stride for the default grid: EfficientNet's stride is 32, so
#: 480 px gives ReLabel's 15 x 15 map.
DEFAULT_GRID = 15
BACKBONE_STRIDE = 32
#: The smallest teacher input side accepted (the pixel CNN's 2 x 2 map).
MIN_IMAGE_SIDE = 8
Log = Callable[[str], None]


class SmallClassWarning(UserWarning):
    """A class has fewer labelled rows than folds: some fold heads never saw it."""


def default_image_size(grid: int = DEFAULT_GRID) -> int:
    """The input side that gives a ``grid`` x ``grid`` map on a stride-32 backbone."""
    return grid * BACKBONE_STRIDE


def image_columns(schema: pa.Schema) -> list[str]:
    """The columns that locate a row's image, present in ``schema``."""
    cols = [c for c in (S.IMAGE, S.PATH, S.URL) if c in schema.names]
    if not cols:
        raise ManifestError(
            f"manifest has none of 'image', 'path', 'url' (columns: {schema.names}); a teacher "
            "needs images: ingest them with `curate ingest`."
        )
    return cols


def decode_table(table: pa.Table, image_size: int, *, base_dir: str | None = None):
    """Decode a batch's images to float ``(n, 3, s, s)`` in [0, 1] (whole image, squashed).

    Returns the tensor and, per row, None or the ``(kind, detail)`` of a failure (its pixels
    are zeros).
    """
    import torch

    from curate.pipelines.embed.decode import Preprocess, decode_rows

    def col(name):
        return table.column(name).to_pylist() if name in table.column_names else [None] * len(table)

    rows = list(zip(col(S.IMAGE), col(S.PATH), col(S.URL), strict=True))
    pre = Preprocess(image_size=image_size, resize_mode="squash", crop_pct=1.0)
    pixels, errors = decode_rows(rows, pre, base_dir=base_dir)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
    return x, errors


def labelled_batches(
    m: Manifest, batch_size: int, split: str | None, subset: set[str] | None = None
) -> Iterator[pa.Table]:
    """Batches of the rows with a label (in ``split``, and among the ids in ``subset``)."""
    cols = [S.ID, S.LABEL, *image_columns(m.schema)] + ([S.SPLIT] if split else [])
    for batch in m.iter_batches(cols, batch_size=batch_size):
        t = pa.Table.from_batches([batch])
        keep = np.asarray(t.column(S.LABEL).is_valid())
        if split:
            keep &= np.asarray([s == split for s in t.column(S.SPLIT).to_pylist()])
        if subset is not None:
            keep &= np.asarray([i in subset for i in t.column(S.ID).to_pylist()])
        if keep.any():
            yield t.filter(pa.array(keep))


def embed_labelled(
    m: Manifest,
    backbone: Backbone,
    *,
    batch_size: int = 64,
    split: str | None = None,
    log: Log | None = None,
    subset: set[str] | None = None,
):
    """Pooled, unit-norm backbone features of the labelled rows whose image decodes (of
    ``subset``'s ids only, when given).

    Returns ``(ids, labels, features (n, D) float32)``.
    """
    ids, labels, feats = [], [], []
    base = str(m.path.parent if m.path.is_file() else m.path)
    done, beat = 0, Heartbeat(log)
    if log:  # the phase's first line now, not a heartbeat's period after the last phase's
        log(f"  {backbone.model} features at {backbone.image_size} px: starting")
    for t in labelled_batches(m, batch_size, split, subset):
        x, errors = decode_table(t, backbone.image_size, base_dir=base)
        ok = np.array([e is None for e in errors])
        if ok.any():
            f = backbone.features(x[ok]).mean(dim=(2, 3))
            feats.append(f.cpu().numpy().astype(np.float32))
            ids.extend(np.asarray(t.column(S.ID).to_pylist(), dtype=object)[ok].tolist())
            labels.append(t.column(S.LABEL).to_numpy()[ok])
        done += t.num_rows
        beat(f"  {backbone.model} features at {backbone.image_size} px: {done:,} rows")
    if not feats:
        raise ManifestError(f"{m.path}: no labelled row with a decodable image to fit a head on.")
    return ids, np.concatenate(labels).astype(np.int64), np.concatenate(feats)


def warn_small_classes(y: np.ndarray, n_classes: int, folds: int, names) -> dict[int, int]:
    counts = np.bincount(y, minlength=n_classes)
    small = {k: int(c) for k, c in enumerate(counts) if 0 < c < folds}
    if small:
        desc = ", ".join(f"{names[k] if names else k} ({c})" for k, c in small.items())
        fewest = min(small.values())
        fix = f"lower --folds to {fewest}, " if fewest >= 2 else ""
        warnings.warn(
            f"class(es) {desc} have fewer labelled rows than folds={folds}: some fold heads "
            f"never saw them, so their rows' soft labels are unreliable; {fix}add examples, "
            "or merge the class.",
            SmallClassWarning,
            stacklevel=3,
        )
    return small


def class_count(m: Manifest) -> tuple[int, list[str] | None]:
    names = m.class_names
    if names:
        return len(names), names
    if S.LABEL not in m.schema.names:
        raise ManifestError(f"{m.path}: no class names in the schema metadata and no 'label'.")
    top = max(
        (
            b.column(0).to_numpy(zero_copy_only=False).max(initial=-1)
            for b in m.iter_batches([S.LABEL])
        ),
        default=-1,
    )
    return int(top) + 1, None


def _split_backbone(spec: str) -> tuple[str, str | None]:
    """``efficientnet_lite0`` or ``timm:<name>=<weights>`` -> (model, pretrained)."""
    model, _, weights = spec.partition("=")
    return model, weights or None


def _backbone_teacher(spec: str, m: Manifest, opts: dict) -> BackboneTeacher:
    if S.LABEL not in m.schema.names:
        raise ManifestError(
            f"{m.path}: no 'label' column, so a head cannot be fit on the backbone {spec!r}; "
            "pass a teacher that already knows the classes: --teacher "
            "classifier:timm:<name>=<weights file>."
        )
    model, weights = _split_backbone(spec)
    side = input_side("backbone", opts)
    backbone = Backbone(model, weights, image_size=side, device=opts["device"])
    n_classes, names = class_count(m)
    log = opts.get("log")
    ids, y, X = embed_labelled(m, backbone, batch_size=opts["batch_size"], split=opts.get("split"),
                               log=log, subset=opts.get("subset"))  # fmt: skip
    folds = opts["folds"]
    if folds > 1:
        warn_small_classes(y, n_classes, folds, names)
    if log:
        log(f"fitting {opts['head']} head(s) on {len(y)} rows ({X.shape[1]}-d, folds={folds})")
    heads = fit_head(
        X,
        y,
        n_classes=n_classes,
        kind=opts["head"],
        folds=folds,
        seed=opts["seed"],
        ids=ids,
        log=log,
    )
    teacher = BackboneTeacher(backbone, heads, names)
    given = bool(opts.get("image_size"))
    teacher.input_reason = size_reason("backbone", opts.get("geometry"), side, given=given)
    if folds > 1:
        teacher.oof_ = head_probs(heads, X, ids, y)
    return teacher


def _read_class_names(weights: str) -> list[str] | None:
    """Class names beside a checkpoint: ``<weights>.classes.txt``, one per line."""
    side = Path(f"{weights}.classes.txt")
    return side.read_text().splitlines() if side.is_file() else None


def _classifier_teacher(spec: str, m: Manifest, opts: dict) -> ClassifierTeacher:
    body = spec.removeprefix("classifier:")
    model, weights = _split_backbone(body)
    if not model.startswith("timm:") or not weights:
        raise InputError(
            f"teacher {spec!r}: a user classifier is classifier:timm:<name>=<weights file>."
        )
    n_classes, names = class_count(m)
    theirs = _read_class_names(weights)
    if theirs is not None and names is not None and theirs != names:
        raise InputError(
            f"teacher {spec!r} has classes {theirs} but the manifest {m.path} has {names}; "
            "relabel with a teacher trained on the manifest's classes, in the same order."
        )
    side = input_side("classifier", opts)
    teacher = ClassifierTeacher(
        model.removeprefix("timm:"),
        weights,
        num_classes=n_classes,
        image_size=side,
        device=opts["device"],
        class_names=theirs or names,
    )
    given = bool(opts.get("image_size"))
    teacher.input_reason = size_reason("classifier", opts.get("geometry"), side, given=given)
    return teacher


def input_side(kind: str, opts: dict) -> int:
    """The input side of a ``kind`` (``cnn``, ``backbone``, ``classifier``) member: the configured
    ``image_size``, else chosen from the probed images (:mod:`.sizing`)."""
    if opts.get("image_size"):
        return int(opts["image_size"])
    geometry = opts.get("geometry")
    if kind == "cnn":
        return pixel_side(geometry.side)
    side = geometry.side if geometry is not None else MIN_BACKBONE_SIDE
    return classifier_side(side) if kind == "classifier" else backbone_side(side)


def _member(spec: str, m: Manifest, opts: dict):
    if spec == "cnn":
        from curate.pipelines.teachers.pixel import pixel_teacher

        return pixel_teacher(m, opts)
    if spec.startswith("classifier:"):
        return _classifier_teacher(spec, m, opts)
    if spec == "imagenet" or spec.startswith("imagenet:"):
        from curate.pipelines.teachers.imagenet import imagenet_teacher

        return imagenet_teacher(spec, m, *class_count(m), opts)
    return _backbone_teacher(spec, m, opts)


@dataclass(frozen=True)
class TeacherConfig:
    """How a teacher is built (see :func:`build_teacher`).

    Parameters
    ----------
    head, folds, seed
        Head kind (``logreg``, ``mlp``) and its stratified, seeded K-fold; ``folds=1`` fits
        one head on every labelled row (for predicting other data).
    image_size
        Square input side (whole image, squashed); None: chosen from the images
        (:mod:`curate.pipelines.teachers.sizing`: the pixel CNN at the images' own size, a
        backbone at that size rounded up to 32, within [128, 480]).
    device
        ``auto``, ``cpu``, ``cuda``.
    batch_size
        Images per backbone call while fitting.
    split
        Fit the heads on this split's rows only (e.g. ``train``); None: every labelled row.
    cnn_epochs
        Training epochs of each fold's pixel CNN (``cnn`` teachers).
    """

    head: str = "logreg"
    folds: int = 5
    seed: int = 0
    image_size: int | None = None
    device: str = "auto"
    batch_size: int = 64
    split: str | None = None
    cnn_epochs: int = 8

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r}: valid heads are {', '.join(HEADS)}.")
        for name in ("folds", "batch_size", "cnn_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if self.image_size is not None and self.image_size < MIN_IMAGE_SIDE:
            raise ValueError(
                f"image_size={self.image_size!r}: must be at least {MIN_IMAGE_SIDE} (or None)."
            )


def build_teacher(
    spec: str | None = None,
    manifest: str | Path | Manifest | None = None,
    *,
    config: TeacherConfig | None = None,
    log: Log | None = None,
    **options,
):
    """A ready (``setup()`` done) teacher for ``manifest``'s classes.

    Parameters
    ----------
    spec
        None or ``efficientnet_lite0``: that frozen backbone plus a head fit on the
        manifest's labels; ``cnn``: a pixel CNN trained on the labels (small images,
        :mod:`.pixel`); ``timm:<name>=<weights>``: a timm backbone plus a head;
        ``classifier:timm:<name>=<weights>``: a user classifier with the manifest's classes
        (``<weights>.classes.txt`` beside it, if present, must list the same names);
        ``imagenet:efficientnet_lite0``: the offline ImageNet classifier, for a manifest of
        the 1000 ImageNet-1k classes (no head is fit); several joined by ``+``: an
        ensemble (probabilities averaged).
    manifest
        The labelled manifest the heads are fit on (and whose classes a classifier must have).
    config, **options
        A :class:`TeacherConfig`, or its fields as keywords (``head``, ``folds``, ``seed``,
        ``image_size``, ``device``, ``batch_size``, ``split``).
    log
        Progress messages.
    """
    cfg = resolve_config(TeacherConfig, config, options, step="build_teacher")
    if manifest is None:
        raise InputError("build_teacher needs the manifest whose classes the teacher predicts.")
    m = open_manifest(manifest)
    opts = {**dataclasses.asdict(cfg), "log": log}
    opts["geometry"] = probe_images(m)
    return join_members(build_members(spec, m, opts)).setup()


def build_members(spec: str | None, m: Manifest, opts: dict) -> list:
    """The fitted members of ``spec`` (``+``-joined), with ``opts`` as :func:`build_teacher`
    makes them (plus ``geometry``: the probed images, and ``subset``: ids to fit on)."""
    parts = [p.strip() for p in (spec or DEFAULT_BACKBONE).split("+") if p.strip()]
    return [_member(p, m, opts) for p in parts]


def _joined_reason(members: list) -> str | None:
    """Why the members see the input sizes they do: one reason when they agree, else each."""
    reasons = [getattr(t, "input_reason", None) for t in members]
    if all(r == reasons[0] for r in reasons):
        return reasons[0]
    return "; ".join(f"{t.name}: {r}" for t, r in zip(members, reasons, strict=True) if r)


def join_members(members: list) -> Teacher:
    """One teacher, or an :class:`Ensemble` of several with their out-of-fold probabilities
    averaged (on the rows every member has)."""
    if len(members) == 1:
        return members[0]
    teacher = Ensemble(members)
    teacher.input_reason = _joined_reason(members)
    oofs = [getattr(t, "oof_", None) for t in members]
    if all(o is not None for o in oofs):
        common = set.intersection(*(set(o.ids) for o in oofs))
        ids = [i for i in oofs[0].ids if i in common]
        splits = [f for t in members if (f := t.folds_for(ids)) is not None]
        if any(not np.array_equal(f, splits[0]) for f in splits[1:]):
            raise ValueError("ensemble members were fit on different fold splits; fit them on "
                             "the same rows with the same folds and seed.")  # fmt: skip
        parts = [o.select(ids) for o in oofs]
        probs = np.mean([p.probs for p in parts], axis=0, dtype=np.float64).astype(np.float32)
        teacher.oof_ = OutOfFold(ids, parts[0].labels, probs)
    return teacher
