"""``curate label-issues``: same result as the Python API; bad input exits with a clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.app import app
from curate.errors import InputError
from curate.manifests.io import open_manifest
from curate.pipelines.label_issues import label_issues
from tests.pipelines._label_data import labels_manifest, noisy_pred_probs, one_thread, write_digits

__all__ = ["one_thread"]  # the autouse fixture

pytest.importorskip("cleanlab")
runner = CliRunner()


def test_cli_and_python_give_the_same_result(tmp_path):
    path, _ = write_digits(tmp_path / "d.parquet", n=400, flips=20)
    args = ["--features", "pixels", "--folds", "3", "--seed", "3", "--method", "both"]
    result = runner.invoke(
        app,
        ["label-issues", str(path), "-o", str(tmp_path / "cli"), "--issues-out",
         str(tmp_path / "cli_issues.parquet"), *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "label issues among 400 audited rows" in result.output
    assert "given -> suggested" in result.output
    api = label_issues(
        path, tmp_path / "api", features="pixels", folds=3, seed=3, method="both",
        issues_out=tmp_path / "api_issues.parquet",
    )  # fmt: skip
    cli = open_manifest(tmp_path / "cli").read()
    for col in ("label_quality", "is_label_issue", "suggested_label", "suggested_confidence"):
        assert cli.column(col).equals(api.column(col)), col
        assert cli.column(col).equals(open_manifest(tmp_path / "api").read().column(col))
    cli_issues = open_manifest(tmp_path / "cli_issues.parquet").read()
    api_issues = open_manifest(tmp_path / "api_issues.parquet").read()
    assert cli_issues.column("id").equals(api_issues.column("id"))
    run = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert run["label_pairs"] == json.loads(api.schema.metadata[b"curate.label_pairs"])


def test_cli_pred_probs_and_audit_options(tmp_path):
    labels, pp = noisy_pred_probs(300, 5, seed=4)
    path = labels_manifest(tmp_path / "m.parquet", labels)
    np.save(tmp_path / "pp.npy", pp)
    result = runner.invoke(
        app,
        ["label-issues", str(path), "-o", str(tmp_path / "out"), "--pred-probs",
         str(tmp_path / "pp.npy"), "--method", "low_self_confidence"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    again = runner.invoke(
        app, ["label-issues", str(path), "-o", str(tmp_path / "out"), "--pred-probs",
              str(tmp_path / "pp.npy")],
    )  # fmt: skip
    assert "already exists" in str(again.exception)


def test_cli_bad_method_is_an_input_error(tmp_path):
    labels, pp = noisy_pred_probs(30, 3)
    path = labels_manifest(tmp_path / "m.parquet", labels)
    result = runner.invoke(
        app, ["label-issues", str(path), "-o", str(tmp_path / "o"), "--method", "magic"]
    )
    assert isinstance(result.exception, InputError)
    assert "valid methods" in str(result.exception)


def test_main_exits_2_with_one_line_on_bad_input(tmp_path, capsys):
    from curate.cli.app import main

    labels, pp = noisy_pred_probs(30, 3)
    path = labels_manifest(tmp_path / "m.parquet", labels)
    np.save(tmp_path / "pp.npy", pp[:20])
    with pytest.raises(SystemExit) as exc:
        main(["label-issues", str(path), "-o", str(tmp_path / "o"), "--pred-probs",
              str(tmp_path / "pp.npy")])  # fmt: skip
    assert exc.value.code == 2
    assert "20 rows but the manifest has 30" in capsys.readouterr().err
