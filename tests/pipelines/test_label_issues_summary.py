"""The predictor's out-of-sample accuracy is printed next to the issue count, with a warning
when it is too low for the flags to mean label errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.app import app
from curate.pipelines.label_issues import label_issues
from curate.pipelines.label_issues.summary import (
    WeakPredictorWarning,
    predictor_accuracy,
    summary_lines,
)
from tests.pipelines._label_data import fresh_out, labels_manifest, one_thread

__all__ = ["one_thread"]  # the autouse fixture

pytest.importorskip("cleanlab")


def _pred_probs(labels: np.ndarray, accuracy: float, seed: int = 0) -> np.ndarray:
    """Confident predictions that agree with ``accuracy`` of ``labels``."""
    rng = np.random.default_rng(seed)
    top = labels.copy()
    wrong = rng.random(len(labels)) > accuracy
    top[wrong] = (labels[wrong] + rng.integers(1, 10, wrong.sum())) % 10
    pp = np.full((len(labels), 10), 0.02, np.float32)
    pp[np.arange(len(labels)), top] = 0.82
    return pp


def test_a_weak_predictor_warns_that_flags_are_likely_its_own_mistakes(tmp_path):
    labels = np.random.default_rng(1).integers(0, 10, 500)
    m = labels_manifest(tmp_path / "m", labels)
    with pytest.warns(WeakPredictorWarning, match=r"agrees with only 8\d\.\d% .*--pred-probs"):
        result = label_issues(m, fresh_out(), pred_probs=_pred_probs(labels, 0.85))
    accuracy = predictor_accuracy(result)
    assert 0.8 < accuracy < 0.9
    count, warning = summary_lines(result)
    assert "label issues among 500 audited rows" in count
    assert f"{100 * accuracy:.1f}% out-of-sample accuracy" in count
    assert warning.startswith("warning:") and "not label errors" in warning


def test_a_strong_predictor_prints_its_accuracy_and_no_warning(tmp_path):
    labels = np.random.default_rng(2).integers(0, 10, 500)
    m = labels_manifest(tmp_path / "m", labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakPredictorWarning)
        result = label_issues(m, fresh_out(), pred_probs=_pred_probs(labels, 0.99))
    (line,) = summary_lines(result)
    assert "out-of-sample accuracy vs the given labels" in line


def test_cli_prints_accuracy_next_to_the_count_and_the_warning_once(tmp_path):
    labels = np.random.default_rng(3).integers(0, 10, 400)
    m = labels_manifest(tmp_path / "m", labels)
    np.save(tmp_path / "pp.npy", _pred_probs(labels, 0.8))
    result = CliRunner().invoke(
        app, ["label-issues", str(m), "-o", str(tmp_path / "out"), "--pred-probs",
              str(tmp_path / "pp.npy")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "label issues among 400 audited rows (" in out and "pp.npy: " in out
    assert out.count("most flags are then its own mistakes") == 1


def test_demo_stage_logs_the_accuracy_next_to_the_count(tmp_path):
    from curate.demo import stages
    from tests.pipelines._label_data import write_digits

    write_digits(tmp_path / "embedded", n=300, flips=30, embedding=True)  # stands in for effnet
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakPredictorWarning)  # logged, not raised
        dict(stages())["label-issues"](tmp_path, lines.append)
    text = "\n".join(lines)
    assert "label issues among 300 audited rows (cnn:" in text  # the demo's predictor
    assert "out-of-sample accuracy vs the given labels" in text and "worst ten:" in text
