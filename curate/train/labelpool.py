"""LabelPooling (ReLabel): a training dataset whose target is the label map pooled over each crop.

A relabeled manifest (``curate relabel``) stores per row a ``k x g x g`` map: for every cell
of a ``g x g`` grid laid over the whole image, the teacher's top-k classes and their cell
logits (layout ``(k, y, x)``, y from the top). For a RandomResizedCrop with box
``(top, left, h, w)`` in pixels of an ``H x W`` image, the box in map coordinates is
``(x1, y1, x2, y2) = (left / W, top / H, (left + w) / W, (top + h) / H) * g`` (x first, as
``torchvision.ops.roi_align`` wants; the ReLabel reference builds ``(y1, x1, y2, x2)``, a
known trap). The pooled target is:

1. a dense ``(C, g, g)`` score map: each cell's top-k logits at their classes, and the
   cell's lowest kept logit for the classes it did not keep (an upper bound on them);
2. ``roi_align`` of the box to ``1 x 1`` with ``aligned=True`` (half-pixel centres: cell
   ``i`` spans ``[i, i + 1)`` and its value sits at ``i + 0.5``), adaptive sampling;
3. a softmax over the classes in the top-k of at least one sampled cell; classes in no
   sampled cell's top-k get no mass.

Pooling the whole image samples every cell centre once, so the target is the softmax of the
mean cell logits: for a GAP + linear teacher that is the global soft label (exact when every
class is kept, ``k = C``). A horizontal flip is applied to the crop after the box is pooled:
the box holds the same content either way, so the target does not change.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.train.losses import densify_topk, mix_with_labels

MAP_CLASSES, MAP_SCORES = "label_map_classes", "label_map_scores"
SOFT_CLASSES, SOFT_PROBS = "soft_classes", "soft_probs"


def dense_map(classes, scores, num_classes: int):
    """``(C, g, g)`` scores from a cell map's ``(k, g, g)`` classes and scores, and the
    ``(C, g, g)`` presence of each class in each cell's top-k (float 0/1)."""
    import torch

    classes = torch.as_tensor(classes).long().clamp(min=0)
    scores = torch.as_tensor(scores).float()
    k, gh, gw = classes.shape
    fill = scores.min(dim=0, keepdim=True).values.expand(num_classes, gh, gw).clone()
    dense = fill.scatter_(0, classes, scores)
    present = torch.zeros(num_classes, gh, gw).scatter_(0, classes, 1.0)
    return dense, present


def pool_map(classes, scores, box: tuple[float, float, float, float], num_classes: int):
    """The soft target ``(C,)`` of a map over ``box = (x1, y1, x2, y2)`` in map cells."""
    import torch
    from torchvision.ops import roi_align

    dense, present = dense_map(classes, scores, num_classes)
    rois = torch.tensor([[0.0, *box]], dtype=torch.float32)
    both = torch.cat([dense, present])[None]
    pooled = roi_align(
        both, rois, output_size=1, spatial_scale=1.0, sampling_ratio=-1, aligned=True
    )
    logits, mass = pooled.view(2, num_classes)
    logits = logits.masked_fill(mass <= 0, float("-inf"))
    return torch.softmax(logits, dim=0)


def crop_box(crop: tuple[int, int, int, int], height: int, width: int, grid: int):
    """A crop ``(top, left, h, w)`` in pixels as ``(x1, y1, x2, y2)`` in map cells."""
    top, left, h, w = crop
    return (left / width * grid, top / height * grid, (left + w) / width * grid,
            (top + h) / height * grid)  # fmt: skip


def random_resized_crop(
    rng: np.random.Generator, height: int, width: int, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)``: area in ``scale`` of the image, aspect ratio in ``ratio``
    (log-uniform); ten tries, then the largest centred crop of a ratio in range."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _map_shape(manifest: Manifest) -> tuple[int, int]:
    if MAP_CLASSES not in manifest.schema.names or MAP_SCORES not in manifest.schema.names:
        raise ManifestError(
            f"{manifest.path}: no label maps ('{MAP_CLASSES}', '{MAP_SCORES}'); LabelPooling "
            "needs a manifest written by `curate relabel` (or use target='global' or 'label')."
        )
    meta = manifest.schema.field(MAP_CLASSES).metadata or {}
    k, g, g2 = json.loads(meta.get(b"curate.map_shape", b"null") or "null") or (0, 0, 0)
    if not k or g != g2:
        raise ManifestError(f"{manifest.path}: '{MAP_CLASSES}' has no curate.map_shape [k, g, g].")
    return k, g


