"""Ingest of WebDataset tar shards laid out as img2dataset writes them."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.manifests.ingest import detect_format, ingest
from tests.manifests.ingest_data import add_tar_member, digits, digits_tar, png_bytes


def test_shards_folder_ids_text_and_json_fields(tmp_path: Path) -> None:
    d = tmp_path / "shards"
    d.mkdir()
    digits_tar(d / "00000.tar", 20)
    digits_tar(d / "00001.tar", 15, start=20)
    assert detect_format(d) == "webdataset"
    m = ingest(d, tmp_path / "out", workers=1)
    t = m.read()
    assert m.num_rows == 35
    assert t["id"].to_pylist() == [f"{i:09d}" for i in range(35)]
    assert t["text"][0].as_py().startswith("a handwritten ")
    assert t["url"][5].as_py() == "https://example.org/000000005.jpg"
    assert t["similarity"][1].as_py() == pytest.approx(0.251)
    assert t["original_width"][0].as_py() == 32 and t["width"][0].as_py() == 8  # probed size
    assert "key" not in t.column_names and "caption" not in t.column_names
    assert t["image"][0].as_py()[:2] == b"\xff\xd8"  # the JPEG as stored
    assert t["error"].null_count == 35


def test_one_tar_and_a_glob(tmp_path: Path) -> None:
    digits_tar(tmp_path / "a-0.tar", 5)
    digits_tar(tmp_path / "a-1.tar", 5, start=5)
    assert ingest(tmp_path / "a-0.tar", tmp_path / "one").num_rows == 5
    assert ingest(str(tmp_path / "a-*.tar"), tmp_path / "glob", workers=1).num_rows == 10


def test_bad_image_missing_image_and_non_utf8_caption_keep_their_rows(tmp_path: Path) -> None:
    images, _ = digits(3)
    good = png_bytes(images[0], "JPEG")
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        add_tar_member(tar, "k0.jpg", good)
        add_tar_member(tar, "k0.txt", "caf\u00e9 ok".encode())
        add_tar_member(tar, "k1.jpg", good[: len(good) // 2])
        add_tar_member(tar, "k1.txt", b"cut short")
        add_tar_member(tar, "k2.txt", b"caption without an image")
        add_tar_member(tar, "k3.jpg", good)
        add_tar_member(tar, "k3.txt", b"caf\xe9 latin-1")  # not UTF-8
        add_tar_member(tar, "k3.json", json.dumps({"url": "u3"}).encode())
    m = ingest(tmp_path / "bad.tar", tmp_path / "out", workers=1)
    rows = {r["id"]: r for r in m.read(["id", "text", "error", "image"]).to_pylist()}
    assert rows["k0"]["error"] is None and rows["k0"]["text"] == "caf\u00e9 ok"
    assert rows["k1"]["error"].startswith("truncated_image")
    assert rows["k2"]["error"].startswith("missing_image") and rows["k2"]["image"] is None
    assert rows["k3"]["text"] == "caf\ufffd latin-1"
    assert rows["k3"]["error"].startswith("caption_not_utf8: byte 3")
    assert m.run_info["counts"]["failures"] == {
        "truncated_image": 1,
        "missing_image": 1,
        "caption_not_utf8": 1,
    }


def test_duplicate_keys_across_shards_are_refused(tmp_path: Path) -> None:
    digits_tar(tmp_path / "s0.tar", 6)
    digits_tar(tmp_path / "s1.tar", 6, start=3)  # keys 3..5 again
    with pytest.raises(CurateError, match=r"3 id\(s\) occur more than once \(6 rows\)") as err:
        ingest(str(tmp_path / "s*.tar"), tmp_path / "out", workers=1)
    assert "'000000003' x2" in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cut", ["block boundary", "inside a member"])
def test_truncated_shard_keeps_what_it_could_read_and_says_so(tmp_path: Path, cut: str) -> None:
    digits_tar(tmp_path / "s.tar", 20)
    data = (tmp_path / "s.tar").read_bytes()
    size = len(data) // 2 + (0 if cut == "block boundary" else 100)
    (tmp_path / "cut.tar").write_bytes(data[:size])
    m = ingest(tmp_path / "cut.tar", tmp_path / "out", workers=1)
    assert 0 < m.num_rows < 20
    notes = m.run_info["counts"]["notes"]
    assert any(k.startswith("shard cut.tar") for k in notes), notes
