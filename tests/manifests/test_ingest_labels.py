"""String labels as users have them ("cat", "dog"): class indices on ingest, names recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.cli.app import main
from curate.errors import InputError
from curate.manifests.ingest import ingest
from tests.manifests.ingest_data import DIGIT_NAMES, digits, png_bytes

SORTED = sorted(DIGIT_NAMES)  # eight, five, four, nine, one, seven, six, three, two, zero


def digits_with_names(n: int = 60) -> tuple[pa.Table, np.ndarray]:
    """Real digits as a Parquet export would hold them: PNG bytes and the digit's name."""
    images, labels = digits(n)
    table = pa.table(
        {
            "image": pa.array([png_bytes(x) for x in images], pa.binary()),
            "label": [DIGIT_NAMES[y] for y in labels],
        }
    )
    return table, labels


def test_string_labels_become_sorted_class_indices(tmp_path: Path) -> None:
    table, digit = digits_with_names()
    pq.write_table(table, tmp_path / "x.parquet")
    m = ingest(tmp_path / "x.parquet", tmp_path / "out", workers=1)
    assert m.class_names == SORTED
    got = m.read(["label"])["label"]
    assert got.type == pa.int64()
    assert [m.class_names[i] for i in got.to_pylist()] == [DIGIT_NAMES[y] for y in digit]
    assert m.run_info["labels"] == {"from": "strings", "order": "sorted", "class_names": SORTED}


def test_explicit_class_names_set_the_order(tmp_path: Path) -> None:
    table, digit = digits_with_names()
    pq.write_table(table, tmp_path / "x.parquet")
    m = ingest(tmp_path / "x.parquet", tmp_path / "out", workers=1, class_names=DIGIT_NAMES)
    assert m.class_names == DIGIT_NAMES
    assert m.read(["label"])["label"].to_pylist() == digit.tolist()
    assert m.run_info["labels"]["order"] == "given"


def test_a_label_outside_the_given_names_names_value_row_and_fix(tmp_path: Path) -> None:
    table, digit = digits_with_names(40)
    pq.write_table(table, tmp_path / "x.parquet")
    given = [n for n in DIGIT_NAMES if n != DIGIT_NAMES[digit[7]]]
    first_missing = int(np.flatnonzero(digit == digit[7])[0])
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "x.parquet", tmp_path / "out", workers=1, class_names=given)
    msg = str(err.value)
    assert f"row {first_missing} has label {DIGIT_NAMES[digit[7]]!r}" in msg
    assert "x.parquet" in msg and "--class-names" in msg
    assert not (tmp_path / "out").exists()


def test_null_labels_stay_null_and_every_file_is_seen(tmp_path: Path) -> None:
    """A name that first occurs in the last file still gets its index (first pass over all)."""
    folder = tmp_path / "shards"
    folder.mkdir()
    common = {"url": ["u0", "u1", "u2"], "label": ["dog", None, "cat"]}
    pq.write_table(pa.table(common), folder / "part-0.parquet")
    pq.write_table(
        pa.table({"url": ["u3", "u4"], "label": ["ant", "dog"]}), folder / "part-1.parquet"
    )
    m = ingest(folder, tmp_path / "out", batch_size=2)
    assert m.class_names == ["ant", "cat", "dog"]
    assert m.read(["label"])["label"].to_pylist() == [2, None, 1, 0, 2]


def test_a_pandas_csv_export_with_categorical_labels(tmp_path: Path) -> None:
    """CSV -> pandas -> Parquet, the label a category (dictionary-encoded in Parquet)."""
    pd = pytest.importorskip("pandas")
    csv = tmp_path / "labels.csv"
    csv.write_text("url,label\nhttp://a/1.jpg,cat\nhttp://a/2.jpg,dog\nhttp://a/3.jpg,\n")
    df = pd.read_csv(csv)
    df["label"] = df["label"].astype("category")
    df.to_parquet(tmp_path / "x.parquet")
    assert pa.types.is_dictionary(pq.read_schema(tmp_path / "x.parquet").field("label").type)
    m = ingest(tmp_path / "x.parquet", tmp_path / "out")
    assert m.class_names == ["cat", "dog"]
    assert m.read(["label"])["label"].to_pylist() == [0, 1, None]


def test_labels_that_are_integer_strings_are_read_as_integers(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"url": ["a", "b", "c"], "label": ["3", "10", None]}), tmp_path / "x.parquet"
    )
    m = ingest(tmp_path / "x.parquet", tmp_path / "out")
    assert m.class_names is None
    assert m.read(["label"])["label"].to_pylist() == [3, 10, None]


def test_a_mapped_column_and_a_numpy_archive_of_names(tmp_path: Path) -> None:
    pq.write_table(pa.table({"url": ["a", "b"], "species": ["owl", "emu"]}), tmp_path / "x.parquet")
    m = ingest(tmp_path / "x.parquet", tmp_path / "out", column_map={"species": "label"})
    assert m.class_names == ["emu", "owl"] and m.read(["label"])["label"].to_pylist() == [1, 0]
    images, digit = digits(20)
    names = np.array([DIGIT_NAMES[y] for y in digit])
    np.savez(tmp_path / "d.npz", x_train=images[:15], y_train=names[:15], x_test=images[15:],
             y_test=names[15:])  # fmt: skip
    m = ingest(tmp_path / "d.npz", tmp_path / "npz", workers=1)
    assert m.class_names == sorted(set(names.tolist()))
    t = m.read(["id", "label"])
    by_id = dict(zip(t["id"].to_pylist(), t["label"].to_pylist(), strict=True))
    assert [m.class_names[by_id[f"train/{i}"]] for i in range(15)] == names[:15].tolist()


def test_a_hugging_face_string_label_column(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    images, digit = digits(12)
    ds = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": png_bytes(x), "path": None} for x in images],
            "label": [DIGIT_NAMES[y] for y in digit],
        }
    ).cast_column("image", datasets.Image())
    datasets.DatasetDict(
        {"train": ds.select(range(8)), "test": ds.select(range(8, 12))}
    ).save_to_disk(str(tmp_path / "hf"))
    m = ingest(tmp_path / "hf", tmp_path / "out", workers=1)
    assert m.class_names == sorted({DIGIT_NAMES[y] for y in digit})
    t = m.read(["label"])
    assert [m.class_names[i] for i in t["label"].to_pylist()] == [DIGIT_NAMES[y] for y in digit]


def test_the_cli_prints_the_mapping(tmp_path: Path, capsys) -> None:
    pq.write_table(
        pa.table({"url": ["a", "b", "c"], "label": ["dog", "cat", "dog"]}), tmp_path / "x.parquet"
    )
    main(["ingest", str(tmp_path / "x.parquet"), "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "label strings mapped to class indices (sorted" in out and "0=cat, 1=dog" in out
    main(
        [
            "ingest",
            str(tmp_path / "x.parquet"),
            "-o",
            str(tmp_path / "o2"),
            "--class-names",
            "dog,cat",
        ]
    )
    assert "(in the order given): 0=dog, 1=cat" in capsys.readouterr().out
