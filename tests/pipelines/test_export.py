"""``curate export``: each output read back by the tool that owns its format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import ManifestError, OutputExistsError
from curate.manifests import Manifest, write_manifest
from curate.manifests.ingest import ingest
from curate.pipelines.export import export, file_stem, image_ext
from curate.pipelines.prune import prune
from tests.manifests.ingest_data import DIGIT_NAMES, digits, png_bytes

N = 120


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Manifest:
    """Real digits through ingest (string labels, captions, precomputed embeddings) and a
    random prune: PNG and JPEG images, one corrupt image, two rows without a label."""
    root = tmp_path_factory.mktemp("curated")
    images, digit = digits(N)
    data = [png_bytes(x, "JPEG" if i % 4 == 0 else "PNG") for i, x in enumerate(images)]
    data[5] = b"not an image at all"
    labels = [DIGIT_NAMES[y] for y in digit]
    labels[7] = labels[11] = None
    table = pa.table(
        {
            "key": [f"digits/{i:04d}.png" for i in range(N)],
            "image": pa.array(data, pa.binary()),
            "label": labels,
            "caption": [f"a handwritten {n}" if i % 3 else None for i, n in enumerate(labels)],
            "emb": pa.array(list(images.reshape(N, -1).astype(np.float32) + 1.0)),
        }
    )
    pq.write_table(table, root / "src.parquet")
    m = ingest(
        root / "src.parquet", root / "m", workers=1, embedding_column="emb",
        class_names=DIGIT_NAMES,
    )  # fmt: skip
    return prune(m, root / "pruned", keep=0.5, method="random", progress="off")


def rows_of(m: Manifest) -> list[dict]:
    return m.read().to_pylist()


def test_imagefolder_reads_back_with_torchvision(curated: Manifest, tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    out = export(curated, tmp_path / "if", format="imagefolder", progress="off")
    kept = [r for r in rows_of(curated) if r["keep"]]
    good = [r for r in kept if r["error"] is None and r["label"] is not None]
    ds = ImageFolder(str(tmp_path / "if"))
    assert len(ds) == len(good) > 0
    names = curated.class_names
    by_file = {Path(p).name: ds.classes[t] for p, t in ds.samples}
    for r in good:  # every kept row with an image sits in its class's folder, bytes as stored
        name = f"{file_stem(r['id'])}.{image_ext(r['image'])}"
        assert by_file[name] == names[r["label"]]
        assert (tmp_path / "if" / names[r["label"]] / name).read_bytes() == r["image"]
    assert {Path(p).suffix for p, _ in ds.samples} == {".png", ".jpg"}
    counts = out.run_info["counts"]
    bad = [r for r in kept if r["error"] is not None]
    unlabeled = [r for r in kept if r["error"] is None and r["label"] is None]
    assert counts["exported"] == len(good) and counts["selected"] == len(kept)
    assert counts["skipped"] == {
        k: v for k, v in (("error", len(bad)), ("no_label", len(unlabeled))) if v
    }
    assert counts["folder_order_matches_labels"] is False  # zero, one, ... is not sorted
    index = out.read().to_pylist()  # the returned manifest: where each row went
    assert len(index) == len(kept)
    assert {r["id"] for r in index if r["skip_reason"] is None} == {r["id"] for r in good}


def test_webdataset_reads_back_with_webdataset(curated: Manifest, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    out = export(curated, tmp_path / "wds", format="webdataset", shard_size=16, progress="off")
    kept = {r["id"]: r for r in rows_of(curated) if r["keep"] and r["error"] is None}
    shards = sorted((tmp_path / "wds").glob("shard-*.tar"))
    assert len(shards) == -(-len(kept) // 16) == out.run_info["counts"]["shards"]
    seen = 0
    for sample in wds.WebDataset([str(s) for s in shards], shardshuffle=False):
        meta = json.loads(sample["json"])
        row = kept[meta["id"]]
        assert sample["__key__"] == file_stem(row["id"])
        assert sample[image_ext(row["image"])] == row["image"]
        assert ("cls" in sample) == (row["label"] is not None)
        if row["label"] is not None:
            assert int(sample["cls"]) == row["label"] == meta["label"]
        assert sample.get("txt", b"").decode() == (row["text"] or "")
        assert meta["keep"] is True and "embedding" not in meta and "image" not in meta
        seen += 1
    assert seen == len(kept)
    decoded = wds.WebDataset(str(shards[0]), shardshuffle=False).decode("pil")
    assert next(iter(decoded))[image_ext(next(iter(kept.values()))["image"])].size == (8, 8)


def test_parquet_vectors_are_numbers_to_pandas_datasets_and_duckdb(
    curated: Manifest, tmp_path: Path
) -> None:
    import duckdb
    import pandas as pd

    path = tmp_path / "subset.parquet"
    out = export(curated, path, progress="off")
    kept = [r for r in rows_of(curated) if r["keep"]]
    assert out.num_rows == len(kept)  # every kept row, errors included, every column
    want = np.array([r["embedding"] for r in kept], np.float32)
    df = pd.read_parquet(path)
    assert list(df.columns) == curated.schema.names
    assert np.array_equal(np.stack(df["embedding"].to_numpy()), want)
    assert df["embedding"].iloc[0].dtype == np.float32
    got = duckdb.sql(f"SELECT embedding FROM '{path}'").fetchall()
    assert np.allclose(np.array([g[0] for g in got], np.float32), want)
    datasets = pytest.importorskip("datasets")
    hf = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert hf.features["embedding"].feature.dtype == "float32"
    assert np.allclose(np.array(hf["embedding"][:3], np.float32), want[:3])
    schema = pq.read_schema(path)
    assert json.loads(schema.metadata[b"curate.class_names"]) == DIGIT_NAMES
    assert out.run_info["counts"]["exported"] == len(kept)


def test_all_rows_where_and_a_folder_of_shards(curated: Manifest, tmp_path: Path) -> None:
    every = export(curated, tmp_path / "all.parquet", all_rows=True, progress="off")
    assert every.num_rows == N
    threes = export(
        curated, tmp_path / "threes", where="label = 3 AND text IS NOT NULL", progress="off"
    )
    rows = rows_of(curated)
    want = [r["id"] for r in rows if r["keep"] and r["label"] == 3 and r["text"] is not None]
    assert threes.read(["id"])["id"].to_pylist() == want
    assert (tmp_path / "threes" / "run.json").exists()
    assert (
        threes.run_info["counts"]["selected_by"]
        == "(keep = true) and (label = 3 AND text IS NOT NULL)"
    )


def test_existing_output_and_missing_columns_are_clear_errors(
    curated: Manifest, tmp_path: Path
) -> None:
    export(curated, tmp_path / "x.parquet", progress="off")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export(curated, tmp_path / "x.parquet", progress="off")
    assert export(curated, tmp_path / "x.parquet", overwrite=True, progress="off").num_rows
    no_images = write_manifest(pa.table({"id": ["a"], "label": [0]}), tmp_path / "n")
    with pytest.raises(ManifestError, match="no image or path column"):
        export(no_images, tmp_path / "n-if", format="webdataset")
    no_labels = write_manifest(
        pa.table({"id": ["a"], "image": [png_bytes(digits(1)[0][0])]}), tmp_path / "u"
    )
    with pytest.raises(ManifestError, match="no label column"):
        export(no_labels, tmp_path / "u-if", format="imagefolder")
    with pytest.raises(ValueError, match="valid formats are imagefolder"):
        export(curated, tmp_path / "y", format="tfrecord")
    assert not (tmp_path / "n-if").exists() and not (tmp_path / "u-if").exists()


def test_labels_without_class_names_get_padded_folders(tmp_path: Path) -> None:
    images, digit = digits(30)
    labels = (digit + 3).tolist()  # up to 12: two digits, so 03 sorts before 12
    table = pa.table({"id": [str(i) for i in range(30)], "image": [png_bytes(x) for x in images],
                      "label": labels})  # fmt: skip
    m = write_manifest(table, tmp_path / "m")
    export(m, tmp_path / "if", format="imagefolder", progress="off")
    folders = sorted(p.name for p in (tmp_path / "if").iterdir() if p.is_dir())
    assert folders == sorted({f"{y:02d}" for y in labels})


_KILL = """
import sys
from curate.pipelines.export import export
export(sys.argv[1], sys.argv[2], format="imagefolder", batch_size=8, progress="off")
"""


def test_a_killed_export_leaves_no_output_and_the_next_run_finishes(tmp_path: Path) -> None:
    images, digit = digits(1500)
    table = pa.table({"id": [str(i) for i in range(1500)], "image": [png_bytes(x) for x in images],
                      "label": digit.tolist()})  # fmt: skip
    m = write_manifest(table, tmp_path / "m")
    out, staging = tmp_path / "if", tmp_path / ".if.export-tmp"
    proc = subprocess.Popen([sys.executable, "-c", _KILL, str(m), str(out)])
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not list(staging.glob("*/*.png")):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    if proc.returncode == 0:
        pytest.skip("export finished before it could be killed")
    assert list(staging.glob("*/*.png")) and not out.exists()  # half-written, not published
    done = export(m, out, format="imagefolder", progress="off")
    assert done.run_info["counts"]["exported"] == 1500 and not staging.exists()


def test_images_referenced_by_path_are_copied_as_stored(tmp_path: Path) -> None:
    images, digit = digits(6)
    (tmp_path / "files").mkdir()
    paths = []
    for i, x in enumerate(images):
        (tmp_path / "files" / f"{i}.png").write_bytes(png_bytes(x))
        paths.append(f"files/{i}.png")  # relative to the folder holding the manifest
    paths[2] = "files/missing.png"
    table = pa.table({"id": [str(i) for i in range(6)], "path": paths, "label": digit.tolist()})
    m = write_manifest(table, tmp_path / "m.parquet")
    out = export(m, tmp_path / "if", format="imagefolder", progress="off")
    assert out.run_info["counts"]["skipped"] == {"no_image": 1}
    index = {r["id"]: r for r in out.read().to_pylist()}
    assert index["2"]["skip_reason"] == "no_image" and index["2"]["file"] is None
    got = (tmp_path / "if" / index["0"]["file"]).read_bytes()
    assert got == (tmp_path / "files" / "0.png").read_bytes()