class LabelPoolingDataset:
    """A torch ``Dataset`` over a relabeled manifest: RandomResizedCrop (+ flip) and a target.

    Parameters
    ----------
    manifest
        A relabeled manifest (``image`` bytes, ``label``, the map and soft-label columns).
    size
        Side of the returned crops.
    target
        ``pooled`` (LabelPooling over the crop), ``global`` (the row's soft label, whatever the
        crop) or ``label`` (one-hot given label): the three arms of ReLabel's comparison.
    label_weight
        Mass mixed onto the given label: ``(1 - w) * target + w * one_hot(label)``.
    scale, flip
        RandomResizedCrop area range (aspect ratios 3/4 to 4/3); horizontal flip probability.
    seed
        Crops depend only on ``(seed, epoch, index)``; call :meth:`set_epoch` each epoch.
    rows
        Restrict to these row indices (e.g. a train split); None: every row with a label map.

    Notes
    -----
    Items are ``(image float (c, size, size) in [0, 1], target float (C,), label int)``:
    one channel for grayscale images, three (RGB) for any other.
    The manifest's columns are held in memory (images as encoded bytes).
    """

    def __init__(self, manifest: str | os.PathLike | Manifest, *, size: int = 224,
                 target: str = "pooled", label_weight: float = 0.0,
                 scale: tuple[float, float] = (0.08, 1.0), flip: float = 0.5,
                 seed: int = 0, rows=None) -> None:  # fmt: skip
        if target not in TARGETS:
            raise ValueError(f"target={target!r}: valid targets are {', '.join(TARGETS)}.")
        if not 0.0 <= label_weight <= 1.0:
            raise ValueError(f"label_weight={label_weight!r}: must be in [0, 1].")
        m = open_manifest(manifest)
        self.num_classes = len(m.class_names or [])
        if not self.num_classes:
            raise ManifestError(f"{m.path}: no class names in the schema metadata.")
        self.k, self.grid = _map_shape(m) if target == "pooled" else (0, 0)
        cols = self._read(m, target)
        self.size, self.target, self.label_weight = size, target, label_weight
        self.scale, self.flip, self.seed, self.epoch = scale, flip, seed, 0
        self.ratio = (3 / 4, 4 / 3)
        self.rows = self._usable_rows(cols, rows)
        self.cols = cols

    def _read(self, m: Manifest, target: str) -> dict[str, Any]:
        if S.IMAGE not in m.schema.names:
            raise InputError(f"{m.path}: LabelPooling reads images from the 'image' bytes column.")
        need = {"pooled": [MAP_CLASSES, MAP_SCORES], "global": [SOFT_CLASSES, SOFT_PROBS],
                "label": []}[target]  # fmt: skip
        missing = [c for c in need if c not in m.schema.names]
        if missing:
            raise ManifestError(f"{m.path}: no {missing} columns; run `curate relabel` first.")
        t = m.read([S.IMAGE, S.LABEL, *need])
        out = {S.IMAGE: t.column(S.IMAGE).to_pylist(), S.LABEL: t.column(S.LABEL).to_pylist()}
        for c in need:
            col = t.column(c).combine_chunks()
            width = col.type.list_size
            valid = np.asarray(col.is_valid())
            values = col.flatten().to_numpy(zero_copy_only=False)
            arr = np.zeros((len(col), width), values.dtype)
            arr[valid] = values.reshape(-1, width)
            out[c], out[f"{c}.valid"] = arr, valid
        return out

    def _usable_rows(self, cols: dict, rows) -> np.ndarray:
        n = len(cols[S.LABEL])
        ok = np.array([img is not None for img in cols[S.IMAGE]])
        for key in (MAP_CLASSES, SOFT_CLASSES):
            if f"{key}.valid" in cols:
                ok &= cols[f"{key}.valid"]
        if self.target == "label" or self.label_weight > 0:
            ok &= np.array([lab is not None for lab in cols[S.LABEL]])
        idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        return idx[ok[idx]]

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops: items depend on ``(seed, epoch, index)``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        import torch
        from PIL import Image

        row = int(self.rows[index])
        rng = np.random.default_rng([self.seed, self.epoch, row])
        with Image.open(io.BytesIO(self.cols[S.IMAGE][row])) as im:
            im = im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")
            width, height = im.size
            crop = random_resized_crop(rng, height, width, scale=self.scale, ratio=self.ratio)
            top, left, h, w = crop
            view = im.resize((self.size, self.size), Image.BILINEAR,
                             box=(left, top, left + w, top + h))  # fmt: skip
        if rng.random() < self.flip:
            view = view.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(view, dtype=np.float32) / 255.0
        image = torch.from_numpy(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy())
        target = TARGETS[self.target](self, row, crop, height, width)
        label = self.cols[S.LABEL][row]
        if self.label_weight > 0:
            target = mix_with_labels(target[None], torch.tensor([label]), self.label_weight)[0]
        return image, target, -1 if label is None else int(label)


def _pooled_target(ds: LabelPoolingDataset, row: int, crop, height: int, width: int):
    g, k = ds.grid, ds.k
    classes = ds.cols[MAP_CLASSES][row].reshape(k, g, g)
    scores = ds.cols[MAP_SCORES][row].reshape(k, g, g)
    return pool_map(classes, scores, crop_box(crop, height, width, g), ds.num_classes)


def _global_target(ds: LabelPoolingDataset, row: int, crop, height: int, width: int):
    import torch

    classes = torch.from_numpy(ds.cols[SOFT_CLASSES][row][None].astype(np.int64))
    probs = torch.from_numpy(ds.cols[SOFT_PROBS][row][None].astype(np.float32))
    return densify_topk(classes, probs, ds.num_classes)[0]


def _label_target(ds: LabelPoolingDataset, row: int, crop, height: int, width: int):
    import torch

    out = torch.zeros(ds.num_classes)
    out[ds.cols[S.LABEL][row]] = 1.0
    return out


#: Targets by name: each maps (dataset, row, crop, H, W) to a ``(C,)`` distribution.
TARGETS: dict[str, Callable] = {
    "pooled": _pooled_target,
    "global": _global_target,
    "label": _label_target,
}
