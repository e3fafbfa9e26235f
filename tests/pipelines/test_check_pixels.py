"""The pixel measurements against their references: cleanvision's scores on the same files,
imagehash's phash, and a pixel hash that ignores the file format."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curate.pipelines.check import pixels as X
from tests.pipelines._check_data import fashion, png
from tests.pipelines._embed_data import natural

imagehash = pytest.importorskip("imagehash")


def _images() -> dict[str, np.ndarray]:
    imgs = {f"fashion{i}": a for i, a in enumerate(fashion(12))}
    for i in range(4):
        imgs[f"colour{i}"] = natural(48 + 8 * i, 64, seed=i)
    imgs["dark"] = (fashion(1)[0] // 8).astype(np.uint8)
    imgs["light"] = np.full((28, 28), 250, np.uint8)
    imgs["blank"] = np.zeros((28, 28), np.uint8)
    imgs["wide"] = natural(20, 112, seed=9)
    imgs["big"] = natural(300, 300, seed=7)  # shrunk to 64 px for blurriness, as cleanvision
    return imgs


def test_scores_equal_cleanvision_on_the_same_files(tmp_path):
    cleanvision = pytest.importorskip("cleanvision")
    imgs = _images()
    for name, a in imgs.items():
        (tmp_path / f"{name}.png").write_bytes(png(a))
    lab = cleanvision.Imagelab(data_path=str(tmp_path))
    kinds = ["dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size"]
    lab.find_issues({k: {} for k in [*kinds, "grayscale"]}, n_jobs=1, verbose=False)
    theirs = lab.issues
    mine = {}
    for name in imgs:
        with Image.open(tmp_path / f"{name}.png") as im:
            mine[name] = X.measure(im.convert("RGB"))
    sizes = np.array([np.sqrt(f.width * f.height) for f in mine.values()])
    size_score, size_threshold = X.size_scores(sizes, 3.0)
    for j, name in enumerate(imgs):
        row = theirs.loc[str(tmp_path / f"{name}.png")]
        ours = dict(zip(X.SCORES, mine[name].scores, strict=True), odd_size_score=size_score[j])
        for kind in kinds:
            assert ours[f"{kind}_score"] == pytest.approx(row[f"{kind}_score"], abs=1e-4), (
                name,
                kind,
            )
        assert (size_score[j] < size_threshold) == row["is_odd_size_issue"]
        # cleanvision's grayscale reads PIL's mode; ours reads the pixels (0 = gray)
        assert (ours["grayscale_score"] == 0) == bool(row["is_grayscale_issue"])


def test_phash_is_imagehash_and_pixel_hash_ignores_the_format():
    a = fashion(1)[0]
    gray = Image.fromarray(a)
    rgb = gray.convert("RGB")
    assert format(X.phash64(rgb), "016x") == str(imagehash.phash(gray))
    assert X.pixel_hash(np.asarray(rgb)) == X.pixel_hash(
        np.asarray(Image.fromarray(a).convert("RGB"))
    )
    moved = np.roll(a, 1, axis=1)
    assert X.pixel_hash(np.asarray(Image.fromarray(moved).convert("RGB"))) != X.pixel_hash(
        np.asarray(rgb)
    )
    # the same gray pixels stored as an RGB PNG measure the same, entropy included
    as_rgb = Image.open(io.BytesIO(png(np.stack([a, a, a], axis=2)))).convert("RGB")
    assert X.measure(as_rgb) == X.measure(rgb)


def test_odd_size_follows_the_iqr_rule():
    sizes = np.array([28.0] * 20 + [29.0, 56.0])
    scores, threshold = X.size_scores(sizes, 3.0)  # every typical size equal: any other is odd
    assert threshold == 1.0 and (scores[:20] == 1).all() and (scores[20:] < 1).all()
    spread = np.linspace(100, 140, 40)
    scores, threshold = X.size_scores(np.r_[spread, 400.0], 3.0)
    assert threshold == 0.5 and (scores[:40] >= 0.5).all() and scores[40] < 0.5
