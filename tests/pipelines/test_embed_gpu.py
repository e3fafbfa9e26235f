"""GPU paths: nvjpeg batched decode, bf16 autocast, torch.compile (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from curate.pipelines.embed import Preprocess, embed, load_encoder  # noqa: E402
from curate.pipelines.embed.decode import decode_rows  # noqa: E402
from curate.pipelines.embed.device_decode import TensorDecoder  # noqa: E402
from curate.pipelines.embed.loader import PoolDecoder  # noqa: E402
from tests.pipelines import _embed_data as D  # noqa: E402


def test_nvjpeg_decoder_matches_pil_and_falls_back():
    pre = Preprocess(image_size=64)
    rows = [(D.jpeg(96 + i, 128, seed=i), None, None) for i in range(6)]
    rows += [(D.png(), None, None), (D.truncated_jpeg(), None, None), (b"", None, None)]
    pool = PoolDecoder(pre, workers=1, max_pixels=10**8)
    dec = TensorDecoder(pre, "cuda", pool)
    try:
        got, errors = dec.submit(rows).result()
    finally:
        dec.close()
        pool.close()
    assert got.is_cuda and got.shape == (9, 3, 64, 64)
    want, want_errors = decode_rows(rows, pre)
    assert [e and e[0] for e in errors] == [e and e[0] for e in want_errors]
    diff = np.abs(got.permute(0, 2, 3, 1).cpu().numpy() * 255 - want).mean(axis=(1, 2, 3))
    assert (diff[:7] < 6.0).all(), diff


def test_cuda_embed_matches_cpu(tmp_path):
    model = D.tiny_clip_config(tmp_path)
    src = D.write_images(tmp_path / "in", [D.jpeg(80, 100, seed=i) for i in range(16)])
    common = {"model": model, "dtype": "float32", "progress": False, "text": False}
    cpu = embed(src, tmp_path / "cpu", device="cpu", **common).read().column("embedding")
    gpu = embed(src, tmp_path / "gpu", device="cuda", **common).read().column("embedding")
    a, b = np.asarray(cpu.to_pylist()), np.asarray(gpu.to_pylist())
    assert (a * b).sum(1).min() > 0.98  # nvjpeg + bf16 autocast vs PIL + fp32


def test_compile_and_bf16_on_cuda(tmp_path):
    enc = load_encoder(D.tiny_clip_config(tmp_path), device="cuda", compile=True).setup()
    x = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8)
    e = enc.encode_images(x)
    assert e.is_cuda and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(8, device="cuda"), atol=1e-3, rtol=0)
