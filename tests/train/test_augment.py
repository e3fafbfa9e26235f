"""Parameterised augmentations: seeded by row id, stored as float16, re-applied exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from curate.train.augment import (  # noqa: E402
    OPS,
    POLICIES,
    apply_params,
    as_stored,
    decode_image,
    get_policy,
    sample_params,
    view_rng,
)


def _image(seed: int = 0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (1, 28, 28), dtype=np.uint8))


def test_params_depend_on_seed_id_and_view_not_on_order():
    policy = get_policy("randaugment")
    a = sample_params(view_rng(0, "img-1", 3), policy, mix="cutmix", mix_prob=0.5)
    b = sample_params(view_rng(0, "img-1", 3), policy, mix="cutmix", mix_prob=0.5)
    c = sample_params(view_rng(0, "img-1", 4), policy, mix="cutmix", mix_prob=0.5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_crop_boxes_lie_inside_the_image_and_ops_are_known():
    policy = get_policy("randaugment")
    for aug in range(200):
        p = sample_params(view_rng(1, "x", aug), policy)
        assert p[0] >= 0 and p[0] + p[2] <= 1 + 1e-6 and p[1] >= 0 and p[1] + p[3] <= 1 + 1e-6
        assert p[5] in (-1, *range(len(OPS)))


def test_the_same_stored_params_make_the_same_view():
    img, partner = _image(0), _image(1)
    policy = get_policy("randaugment")
    for aug in range(20):
        p = sample_params(view_rng(2, "y", aug), policy, mix="mixup", mix_prob=0.5)
        v1 = apply_params(img, p, 24, partner)
        v2 = apply_params(img, as_stored(p), 24, partner)
        assert v1.shape == (1, 24, 24) and torch.equal(v1, v2)


def test_whole_image_crop_without_ops_is_the_resized_image():
    import torchvision.transforms.v2.functional as F

    p = np.zeros(19, np.float32)
    p[2:4] = 1.0
    p[5:9] = (-1, 0, -1, 0)
    p[14] = 1.0
    img = _image(3)
    want = F.resize(img, [28, 28], antialias=True).float() / 255
    assert torch.allclose(apply_params(img, p, 28), want)


def test_unknown_policy_lists_valid_names():
    with pytest.raises(ValueError) as exc:
        get_policy("bogus")
    assert all(name in str(exc.value) for name in POLICIES)


def test_decode_image_converts_to_the_channels_asked_for():
    import io

    from PIL import Image

    def png(mode):
        buf = io.BytesIO()
        Image.new(mode, (5, 4), 90 if mode == "L" else (90, 20, 200)).save(buf, format="PNG")
        return buf.getvalue()

    assert decode_image(png("L")).shape == (1, 4, 5)
    assert decode_image(png("RGB")).shape == (3, 4, 5)
    assert decode_image(png("L"), 3).shape == (3, 4, 5)
    assert decode_image(png("RGB"), 1).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="channels"):
        decode_image(png("L"), 2)
