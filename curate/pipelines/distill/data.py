"""Real images for distillation: a labelled manifest decoded into one uint8 tensor per class."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest

_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F", "P")


@dataclass
class RealData:
    """Decoded real images per class, with the per-channel normalisation computed from them.

    ``images[c]`` is uint8 ``(n_c, channels, side, side)``; ``ids[c]`` their manifest ids.
    """

    images: list[np.ndarray]
    ids: list[list[str]]
    class_names: list[str]
    mean: list[float]
    std: list[float]
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.images[0].shape[1]

    @property
    def side(self) -> int:
        return self.images[0].shape[2]

    def normalise(self, pixels_uint8):
        """uint8 tensor -> float32 tensor in the normalised space (same device)."""
        import torch

        mean = torch.tensor(self.mean, device=pixels_uint8.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels_uint8.device).view(1, -1, 1, 1)
        return (pixels_uint8.float() / 255.0 - mean) / std


def _decode(data: bytes | None) -> tuple[object | None, str]:
    from PIL import Image

    if not data:
        return None, "no image bytes"
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:  # PIL raises many types for bad bytes
        return None, f"undecodable image ({type(exc).__name__})"
    return im, ""


def _rows(manifest: Manifest, split: str | None) -> tuple[list, list, list, dict]:
    """(ids, labels, image bytes) of the usable rows, and skipped-row counts by reason."""
    names = manifest.schema.names
    if S.LABEL not in names:
        raise ManifestError(
            f"{manifest.path}: no 'label' column; distillation needs labelled images (an int "
            "'label' with class names). Ingest with labels, e.g. `curate ingest DIR` of class "
            "folders or `--labels` for numpy."
        )
    if S.IMAGE not in names:
        raise ManifestError(
            f"{manifest.path}: no 'image' column; distillation reads the image bytes. "
            "Ingest the images (curate ingest) first."
        )
    use_split = split is not None and S.SPLIT in names
    cols = [S.ID, S.LABEL, S.IMAGE] + [c for c in (S.SPLIT, S.ERROR) if c in names]
    ids, labels, images, skipped = [], [], [], Counter()
    for batch in manifest.iter_batches(cols, batch_size=8192):
        d = batch.to_pydict()
        n = batch.num_rows
        for i in range(n):
            if use_split and d[S.SPLIT][i] != split:
                continue
            if d[S.LABEL][i] is None:
                skipped["no_label"] += 1
            elif S.ERROR in d and d[S.ERROR][i] is not None:
                skipped["error_row"] += 1
            else:
                ids.append(d[S.ID][i])
                labels.append(int(d[S.LABEL][i]))
                images.append(d[S.IMAGE][i])
    if use_split and not ids and not skipped:
        raise InputError(
            f"{manifest.path}: no rows with split == {split!r}; pass --split NAME "
            "(or --split '' to use every row)."
        )
    return ids, labels, images, dict(skipped)


def _target_geometry(
    sizes: Counter, modes: Counter, image_size: int | None, source: str
) -> tuple[str, int, list[str]]:
    notes = []
    mode = "RGB" if any(m not in _GRAY_MODES for m in modes) else "L"
    if mode == "RGB" and any(m in _GRAY_MODES for m in modes):
        n_gray = sum(v for m, v in modes.items() if m in _GRAY_MODES)
        notes.append(f"{n_gray} grayscale images converted to RGB (the set also has colour ones)")
    if image_size is not None:
        if len(sizes) > 1 or next(iter(sizes)) != (image_size, image_size):
            notes.append(f"images resized to {image_size}x{image_size} (found {dict(sizes)})")
        return mode, image_size, notes
    if len(sizes) > 1:
        common = ", ".join(f"{w}x{h}: {n}" for (w, h), n in sizes.most_common(5))
        raise InputError(
            f"{source}: images have {len(sizes)} different sizes ({common}); pass --image-size N "
            "to resize every image to N x N."
        )
    (w, h) = next(iter(sizes))
    if w != h:
        raise InputError(
            f"{source}: images are {w}x{h}, not square; pass --image-size N to resize them."
        )
    return mode, w, notes


def _channel_stats(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in [0, 1] over every pixel of every image (class by class)."""
    total = sum(x.shape[0] * x.shape[2] * x.shape[3] for x in images)
    s = sum(x.sum(axis=(0, 2, 3), dtype=np.float64) for x in images) / 255.0
    ss = sum((x.astype(np.float64) ** 2).sum(axis=(0, 2, 3)) for x in images) / 255.0**2
    mean = s / total
    std = np.sqrt(np.maximum(ss / total - mean**2, 0.0))
    return mean, np.where(std > 1e-8, std, 1.0)


def load_real(
    manifest: Manifest, *, split: str | None = "train", image_size: int | None = None
) -> RealData:
    """Decode a labelled manifest's images per class and compute their normalisation.

    Rows without a label or with an ``error`` are skipped (counted in ``skipped``), as are
    images that do not decode. A class with no usable image is an error naming the class.
    """
    from PIL import Image

    ids, labels, blobs, skipped = _rows(manifest, split or None)
    names = manifest.class_names or [str(v) for v in range(max(labels, default=-1) + 1)]
    decoded, sizes, modes = [], Counter(), Counter()
    for row_id, label, blob in zip(ids, labels, blobs, strict=True):
        if not 0 <= label < len(names):
            raise ManifestError(
                f"{manifest.path}: row {row_id!r} has label {label}, outside the "
                f"{len(names)} class names; fix the label or the class names."
            )
        im, why = _decode(blob)
        if im is None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        decoded.append((row_id, label, im))
        sizes[im.size] += 1
        modes[im.mode] += 1
    if not decoded:
        raise InputError(f"{manifest.path}: no decodable labelled images to distill from.")
    mode, side, notes = _target_geometry(sizes, modes, image_size, str(manifest.path))
    per_class: list[list] = [[] for _ in names]
    per_ids: list[list[str]] = [[] for _ in names]
    for row_id, label, im in decoded:
        im = im.convert(mode)
        if im.size != (side, side):
            im = im.resize((side, side), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
        per_class[label].append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        per_ids[label].append(row_id)
    empty = [names[c] for c, imgs in enumerate(per_class) if not imgs]
    if empty:
        raise InputError(
            f"{manifest.path}: class(es) {empty} have no valid image "
            f"(split {split!r}); every class needs at least one, so fix or drop those classes "
            "(e.g. `curate sql` to rewrite the labels)."
        )
    images = [np.stack(imgs) for imgs in per_class]
    mean, std = _channel_stats(images)
    return RealData(images, per_ids, list(names), mean.tolist(), std.tolist(), notes, dict(skipped))
