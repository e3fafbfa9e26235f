"""``curate.distill``: a small real manifest condensed by DM and DataDAM, as a user sees it."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

import curate
from curate.pipelines.distill import (
    METHODS,
    DistillWarning,
    flip_is_unsafe,
    read_pixels,
    to_uint8,
)
from tests.pipelines._distill_data import FAST, digits_table, fashion_table, one_thread, write  # noqa: F401


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    return write(fashion_table(3, 30), tmp_path_factory.mktemp("d") / "fashion.parquet")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_distill_writes_a_viewable_exact_synthetic_manifest(tmp_path, fashion, method):
    m = curate.distill(
        fashion, tmp_path / "syn", method=method, ipc=2, iterations=4, lr=1.0, **FAST
    )
    t = m.read()
    assert t.num_rows == 6 and m.class_names == ["T-shirt/top", "Trouser", "Pullover"]
    assert t.column("label").to_pylist() == [0, 0, 1, 1, 2, 2]
    pixels, labels, norm = read_pixels(m)
    assert pixels.shape == (6, 1, 28, 28) and pixels.dtype == np.float32
    # the PNG is the de-normalised, rounded view of the exact float pixels
    png = np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in t.column("image").to_pylist()])
    assert np.array_equal(png, to_uint8(pixels, norm["mean"], norm["std"]))
    # real initialisation: every image starts from a real row of its own class
    src = curate.open_manifest(fashion).read(["id", "label"]).to_pydict()
    label_of = dict(zip(src["id"], src["label"], strict=True))
    assert [label_of[s] for s in t.column("source_id").to_pylist()] == labels.tolist()
    info = m.run_info
    assert info["method"] == method and info["config"]["ipc"] == 2
    assert len(info["normalization"]["mean"]) == 1 and info["seeds"]["seed"] == 0
    assert info["timings"]["s_per_iteration"] > 0 and info["timings"]["peak_memory_mb"] > 0
    assert not (m.path / "_distill_checkpoint.pt").exists()


def test_optimisation_moves_the_pixels_and_is_seeded(tmp_path, fashion):
    a = curate.distill(fashion, tmp_path / "a", ipc=1, iterations=3, **FAST)
    b = curate.distill(fashion, tmp_path / "b", ipc=1, iterations=3, **FAST)
    zero = curate.distill(fashion, tmp_path / "z", ipc=1, iterations=1, lr=1e-12, **FAST)
    pa_, pb, pz = (read_pixels(x)[0] for x in (a, b, zero))
    assert np.array_equal(pa_, pb)
    assert np.abs(pa_ - pz).max() > 1e-3


def test_noise_init_has_no_source_and_the_fyi_flag_is_recorded(tmp_path, fashion):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DistillWarning)  # Fashion-MNIST: flips are fine
        m = curate.distill(
            fashion, tmp_path / "n", init="noise", fyi=True, ipc=1, iterations=2, **FAST
        )
    assert m.read(["source_id"]).column(0).null_count == 3
    assert m.run_info["config"]["fyi"] is True


def test_fyi_on_digits_warns_that_flips_hurt(tmp_path):
    digits = write(digits_table(), tmp_path / "digits.parquet")
    with pytest.warns(DistillWarning, match="digits or characters"):
        m = curate.distill(digits, tmp_path / "s", fyi=True, ipc=1, iterations=1, **FAST)
    assert any("FYI is expected to hurt" in n for n in m.run_info["notes"])
    assert flip_is_unsafe(["0", "1", "2"]) and flip_is_unsafe(["a", "B"])
    assert not flip_is_unsafe(["cat", "dog"])


def test_manifest_is_queryable_with_sql(tmp_path, fashion):
    curate.distill(fashion, tmp_path / "syn", ipc=1, iterations=1, **FAST)
    t = curate.sql("SELECT label, len(pixels) AS n FROM s ORDER BY label", s=tmp_path / "syn")
    assert t.to_pydict() == {"label": [0, 1, 2], "n": [784] * 3}
    assert json.loads((tmp_path / "syn" / "run.json").read_text())["step"] == "distill"


def test_unknown_method_lists_the_valid_ones(tmp_path, fashion):
    with pytest.raises(ValueError, match="choose one of dm, datadam"):
        curate.distill(fashion, tmp_path / "x", method="mtt")


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_path_matches_the_cpu_result_closely(tmp_path, fashion):
    cpu = curate.distill(fashion, tmp_path / "c", ipc=1, iterations=3, device="cpu", **FAST)
    gpu = curate.distill(fashion, tmp_path / "g", ipc=1, iterations=3, device="cuda", **FAST)
    assert gpu.run_info["config"]["device_used"] == "cuda"
    diff = np.abs(read_pixels(cpu)[0] - read_pixels(gpu)[0]).max()
    assert diff < 0.5  # bf16 autocast: close, not equal
    table = curate.distill_eval(gpu.path, real=fashion, epochs=2, nets=1, draws=1, width=8)
    assert table.num_rows == 2


def test_datadam_matches_normalised_channel_power_attention_and_the_embedding():
    """DataDAM's statistics follow the paper: per image, sum over channels of |f|^p at each
    intermediate block, flattened and L2-normalised, then the final embedding (weight 0.01)."""
    import torch

    from curate.pipelines.distill.datadam import AttentionMatching, spatial_attention
    from curate.train.convnet import seeded_convnet

    f = torch.randn(2, 3, 4, 4)
    a = spatial_attention(f, 4)
    manual = (f.abs() ** 4).sum(1).flatten(1)
    assert torch.allclose(a, manual / manual.norm(dim=1, keepdim=True))
    assert torch.allclose(a.norm(dim=1), torch.ones(2))
    # sign-blind and per-image scale-free: the map says where, not how much
    assert torch.allclose(spatial_attention(-3 * f, 4), a, atol=1e-6)

    net = seeded_convnet(0, channels=1, num_classes=3, image_size=28, width=8, depth=3)
    x = torch.randn(5, 1, 28, 28)
    method = AttentionMatching()
    stats = method.statistics(net, x)
    maps, embedding = net.feature_maps(x)
    assert [s.shape[1] for s in stats] == [32 * 32, 16 * 16, embedding.shape[1]]
    assert torch.allclose(stats[0], spatial_attention(maps[0], 4))
    assert method.weights(len(stats)) == [1.0, 1.0, 0.01]
    # the loss compares class means: identical batches match exactly, others do not
    assert float(method.loss(stats, stats)) == 0.0
    assert float(method.loss(stats, method.statistics(net, x.flip(3)))) > 0
