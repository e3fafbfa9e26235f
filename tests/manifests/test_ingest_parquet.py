"""Ingest of Parquet: LAION-style metadata, --map, embeddings, the shipped demo data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.demo import DEMO_DATA
from curate.errors import CurateError, InputError, ManifestError
from curate.manifests import sql
from curate.manifests.ingest import detect_format, ingest
from curate.manifests.schema import embedding_info
from tests.manifests.ingest_data import laion_table, write_laion


def test_laion_columns_are_normalised(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "laion.parquet", 50)
    assert detect_format(src) == "parquet"
    m = ingest(src, tmp_path / "out")
    t = m.read()
    assert t.column_names[:4] == ["id", "url", "text", "width"]
    assert t["id"].to_pylist()[:2] == ["1000", "1001"]  # SAMPLE_ID, as a string
    assert t["text"][3].as_py() == "photo number 3"
    assert "similarity" in t.column_names and t["error"].null_count == 50
    assert m.run_info["config"]["format"] == "parquet"


def test_map_renames_and_rows_are_numbered_without_an_id(tmp_path: Path) -> None:
    t = pa.table({"image_url": ["http://a/1.jpg", "http://a/2.jpg"], "alt": ["x", "y"]})
    pq.write_table(t, tmp_path / "in.parquet")
    m = ingest(
        tmp_path / "in.parquet", tmp_path / "out", column_map={"image_url": "url", "alt": "text"}
    )
    got = m.read(["id", "url", "text"]).to_pylist()
    assert got == [
        {"id": "0", "url": "http://a/1.jpg", "text": "x"},
        {"id": "1", "url": "http://a/2.jpg", "text": "y"},
    ]


def test_missing_required_column_names_it_and_suggests_map(tmp_path: Path) -> None:
    pq.write_table(pa.table({"uid": ["a", "b"], "image_url": ["u1", "u2"]}), tmp_path / "x.parquet")
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "x.parquet", tmp_path / "out")
    msg = str(err.value)
    assert "x.parquet" in msg and "missing required column" in msg and "'url'" in msg
    assert "--map image_url=url" in msg
    assert not (tmp_path / "out").exists()


def test_mistyped_known_column_is_an_error_naming_it(tmp_path: Path) -> None:
    # (string labels are class names since issue #21: a float label is still an error)
    pq.write_table(pa.table({"url": ["u"], "label": [1.5]}), tmp_path / "x.parquet")
    with pytest.raises(ManifestError, match="'label' must be integer"):
        ingest(tmp_path / "x.parquet", tmp_path / "out")


def test_directory_of_parquet_files_keeps_order_and_numbering(tmp_path: Path) -> None:
    d = tmp_path / "shards"
    d.mkdir()
    full = laion_table(30).drop_columns(["SAMPLE_ID"])
    pq.write_table(full.slice(0, 10), d / "part-0.parquet")
    pq.write_table(full.slice(10, 20), d / "part-1.parquet")
    m = ingest(d, tmp_path / "out", batch_size=7)
    t = m.read(["id", "url"])
    assert t["id"].to_pylist() == [str(i) for i in range(30)]
    assert t["url"].to_pylist() == full["URL"].to_pylist()


def test_npy_embeddings_are_normalised_and_queryable(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "laion.parquet", 40)
    emb = np.random.default_rng(1).normal(size=(40, 12)).astype(np.float32) * 3
    np.save(tmp_path / "emb.npy", emb)
    m = ingest(src, tmp_path / "out", embeddings=tmp_path / "emb.npy", batch_size=16)
    field = m.schema.field("embedding")
    assert pa.types.is_fixed_size_list(field.type) and field.type.list_size == 12
    assert embedding_info(field)["normalized"] == "true"
    stored = np.stack(m.read(["embedding"])["embedding"].to_numpy(zero_copy_only=False))
    assert np.allclose(np.linalg.norm(stored, axis=1), 1, atol=1e-5)
    assert np.allclose(stored, emb / np.linalg.norm(emb, axis=1, keepdims=True), atol=1e-5)
    q = sql("SELECT max(array_cosine_similarity(embedding, embedding)) AS s FROM m", m=m.path)
    assert q["s"][0].as_py() == pytest.approx(1.0, abs=1e-4)


def test_npy_embeddings_with_the_wrong_row_count_fail_before_writing(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "laion.parquet", 40)
    np.save(tmp_path / "emb.npy", np.ones((39, 4), np.float32))
    with pytest.raises(InputError, match="39 embedding rows but the input has 40"):
        ingest(src, tmp_path / "out", embeddings=tmp_path / "emb.npy")
    assert not (tmp_path / "out").exists()


def test_list_column_embeddings_become_a_fixed_size_embedding(tmp_path: Path) -> None:
    t = laion_table(10).append_column(
        "clip_b32", pa.array([[float(i), 1.0, 0.0] for i in range(10)], pa.list_(pa.float32()))
    )
    pq.write_table(t, tmp_path / "in.parquet")
    m = ingest(tmp_path / "in.parquet", tmp_path / "out", embedding_column="clip_b32")
    assert "clip_b32" not in m.schema.names
    vec = m.read(["embedding"])["embedding"][0].as_py()
    assert vec == pytest.approx([0.0, 1.0, 0.0])


def test_ragged_list_embeddings_name_the_row(tmp_path: Path) -> None:
    t = pa.table({"url": ["a", "b", "c"], "embedding": [[1.0, 0.0], [0.0, 1.0], [1.0]]})
    pq.write_table(t, tmp_path / "in.parquet")
    with pytest.raises(InputError, match="row 2: column 'embedding' has a vector of length 1"):
        ingest(tmp_path / "in.parquet", tmp_path / "out")


def test_the_demo_data_ingests_with_class_names_and_sizes(tmp_path: Path) -> None:
    m = ingest(DEMO_DATA, tmp_path / "demo", workers=2)
    assert m.num_rows == 10_000
    assert m.class_names[0] == "T-shirt/top" and len(m.class_names) == 10
    got = sql(
        "SELECT count(*) AS n, min(width) AS w, max(height) AS h, count(error) AS e, "
        "count(DISTINCT split) AS s FROM m",
        m=m.path,
    ).to_pylist()[0]
    assert got == {"n": 10_000, "w": 28, "h": 28, "e": 0, "s": 1}


def test_a_bad_image_in_a_parquet_image_column_keeps_its_row(tmp_path: Path) -> None:
    src = pq.read_table(DEMO_DATA).slice(0, 20)
    images = src["image"].to_pylist()
    images[3] = images[3][: len(images[3]) // 2]
    images[5] = None
    src = src.set_column(1, "image", pa.array(images, pa.binary()))
    pq.write_table(src, tmp_path / "in.parquet")
    m = ingest(tmp_path / "in.parquet", tmp_path / "out", workers=1)
    errors = m.read(["error"])["error"].to_pylist()
    assert errors[3].startswith("truncated_image") and errors[5].startswith("missing_image")
    assert m.run_info["counts"]["failures"] == {"truncated_image": 1, "missing_image": 1}


def test_hf_style_image_struct_and_class_label_metadata(tmp_path: Path) -> None:
    demo = pq.read_table(DEMO_DATA).slice(0, 8)
    struct = pa.StructArray.from_arrays(
        [demo["image"].combine_chunks(), pa.array([f"{i}.png" for i in range(8)])],
        ["bytes", "path"],
    )
    meta = {b"huggingface": b'{"info": {"features": {"label": {"names": ["a","b","c","d","e",'
            b'"f","g","h","i","j"], "_type": "ClassLabel"}}}}'}  # fmt: skip
    t = pa.table({"image": struct, "label": demo["label"]}).replace_schema_metadata(meta)
    pq.write_table(t, tmp_path / "hf.parquet")
    m = ingest(tmp_path / "hf.parquet", tmp_path / "out", workers=1)
    assert m.class_names == list("abcdefghij")
    t = m.read()
    assert pa.types.is_binary(t.schema.field("image").type) and t["path"][1].as_py() == "1.png"
    assert t["width"][0].as_py() == 28


def test_labels_outside_the_class_names_are_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"url": ["a", "b"], "label": [0, 7]}), tmp_path / "x.parquet")
    with pytest.raises(CurateError, match="row 1 has label 7"):
        ingest(tmp_path / "x.parquet", tmp_path / "out", class_names=["cat", "dog"])
