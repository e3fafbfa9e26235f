"""Ingest of Hugging Face datasets written with ``save_to_disk``, built here from digits."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.manifests import sql
from curate.manifests.ingest import detect_format, ingest
from tests.manifests.ingest_data import DIGIT_NAMES, digits, png_bytes

datasets = pytest.importorskip("datasets")


def _dataset(n: int, start: int = 0):
    images, labels = digits(start + n)
    return (
        datasets.Dataset.from_dict(
            {
                "img": [{"bytes": png_bytes(x), "path": None} for x in images[start:]],
                "digit": labels[start:].tolist(),
                "caption": [f"a {DIGIT_NAMES[y]}" for y in labels[start:]],
            }
        )
        .cast_column("img", datasets.Image())
        .cast_column("digit", datasets.ClassLabel(names=DIGIT_NAMES))
    )


def test_dataset_dict_gives_splits_class_names_and_image_bytes(tmp_path: Path) -> None:
    dd = datasets.DatasetDict({"train": _dataset(30), "test": _dataset(12, start=30)})
    dd.save_to_disk(str(tmp_path / "hf"))
    assert detect_format(tmp_path / "hf") == "hf"
    m = ingest(tmp_path / "hf", tmp_path / "out", workers=1)
    assert m.num_rows == 42
    assert m.class_names == DIGIT_NAMES
    t = m.read()
    assert {"id", "image", "label", "text", "split", "width", "height", "error"} <= set(
        t.column_names
    )
    assert t["image"][0].as_py()[:8] == b"\x89PNG\r\n\x1a\n"
    assert t["id"][0].as_py() == "train/0" and t["id"][30].as_py() == "test/0"
    _, labels = digits(42)
    assert t["label"].to_pylist() == labels.tolist()
    got = sql("SELECT split, count(*) n FROM m GROUP BY split ORDER BY split", m=m.path)
    assert got.to_pylist() == [{"split": "test", "n": 12}, {"split": "train", "n": 30}]
    assert t["text"][0].as_py() == f"a {DIGIT_NAMES[labels[0]]}"


def test_single_dataset_and_unlabelled_rows(tmp_path: Path) -> None:
    ds = _dataset(10)
    ds = ds.map(lambda r, i: {"digit": -1 if i == 4 else r["digit"]}, with_indices=True)
    ds.save_to_disk(str(tmp_path / "hf"))
    m = ingest(tmp_path / "hf", tmp_path / "out", workers=1, split="val")
    t = m.read(["id", "label", "split"])
    assert t["id"].to_pylist() == [str(i) for i in range(10)]
    assert t["label"][4].as_py() is None and t["label"].null_count == 1
    assert set(t["split"].to_pylist()) == {"val"}


def test_a_corrupt_image_in_a_dataset_keeps_its_row(tmp_path: Path) -> None:
    images, labels = digits(6)
    raw = [png_bytes(x) for x in images]
    raw[2] = raw[2][: len(raw[2]) // 2]
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": b, "path": None} for b in raw], "label": labels.tolist()}
    ).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "hf"))
    m = ingest(tmp_path / "hf", tmp_path / "out", workers=1)
    errors = m.read(["error"])["error"].to_pylist()
    assert errors[2].startswith("truncated_image") and errors.count(None) == 5
