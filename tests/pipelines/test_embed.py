"""The embed step end to end on CPU with a tiny random open_clip model (plumbing)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError, OutputExistsError
from curate.manifests import schema as S
from curate.pipelines.embed import check_same_embedding_model, embed, embedding_model
from tests.pipelines import _embed_data as D


@pytest.fixture
def tiny(tmp_path):
    return D.tiny_clip_config(tmp_path)


@pytest.fixture
def src(tmp_path):
    images = [D.jpeg(48 + i, 64, seed=i) if i % 2 else D.png(40, 40 + i, seed=i) for i in range(12)]
    texts = [f"a photo of thing {i}" for i in range(11)] + [None]
    return D.write_images(tmp_path / "in", images, text=texts, label=list(range(12)))


def _vectors(col: pa.ChunkedArray) -> np.ndarray:
    return np.array([v if v is not None else [np.nan] for v in col.to_pylist()], dtype=np.float32)


def test_adds_normalised_embeddings_text_and_clip_score(tmp_path, src, tiny):
    out = embed(src, tmp_path / "out", model=tiny, batch_size=5, shard_rows=4, progress=False)
    t = out.read()
    assert t.column_names == [
        "id",
        "image",
        "text",
        "label",
        "error",
        "embedding",
        "text_embedding",
        "clip_score",
    ]
    assert t.column("id").to_pylist() == [f"r{i:04d}" for i in range(12)]  # order kept
    field = out.schema.field("embedding")
    assert field.type == pa.list_(pa.float16(), 32)
    info = S.embedding_info(field)
    assert info["model"] == "tiny-clip" and info["pretrained"] == "random(seed=0)"
    assert info["dim"] == "32" and '"image_size":32' in info["preprocess"]
    img, txt = _vectors(t.column("embedding")), _vectors(t.column("text_embedding")[:11])
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=2e-3)
    score = np.array(t.column("clip_score").to_pylist()[:11], dtype=np.float32)
    np.testing.assert_allclose(score, (img[:11] * txt).sum(1), atol=3e-3)
    assert t.column("clip_score")[11].as_py() is None  # no text, no score
    assert len(out.files) == 3 and out.run_info["counts"]["text_embedded"] == 11


def test_float32_and_no_text(tmp_path, src, tiny):
    out = embed(src, tmp_path / "o", model=tiny, dtype="float32", text=False, progress=False)
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    assert "text_embedding" not in out.schema.names and "clip_score" not in out.schema.names


def test_same_input_same_embeddings_whatever_the_batching(tmp_path, src, tiny):
    a = embed(src, tmp_path / "a", model=tiny, batch_size=12, workers=0, progress=False)
    b = embed(src, tmp_path / "b", model=tiny, batch_size=3, workers=2, progress=False)
    np.testing.assert_allclose(
        _vectors(a.read().column("embedding")), _vectors(b.read().column("embedding")), atol=2e-3
    )


def test_existing_output_refused_unless_overwrite(tmp_path, src, tiny):
    embed(src, tmp_path / "o", model=tiny, progress=False)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        embed(src, tmp_path / "o", model=tiny, progress=False)
    embed(src, tmp_path / "o", model=tiny, overwrite=True, dtype="float32", progress=False)


def test_paths_urls_and_existing_errors(tmp_path, tiny):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(D.png())
    paths = [str(tmp_path / "img" / "a.png"), "img/a.png", None]
    src = D.write_images(
        tmp_path / "in",
        [None, None, None],
        path=paths,
        url=[None, None, "http://x/y.jpg"],
        error=[None, "ingest: something", "download: 404"],
    )
    t = embed(src, tmp_path / "o", model=tiny, progress=False).read()
    assert t.column("embedding").null_count == 1
    errs = t.column("error").to_pylist()
    assert errs[0] is None and errs[1] == "ingest: something"
    assert errs[2].startswith("download: 404; embed: not_downloaded:")


def test_reembedding_replaces_the_columns(tmp_path, src, tiny):
    first = embed(src, tmp_path / "a", model=tiny, progress=False)
    again = embed(first.path, tmp_path / "b", model=tiny, text=False, progress=False)
    assert again.schema.names.count("embedding") == 1
    assert "text_embedding" not in again.schema.names


def test_bad_options_name_the_fix(tmp_path, src, tiny):
    with pytest.raises(ValueError, match="dtype='float8'.*float16, float32"):
        embed(src, tmp_path / "o", model=tiny, dtype="float8")
    with pytest.raises(TypeError, match="unknown option.*batchsize"):
        embed(src, tmp_path / "o", model=tiny, batchsize=3)
    with pytest.raises(InputError, match="not an open_clip architecture.*curate models"):
        embed(src, tmp_path / "o", model="ViT-Nope-1", progress=False)
    no_images = tmp_path / "ids.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"]}), no_images)
    with pytest.raises(ManifestError, match="no image source"):
        embed(no_images, tmp_path / "o2", model=tiny)


def test_check_same_embedding_model(tmp_path, src, tiny):
    a = embed(src, tmp_path / "a", model=tiny, text=False, progress=False)
    b = embed(src, tmp_path / "b", model=tiny, text=False, dtype="float32", progress=False)
    fa, fb = a.schema.field("embedding"), b.schema.field("embedding")
    assert check_same_embedding_model(fa, fb)["model"] == "tiny-clip"
    other = S.embedding_field("embedding", 32, model="ViT-B-32", pretrained="openai")
    with pytest.raises(ManifestError, match="different models.*model=tiny-clip.*ViT-B-32"):
        check_same_embedding_model(fa, other, sources=["a", "b"])
    bare = S.embedding_field("embedding", 32)
    with pytest.raises(ManifestError, match="no model metadata"):
        check_same_embedding_model(fa, bare)
    assert check_same_embedding_model(fa, bare, allow_unknown=True)
    with pytest.raises(ManifestError, match="dim differs"):
        check_same_embedding_model(bare, S.embedding_field("embedding", 16))
    assert embedding_model(fa)["dim"] == "32"
