"""LabelPooling: the crop box pooled from the map in the right axis order, flips, whole-image
pooling equal to the global soft label, and the three targets of ReLabel's comparison."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from curate.errors import ManifestError
from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names
from curate.train.labelpool import (
    LabelPoolingDataset,
    crop_box,
    pool_map,
    random_resized_crop,
)

A, B, C = 1, 3, 5  # classes


def halves_map(g: int = 4, k: int = 2):
    """Left half (x < g/2) class A, right half class B; class C second everywhere."""
    classes = np.full((k, g, g), C, np.int16)
    scores = np.full((k, g, g), 1.0, np.float32)
    classes[0, :, : g // 2], classes[0, :, g // 2 :] = A, B
    scores[0] = 5.0
    return classes, scores


def test_a_box_on_the_left_gives_the_left_class():
    classes, scores = halves_map()
    left = pool_map(classes, scores, (0.0, 0.0, 2.0, 4.0), C + 1)  # x1, y1, x2, y2
    right = pool_map(classes, scores, (2.0, 0.0, 4.0, 4.0), C + 1)
    top = pool_map(classes, scores, (0.0, 0.0, 4.0, 2.0), C + 1)  # what (y, x) order would pool
    assert left.argmax() == A and left[B] == 0 and left[A] > 0.9
    assert right.argmax() == B and right[A] == 0
    assert abs(float(top[A] - top[B])) < 1e-6  # the top half holds both classes equally


def test_crop_box_maps_pixels_x_first():
    # the left half of a 40 (high) x 80 (wide) image, on a 4 x 4 map
    assert crop_box((0, 0, 40, 40), 40, 80, 4) == (0.0, 0.0, 2.0, 4.0)
    assert crop_box((10, 40, 20, 40), 40, 80, 4) == (2.0, 1.0, 4.0, 3.0)


def test_classes_in_no_cell_get_no_mass():
    classes, scores = halves_map()
    target = pool_map(classes, scores, (0.0, 0.0, 4.0, 4.0), 8)
    assert set(torch.nonzero(target).flatten().tolist()) == {A, B, C}
    assert abs(float(target.sum()) - 1.0) < 1e-6


def test_whole_image_pooling_is_the_softmax_of_the_mean_cell_logits():
    rng = np.random.default_rng(0)
    n_classes, g = 6, 3
    logits = rng.normal(size=(n_classes, g, g)).astype(np.float32)
    classes = np.argsort(-logits, axis=0)  # every class kept (k = C): exact
    scores = np.take_along_axis(logits, classes, axis=0)
    target = pool_map(classes, scores, (0.0, 0.0, g, g), n_classes)
    want = torch.softmax(torch.from_numpy(logits).mean(dim=(1, 2)), dim=0)
    assert torch.allclose(target, want, atol=1e-6)


def test_random_resized_crop_is_seeded_and_inside_the_image():
    crops = [random_resized_crop(np.random.default_rng(s), 28, 40) for s in range(200)]
    assert crops[:5] == [random_resized_crop(np.random.default_rng(s), 28, 40) for s in range(5)]
    for top, left, h, w in crops:
        assert top >= 0 and left >= 0 and top + h <= 28 and left + w <= 40 and h > 0 and w > 0


def _relabeled(tmp_path, *, maps: bool = True):
    """Two-row relabeled manifest: an image whose left half is dark, right half bright."""
    arr = np.zeros((16, 16), np.uint8)
    arr[:, 8:] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    classes, scores = halves_map()
    cols = {
        "id": ["a", "b"],
        "image": pa.array([buf.getvalue()] * 2, pa.binary()),
        "label": pa.array([A, B], pa.int64()),
        "soft_classes": pa.array([[A, B], [B, A]], pa.list_(pa.int16(), 2)),
        "soft_probs": pa.array([[0.75, 0.25], [0.5, 0.5]], pa.list_(pa.float16(), 2)),
    }
    table = pa.table(cols)
    if maps:
        meta = {b"curate.map_shape": json.dumps([2, 4, 4]).encode()}
        flat_c = pa.array([classes.ravel().tolist()] * 2, pa.list_(pa.int16(), 32))
        flat_s = pa.array([scores.ravel().tolist()] * 2, pa.list_(pa.float16(), 32))
        table = table.append_column(
            pa.field("label_map_classes", flat_c.type, metadata=meta), flat_c
        )
        table = table.append_column(
            pa.field("label_map_scores", flat_s.type, metadata=meta), flat_s
        )
    table = table.replace_schema_metadata(with_class_names(table.schema, list("abcdef")).metadata)
    return write_manifest(table, tmp_path / ("m" if maps else "nomaps"))


def test_dataset_targets_follow_the_crop_and_ignore_the_flip(tmp_path):
    m = _relabeled(tmp_path)
    kw = {"size": 8, "scale": (0.1, 0.3), "seed": 3}
    plain = LabelPoolingDataset(m, flip=0.0, **kw)
    flipped = LabelPoolingDataset(m, flip=1.0, **kw)
    agree = 0
    for epoch in range(20):
        plain.set_epoch(epoch)
        flipped.set_epoch(epoch)
        img, target, label = plain[0]
        img_f, target_f, _ = flipped[0]
        assert img.shape == (1, 8, 8) and label == A
        assert torch.allclose(target, target_f)  # same box, same target
        assert torch.allclose(img_f, img.flip(-1))  # only the pixels are mirrored
        # a crop that is mostly dark (left) is labelled mostly A, bright (right) mostly B
        agree += int((img.mean() < 0.5) == (target[A] > target[B]))
    assert agree >= 18


def test_global_and_label_targets_and_mixing(tmp_path):
    m = _relabeled(tmp_path)
    _, glob, _ = LabelPoolingDataset(m, target="global", size=8)[0]
    assert torch.allclose(glob[[A, B]], torch.tensor([0.75, 0.25]), atol=1e-3)
    _, hard, _ = LabelPoolingDataset(m, target="label", size=8)[1]
    assert hard[B] == 1 and hard.sum() == 1
    _, mixed, _ = LabelPoolingDataset(m, target="global", label_weight=0.5, size=8)[1]
    assert torch.allclose(mixed[[A, B]], torch.tensor([0.25, 0.75]), atol=1e-3)


def test_a_manifest_without_maps_is_a_clear_error(tmp_path):
    m = _relabeled(tmp_path, maps=False)
    with pytest.raises(ManifestError, match="no label maps.*curate relabel"):
        LabelPoolingDataset(m)
    assert len(LabelPoolingDataset(m, target="global")) == 2


def test_global_target_without_soft_labels_says_to_relabel(tmp_path):
    t = pa.table({"id": ["a"], "image": pa.array([b"x"], pa.binary()), "label": [0]})
    t = t.replace_schema_metadata(with_class_names(t.schema, ["a", "b"]).metadata)
    m = write_manifest(t, tmp_path / "plain")
    with pytest.raises(ManifestError, match="soft_classes.*run `curate relabel` first"):
        LabelPoolingDataset(m, target="global")
    with pytest.raises(ValueError, match="valid targets are pooled, global, label"):
        LabelPoolingDataset(m, target="crop")
