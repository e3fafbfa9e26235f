"""Teachers: out-of-fold heads on a frozen backbone, the GAP identity, user classifiers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from curate.errors import InputError, ManifestError
from curate.manifests.io import write_manifest
from curate.pipelines.teachers import (
    Ensemble,
    build_teacher,
    decode_table,
    fit_head,
)
from tests.pipelines import _relabel_data as D
from tests.pipelines._relabel_data import SIZE, fashion_table

fashion, one_thread = D.fashion, D.one_thread  # fixtures


@pytest.fixture(scope="module")
def teacher(fashion):
    return build_teacher(None, fashion, image_size=SIZE, folds=3, seed=0)


def test_cell_logits_average_to_the_global_logits(teacher):
    x, errors = decode_table(fashion_table(8), SIZE)
    assert errors == [None] * 8
    out = teacher.predict(x)
    assert out.cells.shape == (8, 10, teacher.grid, teacher.grid) and teacher.grid == 2
    assert torch.allclose(out.cells.mean(dim=(2, 3)), out.logits, atol=1e-5)


def test_each_row_is_predicted_by_the_fold_head_that_did_not_see_it(teacher):
    t = fashion_table(30)
    ids = t.column("id").to_pylist()
    folds = teacher.heads.folds_for(ids)
    assert set(folds) <= {0, 1, 2} and len(teacher.heads.fold_of) == 120
    x, _ = decode_table(t, SIZE)
    oof = teacher.logits(x, folds=folds)
    for k in range(3):  # a row's logits are its own fold head's, not another's
        rows = folds == k
        own = teacher.logits(x[rows], folds=np.full(rows.sum(), k))
        assert torch.allclose(oof[rows], own, atol=1e-5)
    assert not torch.allclose(teacher.logits(x, folds=(folds + 1) % 3), oof)


def test_describe_names_the_checkpoint_classes_size_and_grid(teacher, tmp_path):
    d = teacher.describe()
    assert d["model"] == "efficientnet_lite0" and len(d["checkpoint_sha256"]) == 64
    assert d["classes"][0] == "T-shirt/top" and d["input_size"] == SIZE and d["grid"] == 2
    assert d["resize"] == "squash"
    saved = teacher.save(tmp_path / "t")
    assert (saved / "teacher.json").exists() and (saved / "heads.npz").exists()


def test_heads_fit_out_of_fold_on_given_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 5)).astype(np.float32) + y[:, None] * 2.0
    heads = fit_head(X, y, n_classes=4, folds=3, seed=0)  # class 3 never seen
    assert len(heads.heads) == 3 and len(heads.fold_of) == 60
    p = heads.heads[0].apply(torch.from_numpy(X)).softmax(dim=1)
    assert p[:, 3].max() < 1e-6
    assert (p.argmax(dim=1).numpy() == y).mean() > 0.9
    assert len(fit_head(X, y, n_classes=3, folds=1).heads) == 1


def test_the_feature_phase_says_it_started_before_its_first_heartbeat(fashion):
    # a run of 10,000 images was silent 52 s between the pixel CNN's last line and the
    # features' first heartbeat: each phase now opens with a line
    lines: list[str] = []
    build_teacher(None, fashion, image_size=SIZE, folds=3, seed=0, log=lines.append)
    started = next(i for i, line in enumerate(lines) if "features at" in line)
    assert started < next(i for i, line in enumerate(lines) if "head(s)" in line)


def test_mlp_head(fashion):
    t = build_teacher(None, fashion, image_size=SIZE, folds=2, head="mlp")
    x, _ = decode_table(fashion_table(4), SIZE)
    assert t.predict(x).logits.shape == (4, 10)


def test_no_label_column_asks_for_a_user_teacher(tmp_path):
    m = write_manifest(fashion_table(10).drop(["label"]), tmp_path / "m")
    with pytest.raises(ManifestError, match="classifier:timm"):
        build_teacher(None, m, image_size=SIZE)


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return path


def test_user_classifier_and_ensemble(fashion, resnet_ckpt, teacher):
    spec = f"classifier:timm:resnet18={resnet_ckpt}"
    user = build_teacher(spec, fashion, image_size=SIZE)
    x, _ = decode_table(fashion_table(4), SIZE)
    out = user.predict(x)
    assert out.logits.shape == (4, 10) and user.grid == 2
    assert torch.allclose(out.cells.mean(dim=(2, 3)), out.logits, atol=1e-4)
    both = Ensemble([teacher, user]).setup().predict(x)
    mean = (teacher.predict(x).logits.softmax(1) + out.logits.softmax(1)) / 2
    assert torch.allclose(both.logits.softmax(1), mean, atol=1e-5)


def test_teacher_classes_that_differ_are_an_error(fashion, resnet_ckpt):
    (resnet_ckpt.parent / f"{resnet_ckpt.name}.classes.txt").write_text(
        "\n".join(f"c{i}" for i in range(10))
    )
    try:
        with pytest.raises(InputError, match="has classes.*T-shirt"):
            build_teacher(f"classifier:timm:resnet18={resnet_ckpt}", fashion, image_size=SIZE)
    finally:
        (resnet_ckpt.parent / f"{resnet_ckpt.name}.classes.txt").unlink()
    t = fashion_table(10)
    m = write_manifest(
        t.replace_schema_metadata({b"curate.class_names": b'["a", "b"]'}).set_column(
            2, "label", pa.array([0, 1] * 5, pa.int64())
        ),
        resnet_ckpt.parent / "two",
    )
    with pytest.raises(InputError, match="2 classes"):
        build_teacher(f"classifier:timm:resnet18={resnet_ckpt}", m, image_size=SIZE)


def _imagenet_manifest(tmp_path):
    import json

    names = json.dumps([f"n{i:08d}" for i in range(1000)]).encode()
    t = fashion_table(12)
    return write_manifest(
        t.replace_schema_metadata({b"curate.class_names": names}), tmp_path / "in1k"
    )


def test_imagenet_classifier_teacher_is_the_checkpoint_s_own_logits(tmp_path):
    m = _imagenet_manifest(tmp_path)
    t = build_teacher("imagenet:efficientnet_lite0", m, image_size=SIZE)
    x, _ = decode_table(fashion_table(4), SIZE)
    out = t.predict(x)
    assert out.logits.shape == (4, 1000) and t.grid == 2
    model = t.backbone.encoder.model.eval()
    with torch.inference_mode():
        own = model(t.backbone.normalise(x)).float()  # pool -> dropout (off) -> fc
    assert torch.allclose(out.logits, own, atol=1e-3)
    assert t.describe()["name"] == "imagenet:efficientnet_lite0"


def test_imagenet_teacher_on_a_manifest_of_other_classes_is_an_error(fashion, tmp_path):
    with pytest.raises(InputError, match="1000 ImageNet-1k classes.*10 classes.*T-shirt"):
        build_teacher("imagenet", fashion, image_size=SIZE)
    with pytest.raises(InputError, match="available offline are imagenet:efficientnet_lite0"):
        build_teacher("imagenet:resnet50", _imagenet_manifest(tmp_path), image_size=SIZE)


def test_reinforce_and_relabel_take_the_imagenet_teacher(tmp_path):
    from curate.pipelines.reinforce import reinforce
    from curate.pipelines.relabel import relabel

    m = _imagenet_manifest(tmp_path)
    r = reinforce(m, tmp_path / "r", teacher="imagenet", augs=2, top_k=5, progress="off")
    classes = np.asarray(r.read().column("soft_classes").to_pylist())
    assert classes.shape == (12, 10) and classes.max() < 1000
    assert r.run_info["teacher"]["name"] == "imagenet:efficientnet_lite0"
    rl = relabel(m, tmp_path / "rl", teacher="imagenet", image_size=SIZE, progress="off")
    assert len(rl.read().column("labels")) == 12


def test_an_ensemble_says_why_each_member_sees_its_input_size():
    from types import SimpleNamespace

    from curate.pipelines.teachers.build import _joined_reason

    cnn = SimpleNamespace(name="cnn", input_reason="28 px: the pixel CNN at the images' own size")
    eff = SimpleNamespace(name="efficientnet_lite0+logreg", input_reason="128 px: raised")
    assert _joined_reason([cnn, eff]) == (
        "cnn: 28 px: the pixel CNN at the images' own size; efficientnet_lite0+logreg: 128 px: "
        "raised"
    )
    assert _joined_reason([eff, eff]) == "128 px: raised"
