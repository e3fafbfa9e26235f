"""Bad input never stops an embed run: each bad row keeps a null embedding and its error."""

from __future__ import annotations

import numpy as np
import pytest

from curate.pipelines.embed import embed
from curate.pipelines.embed.decode import DEFAULT_MAX_PIXELS, ImageError, Preprocess, decode_rows
from tests.pipelines import _embed_data as D

PRE = Preprocess(image_size=32)

FAILING = {
    "corrupt": D.corrupt,
    "truncated": D.truncated_jpeg,
    "empty": lambda: b"",
    "too_large": D.bomb_png,
}
CONVERTED = {"cmyk": D.cmyk_jpeg, "gray": D.gray_png, "16bit": D.png16, "alpha": D.rgba_png}


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_bad_bytes_become_an_error_of_their_kind(kind):
    pixels, errors = decode_rows([(FAILING[kind](), None, None), (D.png(), None, None)], PRE)
    assert errors[0] is not None and errors[0][0] == kind
    assert errors[1] is None and pixels[1].any() and not pixels[0].any()


@pytest.mark.parametrize("kind", sorted(CONVERTED))
def test_unusual_modes_are_converted_and_decode(kind):
    pixels, errors = decode_rows([(CONVERTED[kind](), None, None)], PRE)
    assert errors == [None]
    assert pixels.shape == (1, 32, 32, 3) and pixels.dtype == np.uint8
    assert 10 < pixels.mean() < 245  # real content, not a blank or saturated frame


def test_sixteen_bit_keeps_its_contrast():
    pixels, _ = decode_rows([(D.png16(), None, None)], PRE)
    assert pixels.std() > 10  # a naive convert("RGB") would clip everything to 255


def test_alpha_is_composited_over_white():
    from PIL import Image

    transparent = D.encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)))
    pixels, errors = decode_rows([(transparent, None, None)], PRE)
    assert errors == [None] and (pixels == 255).all()


def test_bomb_guard_is_checked_before_decoding():
    data = D.bomb_png(20_000)  # 400M pixels claimed in an 8x8 file
    assert DEFAULT_MAX_PIXELS < 20_000 * 20_000
    _, errors = decode_rows([(data, None, None)], PRE)
    assert errors[0][0] == "too_large" and "decompression-bomb" in errors[0][1]
    _, errors = decode_rows([(D.png(64, 64), None, None)], PRE, max_pixels=1000)
    assert errors[0][0] == "too_large"


def test_sources_missing_file_url_only_and_nothing(tmp_path):
    rows = [
        (None, str(tmp_path / "nope.png"), None),
        (None, None, "http://example.com/a.jpg"),
        (None, None, None),
        (None, str(tmp_path), None),
    ]
    _, errors = decode_rows(rows, PRE)
    assert [e[0] for e in errors] == [
        "missing_file",
        "not_downloaded",
        "no_image",
        "unreadable_file",
    ]
    assert "not downloaded; fetch images first (img2dataset)" in errors[1][1]


def test_image_error_carries_kind():
    err = ImageError("corrupt", "bad header")
    assert err.kind == "corrupt" and str(err) == "corrupt: bad header"


def test_run_with_every_bad_kind_counts_failures_by_kind(tmp_path):
    good = tmp_path / "ok.png"
    good.write_bytes(D.png(seed=9))
    images = [f() for f in FAILING.values()] + [f() for f in CONVERTED.values()]
    images += [None, None, None, D.jpeg()]
    paths = [None] * 8 + [str(tmp_path / "missing.jpg"), "ok.png", None, None]
    urls = [None] * 10 + ["http://example.com/x.jpg", None]
    src = D.write_images(tmp_path / "in", images, path=paths, url=urls)
    model = D.tiny_clip_config(tmp_path)
    out = embed(src, tmp_path / "out", model=model, batch_size=5, workers=1, progress=False)
    t = out.read()
    emb, err = t.column("embedding"), t.column("error").to_pylist()
    ok = [4, 5, 6, 7, 9, 11]
    assert [i for i in range(t.num_rows) if emb[i].is_valid] == ok
    assert all(err[i] is None for i in ok)
    assert all(err[i].startswith("embed: ") for i in range(t.num_rows) if i not in ok)
    counts = out.run_info["counts"]
    assert counts["failed_by_kind"] == {
        "corrupt": 1,
        "empty": 1,
        "missing_file": 1,
        "not_downloaded": 1,
        "too_large": 1,
        "truncated": 1,
    }
    assert counts["embedded"] == 6 and counts["failed"] == 6
