"""``curate.distill`` on bad input: one clear error naming what is wrong and the fix."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("torch")

import curate
from curate.errors import InputError, ManifestError
from curate.manifests.io import IN_PROGRESS
from curate.pipelines.distill import DistillWarning, DivergedError, read_pixels
from tests.pipelines._distill_data import (
    FAST,
    fashion_table,
    one_thread,  # noqa: F401
    png,
    write,
)


def test_a_manifest_without_labels_is_refused(tmp_path):
    src = write(fashion_table(2, 5).drop(["label"]), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="no 'label' column"):
        curate.distill(src, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_small_class_is_used_whole_with_a_warning(tmp_path):
    src = write(fashion_table(2, 6), tmp_path / "m.parquet")
    with pytest.warns(
        DistillWarning, match="fewer usable images than --real-per-class 50 .*'Trouser': 6"
    ):
        m = curate.distill(
            src, tmp_path / "o", ipc=1, iterations=1, **{**FAST, "real_per_class": 50}
        )
    assert m.run_info["counts"]["real_per_class_available"] == {"T-shirt/top": 6, "Trouser": 6}


def test_a_class_without_a_valid_image_is_named(tmp_path):
    t = fashion_table(3, 4)
    images = t.column("image").to_pylist()
    labels = t.column("label").to_pylist()
    images = [b"not an image" if lab == 1 else im for im, lab in zip(images, labels, strict=True)]
    t = t.set_column(t.schema.get_field_index("image"), "image", pa.array(images, pa.binary()))
    src = write(t, tmp_path / "m.parquet")
    with pytest.raises(InputError, match=r"\['Trouser'\] have no valid image"):
        curate.distill(src, tmp_path / "o", ipc=1, iterations=1, **FAST)


def test_mixed_sizes_are_refused_unless_resized(tmp_path):
    t = fashion_table(2, 6)
    images = t.column("image").to_pylist()
    images[0] = png(np.zeros((32, 32), np.uint8))
    t = t.set_column(t.schema.get_field_index("image"), "image", pa.array(images, pa.binary()))
    src = write(t, tmp_path / "m.parquet")
    with pytest.raises(InputError, match="2 different sizes .*--image-size N"):
        curate.distill(src, tmp_path / "o", ipc=1, iterations=1, **FAST)
    m = curate.distill(src, tmp_path / "o2", ipc=1, iterations=1, image_size=16, **FAST)
    assert read_pixels(m)[0].shape == (2, 1, 16, 16)
    assert any("resized to 16x16" in n for n in m.run_info["notes"])


def test_mixed_modes_become_rgb(tmp_path):
    t = fashion_table(2, 6)
    images = t.column("image").to_pylist()
    images[0] = png(np.zeros((28, 28, 3), np.uint8))
    t = t.set_column(t.schema.get_field_index("image"), "image", pa.array(images, pa.binary()))
    m = curate.distill(
        write(t, tmp_path / "m.parquet"), tmp_path / "o", ipc=1, iterations=1, **FAST
    )
    assert read_pixels(m)[0].shape == (2, 3, 28, 28)
    assert any("11 grayscale images converted to RGB" in n for n in m.run_info["notes"])


def test_ipc_above_a_class_size_with_real_init(tmp_path):
    src = write(fashion_table(2, 3), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="'T-shirt/top' has 3 usable images, fewer than --ipc 5"):
        curate.distill(src, tmp_path / "o", ipc=5, iterations=1, **FAST)
    m = curate.distill(src, tmp_path / "o", ipc=5, init="noise", iterations=1, **FAST)
    assert m.num_rows == 10


def test_nan_stops_with_the_iteration_and_keeps_the_checkpoint(tmp_path):
    src = write(fashion_table(2, 8), tmp_path / "m.parquet")
    out = tmp_path / "o"
    with pytest.raises(DivergedError, match=r"iteration \d+: .*NaN.*--lr") as err:
        curate.distill(src, out, ipc=1, iterations=50, lr=1e38, checkpoint_every=2, **FAST)
    kept = int(re.search(r"checkpoint \(iteration (\d+)\)", str(err.value)).group(1))
    assert (out / IN_PROGRESS).exists() and (out / "_distill_checkpoint.pt").exists()
    with pytest.raises(ManifestError, match="incomplete manifest"):
        curate.open_manifest(out)
    # the fix the message gives: a smaller --lr resumes from the kept checkpoint
    m = curate.distill(src, out, ipc=1, iterations=4, lr=0.1, checkpoint_every=2, **FAST)
    assert m.run_info["resumed_from"] == kept and np.isfinite(read_pixels(m)[0]).all()


def test_bad_options_and_existing_outputs(tmp_path):
    src = write(fashion_table(2, 4), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="ipc must be a positive integer"):
        curate.distill(src, tmp_path / "o", ipc=0)
    with pytest.raises(InputError, match="init must be one of real, noise"):
        curate.distill(src, tmp_path / "o", init="zeros")
    curate.distill(src, tmp_path / "o", ipc=1, iterations=1, **FAST)
    with pytest.raises(curate.errors.OutputExistsError, match="--overwrite"):
        curate.distill(src, tmp_path / "o", ipc=1, iterations=1, **FAST)
