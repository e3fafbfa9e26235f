"""relabel respects the evidence: the posterior against the teacher alone, the measured choice
of the default teacher, the input size from the images, and the weak-teacher check."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pyarrow as pa
import pytest
import torch
from typer.testing import CliRunner

from curate.cli.app import app
from curate.engines import run
from curate.manifests.io import Manifest, write_manifest
from curate.pipelines.relabel import (
    RelabelConfig,
    RelabelStep,
    WeakTeacherError,
    WeakTeacherWarning,
    relabel,
)
from curate.pipelines.teachers.sizing import (
    backbone_side,
    classifier_side,
    pixel_side,
    probe_images,
)
from curate.train.labelpool import pool_map
from curate.train.losses import densify_topk
from tests.pipelines import _relabel_data as D
from tests.pipelines._relabel_data import SIZE, assert_whole_map_pools_to_soft_label, fashion_table

one_thread = D.one_thread  # fixture


def _noisy(n: int = 80, flipped: int = 8, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    t = fashion_table(n)
    truth = t.column("label").to_numpy()
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, flipped, replace=False)
    noisy = truth.copy()
    noisy[rows] = (truth[rows] + rng.integers(1, 10, flipped)) % 10
    return t.set_column(t.schema.get_field_index("label"), "label", pa.array(noisy)), truth


def _top1(m: Manifest) -> np.ndarray:
    return np.array([c[0] for c in m.read(["soft_classes"]).column(0).to_pylist()])


@pytest.fixture(scope="module")
def both_targets(tmp_path_factory):
    """One fitted step (backbone teacher at 64 px), run with the posterior and the teacher."""
    d = tmp_path_factory.mktemp("targets")
    table, truth = _noisy()
    src = Manifest(write_manifest(table, d / "in"))
    cfg = RelabelConfig(teacher="efficientnet_lite0", image_size=SIZE, folds=3, top_k=10,
                        weak_teacher="proceed")  # fmt: skip
    step = RelabelStep(cfg).fit(src)
    post = run(step, src, d / "posterior", progress="off", batch_size=64)
    alone = copy.copy(step)
    alone.config = dataclasses.replace(cfg, target="teacher")
    teacher = run(alone, src, d / "teacher", progress="off", batch_size=64)
    return post, teacher, table.column("label").to_numpy(), truth


def test_the_posterior_keeps_more_clean_labels_than_the_teacher_alone(both_targets):
    post, teacher, given, truth = both_targets
    clean = given == truth
    kept_post = np.mean(_top1(post)[clean] == given[clean])
    kept_teacher = np.mean(_top1(teacher)[clean] == given[clean])
    assert kept_post > kept_teacher
    differs = [m.run_info["counts"]["top1_differs"] for m in (post, teacher)]
    assert differs[0] < differs[1]
    ev = post.run_info["evidence"]
    for key in (
        "estimated_label_accuracy",
        "teacher_accuracy",
        "teacher_estimated_accuracy",
        "labels_estimated_accuracy",
    ):
        assert 0 < ev[key] <= 1, key
    assert np.allclose(np.array(ev["noise_matrix"]).sum(axis=0), 1.0, atol=1e-3)
    assert post.run_info["target"] == "posterior" and teacher.run_info["target"] == "teacher"


def test_pooling_the_whole_posterior_map_gives_back_the_posterior_soft_label(both_targets):
    assert_whole_map_pools_to_soft_label(both_targets[0].read().slice(0, 8).to_pylist())


@pytest.fixture(scope="module")
def auto(tmp_path_factory):
    """The default teacher on small images, measured on a 24-row sample of 36 rows."""
    d = tmp_path_factory.mktemp("auto")
    src = write_manifest(fashion_table(36), d / "in")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakTeacherWarning)
        return relabel(src, d / "out", folds=2, cnn_epochs=1, choice_rows=24, top_k=10,
                       image_size=SIZE, progress="off")  # fmt: skip


def test_auto_measures_every_candidate_and_records_the_choice(auto):
    choice = auto.run_info["teacher_choice"]
    acc = choice["out_of_fold_accuracy"]
    assert list(acc) == ["cnn", "efficientnet_lite0", "cnn+efficientnet_lite0"]
    assert choice["rows"] <= 24 and choice["sampled"] is True
    assert acc[choice["chosen"]] >= max(acc.values()) - RelabelConfig().choice_margin
    assert auto.run_info["teacher"]["name"].startswith(choice["chosen"].split("+")[0])


def test_the_input_size_comes_from_the_images(auto, tmp_path):
    assert auto.run_info["input"] == {"size": SIZE, "reason": f"{SIZE} px: given (image_size)"}
    geometry = probe_images(Manifest(write_manifest(fashion_table(5), tmp_path / "m")))
    assert (geometry.side, geometry.grayscale, geometry.small) == (28, True, True)
    assert pixel_side(28) == 28 and classifier_side(28) == 32
    assert backbone_side(28) == 128 and backbone_side(200) == 224 and backbone_side(900) == 480


def _weak(tmp_path, policy: str, **options):
    """A pixel CNN trained for one epoch on 60 rows: weaker than the clean labels."""
    src = write_manifest(fashion_table(60), tmp_path / "in")
    return relabel(src, tmp_path / "out", teacher="cnn", folds=2, cnn_epochs=1,
                   weak_teacher=policy, progress="off", **options)  # fmt: skip


def test_a_weak_teacher_warns_naming_both_figures(tmp_path):
    with pytest.warns(WeakTeacherWarning) as caught:
        out = _weak(tmp_path, "warn", top_k=10)
    message = str(caught[0].message)
    ev = out.run_info["evidence"]
    assert f"{100 * ev['teacher_accuracy']:.1f}%" in message
    assert f"{100 * ev['teacher_estimated_accuracy']:.1f}%" in message
    assert f"{100 * ev['labels_estimated_accuracy']:.1f}%" in message
    assert "--weak-teacher proceed" in message
    assert ev["weak_teacher"] is True and out.run_info["warnings"] == [message]
    # the pixel CNN is GAP + linear: its whole map pools back to the soft label too
    row = out.read().slice(0, 1).to_pylist()[0]
    g = out.run_info["map"]["grid"]
    assert g == 7 and out.run_info["input"]["size"] == 28
    pooled = pool_map(np.array(row["label_map_classes"]).reshape(10, g, g),
                      np.array(row["label_map_scores"], np.float32).reshape(10, g, g),
                      (0.0, 0.0, float(g), float(g)), 10)  # fmt: skip
    soft = densify_topk(torch.tensor([row["soft_classes"]]), torch.tensor([row["soft_probs"]]),
                        10)[0]  # fmt: skip
    assert torch.allclose(pooled, soft, atol=5e-3)


def test_a_weak_teacher_can_stop_the_run_or_proceed_quietly(tmp_path):
    with pytest.raises(WeakTeacherError, match="agrees with"):
        _weak(tmp_path / "a", "error")
    assert not (tmp_path / "a" / "out" / "run.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakTeacherWarning)
        out = _weak(tmp_path / "b", "proceed")
    assert out.run_info["evidence"]["weak_teacher"] is True


def test_cli_prints_the_weak_teacher_warning_in_one_line(tmp_path):
    src = write_manifest(fashion_table(60), tmp_path / "in")
    res = CliRunner().invoke(app, ["relabel", str(src), "-o", str(tmp_path / "out"), "--teacher",
                                   "cnn", "--folds", "2", "--cnn-epochs", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("warning: teacher cnn")]
    assert len(lines) == 1 and "estimated for the labels" in lines[0]
    assert "28 px: the pixel CNN at the images' own size" in res.output
