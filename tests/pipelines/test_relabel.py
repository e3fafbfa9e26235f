"""relabel: soft, multi- and map labels for every row, out of fold; bad rows kept; mistakes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from curate.cli.app import app
from curate.errors import ManifestError
from curate.manifests.io import Manifest, write_manifest
from curate.pipelines.relabel import relabel
from curate.pipelines.relabel.mistakes import mistakes
from curate.pipelines.teachers import SmallClassWarning
from tests.pipelines import _relabel_data as D
from tests.pipelines._relabel_data import SIZE, assert_whole_map_pools_to_soft_label, fashion_table

one_thread = D.one_thread  # fixture


def _with_bad_rows(n: int = 80) -> pa.Table:
    t = fashion_table(n)
    bad = pa.table(
        {
            "id": ["corrupt", "no-image"],
            "image": pa.array([b"not an image at all", None], pa.binary()),
            "label": pa.array([0, 1], pa.int64()),
            "split": ["test", "test"],
        }
    )
    return pa.concat_tables([t.slice(0, 40), bad.cast(t.schema), t.slice(40)])


@pytest.fixture(scope="module")
def relabeled(tmp_path_factory):
    d = tmp_path_factory.mktemp("relabel")
    src = write_manifest(_with_bad_rows(), d / "in")
    return relabel(src, d / "out", teacher="efficientnet_lite0", image_size=SIZE, folds=3,
                   top_k=10, progress="off")  # fmt: skip


def test_every_row_kept_with_soft_multi_and_map_labels(relabeled):
    t = relabeled.read()
    assert t.num_rows == 82 and t.column("id")[40].as_py() == "corrupt"
    assert t.schema.field("soft_classes").type == pa.list_(pa.int16(), 10)
    assert t.schema.field("soft_probs").type == pa.list_(pa.float16(), 10)
    assert t.schema.field("labels").type == pa.list_(pa.int32())
    meta = t.schema.field("label_map_classes").metadata
    assert json.loads(meta[b"curate.map_shape"]) == [10, 2, 2]
    assert meta[b"curate.map_layout"] == b"k,y,x" and meta[b"curate.input_size"] == b"64"
    assert json.loads(meta[b"curate.teacher"])["model"] == "efficientnet_lite0"
    good = t.filter(pa.compute.is_valid(t.column("soft_classes")))
    probs = np.array(good.column("soft_probs").to_pylist(), np.float32)
    assert (np.diff(probs, axis=1) <= 1e-3).all()  # most likely first
    for top, labels in zip(
        good.column("soft_classes").to_pylist(), good.column("labels").to_pylist(), strict=True
    ):
        assert labels and labels[0] == top[0]
    counts = relabeled.run_info["counts"]
    assert counts["relabeled"] == 80 and counts["failed"] == 2
    top1 = np.array([c[0] for c in good.column("soft_classes").to_pylist()])
    assert (top1 == good.column("label").to_numpy()).mean() > 0.5  # out of fold, 53 train rows


def test_bad_images_keep_their_row_with_an_error_and_null_labels(relabeled):
    t = relabeled.read().slice(40, 2).to_pylist()
    for row in t:
        assert row["soft_classes"] is None and row["labels"] is None
        assert row["label_map_classes"] is None
    assert t[0]["error"].startswith("relabel: corrupt") and t[1]["error"].startswith(
        "relabel: no_image"
    )


def test_pooling_the_whole_map_reproduces_the_soft_label(relabeled):
    """Also with the posterior: the channel is added to every cell's logits alike."""
    assert_whole_map_pools_to_soft_label(relabeled.read().slice(0, 10).to_pylist())


def test_no_label_column_and_no_teacher_says_which_teacher_to_pass(tmp_path):
    m = write_manifest(fashion_table(10).drop(["label"]), tmp_path / "m")
    with pytest.raises(ManifestError, match="--teacher classifier:timm"):
        relabel(m, tmp_path / "out", image_size=SIZE, progress="off")


