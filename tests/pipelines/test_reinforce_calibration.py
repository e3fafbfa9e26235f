"""curate reinforce keeps held-out rows for calibrating students: recorded with the teacher's
hash, a student's temperature fit on their clean images, a record for another teacher refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from curate.demo import DEMO_DATA  # noqa: E402
from curate.errors import ManifestError  # noqa: E402
from curate.manifests.io import write_manifest  # noqa: E402
from curate.pipelines.reinforce import CalibrationWarning, calibrate, reinforce  # noqa: E402
from curate.train.calibration import (  # noqa: E402
    calibrate_student,
    expected_calibration_error,
    held_out_rows,
)
from curate.train.replay import ReplayDataset  # noqa: E402

OPTS = {"augs": 1, "top_k": 5, "batch_size": 32, "teacher_split": "train"}


@pytest.fixture(scope="module")
def reinforced(tmp_path_factory):
    # 30 training rows and 50 held-out rows (split 'val') of the demo Fashion-MNIST
    table = pq.read_table(DEMO_DATA).slice(0, 80)
    splits = ["train"] * 30 + ["val"] * 50
    table = table.set_column(table.column_names.index("split"), "split", pa.array(splits))
    src = write_manifest(table, tmp_path_factory.mktemp("src") / "m")
    return reinforce(src, tmp_path_factory.mktemp("out") / "r", progress="off", **OPTS)


def test_held_out_rows_are_recorded_with_the_teachers_hash(reinforced):
    info = reinforced.run_info
    cal = json.loads((reinforced.path / "calibration.json").read_text())
    assert len(info["teacher_sha256"]) == 16 and cal["teacher_sha256"] == info["teacher_sha256"]
    assert cal["split"] == "val" and cal["rows"] == 50 and cal["held_out"] is True
    views = cal["teacher_on_views"]
    assert views["views"] == 50 and views["temperature"] > 0
    assert views["after"]["nll"] <= views["before"]["nll"] + 1e-9  # the fit never hurts NLL
    assert info["calibration"]["rows"] == 50


class _Scaled(torch.nn.Module):
    """A model's logits times ``scale``."""

    def __init__(self, model, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


def _overfit_linear_student(reinforced):
    """Logistic regression on the pixels of the 30 training rows' plain images, trained to
    near-zero loss: over-confident on rows it never saw."""
    ds = ReplayDataset(reinforced, split="train", plain_prob=1.0)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.stack([ds[i][1] for i in range(len(ds))]).argmax(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def test_a_students_temperature_is_fit_on_the_held_out_rows(reinforced):
    x, y = held_out_rows(reinforced)
    assert x.shape == (50, 1, 28, 28) and len(y) == 50
    model = _overfit_linear_student(reinforced)
    temperature, report = calibrate_student(model, reinforced)
    assert temperature > 1  # over-confident on the held-out rows: softened
    assert report["rows"] == 50 and report["after"]["nll"] < report["before"]["nll"]
    assert report["after"]["mean_confidence"] < report["before"]["mean_confidence"]
    # an under-confident student (its logits divided by 8) is sharpened by the same factor
    flat, _ = calibrate_student(_Scaled(model, 1 / 8), reinforced)
    assert flat == pytest.approx(temperature / 8, rel=0.02)


def test_replay_can_leave_the_held_out_rows_out_and_temper_targets(reinforced):
    train = ReplayDataset(reinforced, split="train")
    assert len(train) == 30 and {r["id"] for r in train.rows}.isdisjoint(
        set(pq.read_table(DEMO_DATA).slice(30, 50).column("id").to_pylist())
    )
    sharp = ReplayDataset(reinforced, split="train", temperature=0.5)
    for i in range(5):
        raw, hard = train.soft_target(i, 0), sharp.soft_target(i, 0)
        assert torch.isclose(hard.sum(), torch.tensor(1.0)) and hard.max() >= raw.max() - 1e-6
    with pytest.raises(ManifestError, match="no reinforced rows"):
        ReplayDataset(reinforced, split="nope")


def test_a_calibration_made_for_another_teacher_is_refused_naming_both(reinforced, tmp_path):
    copy = shutil.copytree(reinforced.path, tmp_path / "copy")
    path = copy / "calibration.json"
    cal = json.loads(path.read_text())
    path.write_text(json.dumps({**cal, "teacher_sha256": "0123456789abcdef"}))
    with pytest.raises(ManifestError, match="0123456789abcdef") as err:
        held_out_rows(copy)
    assert reinforced.run_info["teacher_sha256"] in str(err.value)
    assert "reinforce-calibrate" in str(err.value)
    calibrate(copy, held_out=True)  # the fix the message gives: record it for this teacher
    assert held_out_rows(copy)[0].shape[0] == 50


def test_no_record_is_a_clear_error_and_rows_the_teacher_saw_warn(reinforced, tmp_path):
    copy = shutil.copytree(reinforced.path, tmp_path / "copy")
    (copy / "calibration.json").unlink()
    with pytest.raises(ManifestError, match="no calibration.json"):
        held_out_rows(copy)
    with pytest.warns(CalibrationWarning, match="also fit on the rows of split .val."):
        calibrate(copy, split="val", held_out=False)


def test_ece_of_a_calibrated_predictor_is_small_and_of_an_overconfident_one_large():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 20_000)
    correct = rng.random(20_000) < conf
    assert expected_calibration_error(conf, correct) < 0.02
    assert expected_calibration_error(np.minimum(conf + 0.2, 1.0), correct) > 0.1
