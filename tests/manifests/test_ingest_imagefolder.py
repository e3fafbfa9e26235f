"""Ingest of ImageFolder trees built from sklearn's digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curate.manifests import sql
from curate.manifests.ingest import detect_format, ingest
from tests.manifests.ingest_data import DIGIT_NAMES, digits, digits_folder


def test_digits_folder_labels_sizes_and_class_names(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "digits", 60)
    assert detect_format(src) == "imagefolder"
    m = ingest(src, tmp_path / "out", workers=1)
    t = m.read()
    assert m.num_rows == 60
    assert m.class_names == sorted(DIGIT_NAMES)
    _, labels = digits(60)
    # labels index the sorted folder names: check each row against the digit it came from
    by_id = dict(zip(t["id"].to_pylist(), t["label"].to_pylist(), strict=True))
    for i, y in enumerate(labels):
        name = DIGIT_NAMES[y]
        assert m.class_names[by_id[f"{name}/{i:04d}.png"]] == name
    assert set(t["width"].to_pylist()) == {8} and set(t["height"].to_pylist()) == {8}
    assert t["error"].null_count == 60
    assert Path(t["path"][0].as_py()).read_bytes() == t["image"][0].as_py()  # original bytes
    counts = m.run_info["counts"]
    assert counts["rows"] == 60 and counts["error_rows"] == 0 and counts["failures"] == {}


def test_ids_are_stable_relative_paths_and_order_is_deterministic(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 30)
    a = ingest(src, tmp_path / "a", workers=1).read(["id"])["id"].to_pylist()
    b = ingest(src, tmp_path / "b.parquet", workers=2).read(["id"])["id"].to_pylist()
    assert a == b
    assert all(i.count("/") == 1 and i.endswith(".png") for i in a)


def test_corrupt_truncated_and_non_image_files_keep_their_rows(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 40, fmt="jpg")
    good = (src / "zero" / "0000.jpg").read_bytes()
    (src / "zero" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "one" / "notes.jpg").write_text("this is not an image")
    (src / "two" / "empty.png").write_bytes(b"")
    m = ingest(src, tmp_path / "out", workers=2)
    t = m.read(["id", "image", "error", "width"]).to_pylist()
    rows = {r["id"]: r for r in t}
    assert len(rows) == 43
    assert rows["zero/truncated.jpg"]["error"].startswith("truncated_image:")
    assert rows["zero/truncated.jpg"]["image"] is not None  # the bytes are kept for inspection
    assert rows["one/notes.jpg"]["error"].startswith("not_an_image:")
    assert rows["two/empty.png"]["error"].startswith("empty_file:")
    assert rows["zero/0000.jpg"]["error"] is None and rows["zero/0000.jpg"]["width"] == 8
    failures = m.run_info["counts"]["failures"]
    assert failures == {"truncated_image": 1, "not_an_image": 1, "empty_file": 1}
    assert m.run_info["counts"]["error_rows"] == 3


def test_split_folders_give_a_split_column(tmp_path: Path) -> None:
    digits_folder(tmp_path / "tree" / "train", 30)
    digits_folder(tmp_path / "tree" / "val", 12)
    m = ingest(tmp_path / "tree", tmp_path / "out", workers=1)
    got = sql("SELECT split, count(*) AS n FROM m GROUP BY split ORDER BY split", m=m.path)
    assert got.to_pylist() == [{"split": "train", "n": 30}, {"split": "val", "n": 12}]
    assert m.class_names == sorted(DIGIT_NAMES)


def test_files_outside_class_folders_are_counted_not_ingested(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 20)
    (src / "README.txt").write_text("about this data")
    m = ingest(src, tmp_path / "out", workers=1, split="train")
    assert m.num_rows == 20
    assert set(m.read(["split"])["split"].to_pylist()) == {"train"}
    assert m.run_info["counts"]["notes"] == {"files outside class folders (skipped)": 1}


def test_worker_count_does_not_change_the_result(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 50)
    one = ingest(src, tmp_path / "w1", workers=1).read()
    two = ingest(src, tmp_path / "w2", workers=2).read()
    assert one.drop_columns(["path"]).equals(two.drop_columns(["path"]))
    assert np.array_equal(one["label"].to_numpy(), two["label"].to_numpy())


@pytest.mark.parametrize("verify", [False])
def test_verify_images_off_reads_bytes_without_decoding(tmp_path: Path, verify: bool) -> None:
    src = digits_folder(tmp_path / "d", 10)
    t = ingest(src, tmp_path / "out", workers=1, verify_images=verify).read()
    assert t["width"].null_count == 10 and t["image"].null_count == 0
