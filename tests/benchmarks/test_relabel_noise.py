"""The relabel noise study's injected noise is independent of the rows relabel samples."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import relabel_noise as RN

import curate
from curate.pipelines.relabel import RelabelConfig
from curate.pipelines.relabel.choose import _sample_ids

ROWS, SAMPLE = 5000, 2000


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    labels = np.arange(ROWS) % 10
    images = np.zeros((ROWS, 8, 8), np.uint8)
    names = [str(k) for k in range(10)]
    return labels, images, names, tmp_path_factory.mktemp("noise")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_the_rows_auto_measures_teachers_on_carry_the_injected_noise_rate(clean, seed, rate):
    labels, images, names, tmp = clean
    noisy, flipped = RN.inject(labels, rate, "symmetric", RN.FASHION_CONFUSABLE, seed=seed)
    assert flipped.mean() == pytest.approx(rate)
    manifest = RN.write(images, noisy, names, tmp / f"{seed}-{rate}")
    sampled = _sample_ids(curate.open_manifest(manifest), SAMPLE, RelabelConfig().seed)
    rows = np.array(sorted(int(i[1:]) for i in sampled))
    # the teacher is chosen on these rows: their noise must be the manifest's, not all flips
    assert flipped[rows].mean() == pytest.approx(rate, abs=0.05)
