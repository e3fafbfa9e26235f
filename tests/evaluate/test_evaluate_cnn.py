"""``model="cnn"``: the small CNN trained from scratch on the digits' pixels, seeded."""

from __future__ import annotations

import pytest

import curate
from curate.errors import ManifestError
from tests.evaluate._data import write_digits


@pytest.fixture(scope="module")
def digits_images(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("dimg") / "pool", images=True)


def test_cnn_on_pixels_is_seeded_and_compared_with_random(digits_images):
    kw = dict(test_split="test", model="cnn", epochs=2, seeds=1, device="cpu", threads=1)
    a = curate.evaluate(digits_images, subsets={"clean": "NOT flipped"}, **kw)
    b = curate.evaluate(digits_images, subsets={"clean": "NOT flipped"}, **kw)
    clean = a["clean"]
    assert clean["accuracies"] == b["clean"]["accuracies"]
    assert clean["random_rows"] == clean["rows"] and len(clean["random_accuracies"]) == 1
    assert 0.1 < clean["accuracy_mean"] <= 1  # above chance after two short epochs


def test_cnn_needs_images(digits_pool):
    with pytest.raises(ManifestError, match=r"--model cnn trains on pixels.*no 'image' column"):
        curate.evaluate(digits_pool, subsets=["all=TRUE"], test_split="test", model="cnn")
