"""The encoder registry: names to encoders, timm with local weights, missing extras, decoders."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from curate.errors import InputError, MissingExtraError
from curate.pipelines.embed import ENCODERS, Preprocess, list_models, load_encoder
from curate.pipelines.embed.decode import decode_rows
from curate.pipelines.embed.device_decode import TensorDecoder, resize_crop_tensor
from curate.pipelines.embed.encoders import (
    EfficientNetLite0Encoder,
    OpenClipEncoder,
    TimmEncoder,
)
from curate.pipelines.embed.loader import PoolDecoder
from tests.pipelines import _embed_data as D


def test_names_pick_the_family():
    assert isinstance(load_encoder("efficientnet_lite0"), EfficientNetLite0Encoder)
    assert isinstance(load_encoder("timm:resnet18"), TimmEncoder)
    assert isinstance(load_encoder("ViT-B-32"), OpenClipEncoder)
    assert isinstance(load_encoder("open_clip:ViT-B-32"), OpenClipEncoder)
    assert load_encoder("timm:resnet18").model_id == "timm:resnet18"
    assert set(ENCODERS) == {"open_clip", "timm", "efficientnet_lite0"}
    with pytest.raises(ValueError, match="give a name after 'timm:'"):
        load_encoder("timm:")
    with pytest.raises(ValueError, match="precision='int4'"):
        load_encoder("ViT-B-32", precision="int4")
    assert any(m.name == "efficientnet_lite0" and m.available for m in list_models())


def test_timm_with_a_local_weights_file(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(1)
    ref = timm.create_model("test_resnet", pretrained=False, num_classes=10).eval()
    path = tmp_path / "w.pth"
    torch.save(ref.state_dict(), path)  # classifier included: it is dropped on load
    enc = load_encoder("timm:test_resnet", str(path), device="cpu").setup()
    x = torch.randint(
        0, 255, (2, 3, enc.preprocess.image_size, enc.preprocess.image_size), dtype=torch.uint8
    )
    got = enc.encode_images(x)
    ref.reset_classifier(0)
    with torch.inference_mode():
        want = torch.nn.functional.normalize(ref(enc.prepare(x)), dim=-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    meta = enc.metadata()
    assert meta["model"] == "timm:test_resnet" and meta["pretrained"] == "w.pth"
    assert len(meta["checkpoint_sha256"]) == 64
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="do not fit timm model"):
        load_encoder("timm:test_resnet", str(tmp_path / "bad.pth"), device="cpu").setup()


def test_missing_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails
    with pytest.raises(MissingExtraError, match=r"curate-ml\[clip\]"):
        load_encoder("timm:resnet18", device="cpu").setup()


def test_offline_hub_tag_failure_suggests_a_local_checkpoint(tmp_path, monkeypatch):
    model = D.tiny_clip_config(tmp_path)
    with pytest.raises(InputError, match="local checkpoint"):
        load_encoder(model, str(tmp_path / "missing.pt"), device="cpu").setup()


def test_tensor_resize_matches_pil_resize():
    pre = Preprocess(image_size=32, interpolation="bilinear")
    img = D.natural(48, 64, seed=2)
    pil, _ = decode_rows([(D.encode(img), None, None)], pre)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    t = resize_crop_tensor(x, pre)[0].permute(1, 2, 0).numpy() * 255
    assert t.shape == (32, 32, 3) and np.abs(t - pil[0]).mean() < 3.0


def test_torchvision_jpeg_decoder_matches_pil_and_falls_back():
    pre = Preprocess(image_size=32)
    rows = [(D.jpeg(64, 80, seed=i), None, None) for i in range(3)]
    rows += [(D.png(), None, None), (D.cmyk_jpeg(), None, None), (b"", None, None)]
    rows += [(D.truncated_jpeg(), None, None)]
    pool = PoolDecoder(pre, workers=0, max_pixels=10**8)
    dec = TensorDecoder(pre, "cpu", pool)
    try:
        got, errors = dec.submit(rows).result()
    finally:
        dec.close()
        pool.close()
    want, want_errors = decode_rows(rows, pre)
    assert [e and e[0] for e in errors] == [e and e[0] for e in want_errors]
    assert [e and e[0] for e in errors][-2:] == ["empty", "truncated"]
    diff = np.abs(got.permute(0, 2, 3, 1).numpy() * 255 - want).mean(axis=(1, 2, 3))
    assert (diff[:5] < 6.0).all(), diff  # same images, different resamplers


def test_jpeg_header_parser_reads_size_and_channels():
    from PIL import Image

    from curate.pipelines.embed.device_decode import jpeg_info

    assert jpeg_info(D.jpeg(64, 80)) == (80, 64, 3)
    assert jpeg_info(D.cmyk_jpeg()) == (48, 48, 4)  # CMYK: left to the CPU path
    gray = D.encode(Image.fromarray(D.natural(30, 50)[..., 0]), "JPEG")
    assert jpeg_info(gray) == (50, 30, 1)
    progressive = D.encode(Image.fromarray(D.natural(33, 51)), "JPEG", progressive=True)
    assert jpeg_info(progressive) == (51, 33, 3)
    assert jpeg_info(D.png()) is None and jpeg_info(b"") is None


@pytest.mark.slow
def test_torch_compile_matches_eager_on_cpu(tmp_path):
    model = D.tiny_clip_config(tmp_path)
    x = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    eager = load_encoder(model, device="cpu").encode_images(x)
    compiled = load_encoder(model, device="cpu", compile=True).encode_images(x)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