def test_a_class_with_fewer_rows_than_folds_warns(tmp_path):
    t = fashion_table(60)
    labels = t.column("label").to_numpy().copy()
    labels[labels == 9] = 0
    labels[0] = 9  # one Ankle boot
    t = t.set_column(2, "label", pa.array(labels, pa.int64()))
    m = write_manifest(t, tmp_path / "m")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        relabel(m, tmp_path / "out", teacher="efficientnet_lite0", image_size=SIZE, folds=3,
                progress="off")  # fmt: skip
    assert any(
        issubclass(w.category, SmallClassWarning) and "Ankle boot" in str(w.message) for w in caught
    )


def _scored(tmp_path) -> Manifest:
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(6)],
            "label": pa.array([0, 0, 1, 1, 2, 2], pa.int64()),
            "labels": pa.array([[0], [0, 1], [1], [2], [2], []], pa.list_(pa.int32())),
            "is_label_issue": [False, False, False, True, False, False],
        }
    )
    return write_manifest(table, tmp_path / "scored")


def test_mistakes_splits_errors_into_valid_labels_label_errors_and_mistakes(tmp_path):
    m = _scored(tmp_path)
    pred = np.eye(3, dtype=np.float32)[[0, 1, 1, 0, 0, 1]]
    r = mistakes(m, tmp_path / "out", pred_probs=pred)
    assert r.column("mistake_kind").to_pylist() == [
        "correct",
        "in_label_set",
        "correct",
        "label_error",
        "mistake",
        "mistake",
    ]
    s = r.run_info["counts"]
    assert s["accuracy"] == 2 / 6 and s["real_rows"] == 5 and s["real_accuracy"] == 3 / 5
    assert s["counts"] == {"correct": 2, "in_label_set": 1, "label_error": 1, "mistake": 2}
    assert "mistake_kind" in Manifest(tmp_path / "out").schema.names
    info = Manifest(tmp_path / "out").run_info
    assert info["counts"]["counts"] == s["counts"] and info["config"]["pred_probs"] == "array"


def test_mistakes_needs_label_sets(tmp_path):
    m = write_manifest(fashion_table(5), tmp_path / "m")
    with pytest.raises(ManifestError, match="curate relabel"):
        mistakes(m, pred_probs=np.full((5, 10), 0.1, np.float32))


def test_cli_relabel_and_mistakes(relabeled, tmp_path):
    runner = CliRunner()
    src = write_manifest(fashion_table(30), tmp_path / "in")
    res = runner.invoke(app, ["relabel", str(src), "-o", str(tmp_path / "out"), "--teacher",
                              "efficientnet_lite0", "--image-size", "64", "--folds", "2",
                              "--top-k", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "relabeled 30 of 30 rows" in res.output and "2x2 map" in res.output
    assert "target posterior" in res.output and "estimated right: teacher" in res.output
    np.save(tmp_path / "p.npy", np.eye(10, dtype=np.float32)[fashion_table(30)["label"].to_numpy()])
    res = runner.invoke(
        app, ["mistakes", str(tmp_path / "out"), "--pred-probs", str(tmp_path / "p.npy")]
    )
    assert res.exit_code == 0, res.output
    assert "single-label accuracy 100.00%" in res.output and "true mistake" in res.output


def test_cli_bad_input_is_one_clear_error_before_any_model_loads(tmp_path):
    runner = CliRunner()
    unlabelled = write_manifest(fashion_table(10).drop(["label"]), tmp_path / "m")
    res = runner.invoke(app, ["relabel", str(unlabelled), "-o", str(tmp_path / "out")])
    assert res.exit_code != 0 and "--teacher classifier:timm" in str(res.exception)
    res = runner.invoke(app, ["relabel", str(unlabelled), "-o", str(tmp_path / "o2"),
                              "--threshold", "0"])  # fmt: skip
    assert res.exit_code != 0 and "threshold=0.0: must be in (0, 1]" in str(res.exception)
