"""curate reinforce on real Fashion-MNIST images with the real EfficientNet-Lite0 teacher:
replay is exact, reruns are identical, bad rows are kept, export writes WebDataset shards."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from curate.demo import DEMO_DATA  # noqa: E402
from curate.engines import run  # noqa: E402
from curate.errors import ManifestError  # noqa: E402
from curate.manifests.io import Manifest, write_manifest  # noqa: E402
from curate.pipelines.reinforce import (  # noqa: E402
    ReinforceConfig,
    ReinforceStep,
    export_webdataset,
    reinforce,
)
from curate.train.augment import to_rgb  # noqa: E402
from curate.train.replay import ReplayDataset  # noqa: E402

OPTS = {"augs": 3, "top_k": 5, "mix": "mixup", "mix_prob": 0.5, "batch_size": 16}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    table = pq.read_table(DEMO_DATA).slice(0, 60)
    images = table.column("image").to_pylist()
    images[7] = images[7][:40]  # a truncated PNG: kept, with an error and no views
    table = table.set_column(table.column_names.index("image"), "image", pa.array(images))
    return write_manifest(table, tmp_path_factory.mktemp("src") / "m")


@pytest.fixture(scope="module")
def reinforced(source, tmp_path_factory):
    step = ReinforceStep(ReinforceConfig(**OPTS))
    out = run(step, source, tmp_path_factory.mktemp("out") / "r", progress="off", batch_size=16)
    return step, out


def test_every_row_kept_and_bad_image_has_error_and_no_views(reinforced):
    _, out = reinforced
    t = out.read()
    assert t.num_rows == 60
    assert t.column("soft_probs")[7].as_py() is None
    assert "reinforce: " in t.column("error")[7].as_py()
    assert out.run_info["counts"]["reinforced"] == 59
    assert out.run_info["counts"]["views"] == 59 * 3


def test_replayed_views_give_the_stored_teacher_probabilities(reinforced):
    step, out = reinforced
    ds = ReplayDataset(out)
    k = OPTS["top_k"]
    mixed = 0
    for i in range(0, len(ds), 7):
        for a in range(OPTS["augs"]):
            row = ds.rows[i]
            mixed += row["aug_partner"][a] is not None
            x = to_rgb(ds.view(i, a).unsqueeze(0))
            prob = torch.softmax(step.teacher_.logits(x).float(), 1)[0]
            top_p, top_c = torch.topk(prob, k)
            assert top_c.tolist() == row["soft_classes"][a * k : (a + 1) * k]
            stored = np.asarray(row["soft_probs"][a * k : (a + 1) * k], np.float32)
            assert np.allclose(top_p.numpy(), stored, atol=2e-3)
    assert mixed > 0  # mixed views (on the mixed image itself) were replayed too


def test_rerun_is_identical_and_views_are_keyed_by_id(source, reinforced, tmp_path):
    _, out = reinforced
    # the same rows in another order and sharding: each id gets the same views
    t = Manifest(source).read()
    shuffled = write_manifest(t.take(np.arange(59, -1, -1)), tmp_path / "rev", rows_per_shard=25)
    again = reinforce(shuffled, tmp_path / "again", progress="off", **OPTS)
    a = out.read().sort_by("id")
    b = again.read().sort_by("id")
    assert a.column("aug_params").equals(b.column("aug_params"))
    assert (tmp_path / "again" / "teacher" / "teacher.json").exists()
    assert again.run_info["teacher"]["name"]
    # no 'val' rows: nothing held out for calibrating students, and run.json says so
    assert "no labelled rows of split 'val'" in again.run_info["calibration"]["note"]
    assert not (tmp_path / "again" / "calibration.json").exists()


def test_changed_source_bytes_are_caught_on_replay(source, reinforced, tmp_path):
    _, out = reinforced
    t = Manifest(source).read()
    images = t.column("image").to_pylist()
    images[3] = pq.read_table(DEMO_DATA).column("image")[100].as_py()
    changed = write_manifest(t.set_column(1, "image", pa.array(images)), tmp_path / "changed")
    with pytest.raises(ManifestError, match="changed since reinforcement") as exc:
        ReplayDataset(out, source=changed)
    assert t.column("id")[3].as_py() in str(exc.value)


def test_replay_targets_and_plain_views(reinforced):
    _, out = reinforced
    ds = ReplayDataset(out, seed=1)
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and torch.isclose(y.sum(), torch.tensor(1.0))
    plain = ReplayDataset(out, plain_prob=1.0)
    x, y = plain[0]
    assert y.max() == 1.0 and int(y.argmax()) == plain.rows[0]["label"]


def test_a_mixed_view_never_takes_its_own_image_as_partner(reinforced):
    _, out = reinforced
    rows = out.read(["id", "aug_partner"]).to_pylist()
    partners = [(r["id"], p) for r in rows for p in r["aug_partner"] or [] if p is not None]
    assert partners and all(own != p for own, p in partners)


def _as_rgb_png(data: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def test_grayscale_and_rgb_images_in_one_manifest_give_one_view_shape(tmp_path):
    # web data mixes them (ImageNet has grayscale JPEGs): views follow the first image
    table = pq.read_table(DEMO_DATA).slice(0, 12)
    images = table.column("image").to_pylist()
    images[2], images[5] = _as_rgb_png(images[2]), _as_rgb_png(images[5])
    table = table.set_column(table.column_names.index("image"), "image", pa.array(images))
    src = write_manifest(table, tmp_path / "m")
    opts = {**OPTS, "mix": "cutmix", "mix_prob": 1.0}
    out = reinforce(src, tmp_path / "r", progress="off", **opts)
    assert out.run_info["counts"]["reinforced"] == 12
    ds = ReplayDataset(out)
    assert {tuple(ds.view(i, a).shape) for i in range(12) for a in range(3)} == {(1, 28, 28)}


def test_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="randaugment"):
        ReinforceConfig(policy="autoaugment-v9")


def test_export_webdataset_shards(reinforced, tmp_path):
    _, out = reinforced
    shards = export_webdataset(out, tmp_path / "wds", rows_per_shard=25)
    assert len(shards) == 3
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile([n for n in names if n.endswith(".json")][0]).read())
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".cls") for n in names)
    assert len(meta["views"]) == 3 and len(meta["views"][0]["probs"]) == 5
    assert json.loads((tmp_path / "wds" / "export.json").read_text())["skipped_without_views"] == 1
