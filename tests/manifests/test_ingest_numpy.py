"""Ingest of numpy arrays (MNIST-like): .npz archives and .npy pairs of digits."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.errors import InputError
from curate.manifests.ingest import detect_format, ingest
from tests.manifests.ingest_data import DIGIT_NAMES, digits


def test_npz_images_and_labels_become_png_rows(tmp_path: Path) -> None:
    images, labels = digits(50)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    assert detect_format(tmp_path / "d.npz") == "numpy"
    m = ingest(tmp_path / "d.npz", tmp_path / "out", workers=2, class_names=DIGIT_NAMES)
    t = m.read()
    assert m.num_rows == 50 and m.class_names == DIGIT_NAMES
    assert t["label"].to_pylist() == labels.tolist()
    decoded = np.asarray(Image.open(io.BytesIO(t["image"][7].as_py())))
    assert np.array_equal(decoded, images[7])  # PNG is lossless
    assert t["id"][7].as_py() == "7" and t["width"][0].as_py() == 8


def test_keras_style_npz_gives_splits(tmp_path: Path) -> None:
    images, labels = digits(40)
    rgb = np.repeat(images[..., None], 3, axis=-1)
    np.savez(tmp_path / "mnist.npz", x_train=rgb[:30], y_train=labels[:30],
             x_test=rgb[30:], y_test=labels[30:])  # fmt: skip
    t = ingest(tmp_path / "mnist.npz", tmp_path / "out", workers=1).read()
    assert sorted(set(t["split"].to_pylist())) == ["test", "train"]
    assert t["id"][0].as_py() == "test/0" and t.num_rows == 40
    assert Image.open(io.BytesIO(t["image"][0].as_py())).mode == "RGB"


def test_npy_pair_with_labels_option_and_class_names_file(tmp_path: Path) -> None:
    images, labels = digits(20)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", labels)
    (tmp_path / "names.txt").write_text("\n".join(DIGIT_NAMES) + "\n")
    from curate.manifests.ingest.arrays import read_class_names

    names = read_class_names(str(tmp_path / "names.txt"))
    m = ingest(tmp_path / "x.npy", tmp_path / "out", labels=tmp_path / "y.npy",
               class_names=names, split="train", workers=1)  # fmt: skip
    assert m.class_names == DIGIT_NAMES and m.num_rows == 20
    assert m.read(["id"])["id"][3].as_py() == "train/3"


def test_float_images_and_unknown_keys_get_a_clear_error(tmp_path: Path) -> None:
    images, labels = digits(5)
    np.savez(tmp_path / "f.npz", images=images / 255.0, labels=labels)
    with pytest.raises(InputError, match="images must be uint8"):
        ingest(tmp_path / "f.npz", tmp_path / "out")
    np.savez(tmp_path / "k.npz", pixels=images, targets=labels)
    with pytest.raises(InputError, match="--map pixels=images"):
        ingest(tmp_path / "k.npz", tmp_path / "out")
    m = ingest(tmp_path / "k.npz", tmp_path / "out", column_map={"pixels": "images"}, workers=1)
    assert m.read(["label"])["label"].to_pylist() == labels.tolist()
