"""``curate distill`` and ``curate distill-eval`` as a user runs them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from curate.cli.app import app, main
from tests.pipelines._distill_data import digits_table, fashion_table, one_thread, write  # noqa: F401

runner = CliRunner()
FAST = ["--iterations", "2", "--real-per-class", "8", "--ipc", "1"]


def test_distill_then_eval(tmp_path):
    real = write(fashion_table(2, 12, test_per_class=6), tmp_path / "real.parquet")
    syn = tmp_path / "syn"
    r = runner.invoke(
        app, ["distill", str(real), "-o", str(syn), *FAST, "--method", "datadam", "--lr", "1"]
    )
    assert r.exit_code == 0, r.output
    assert "wrote 2 synthetic images (datadam, ipc 1, lr 1)" in r.output
    r = runner.invoke(
        app, ["distill-eval", str(syn), "--real", str(real), "--epochs", "2", "--nets", "2"]
    )
    assert r.exit_code == 0, r.output
    assert "REDUCED protocol" in r.output and "random real" in r.output and "vs random" in r.output
    assert (tmp_path / "syn-eval" / "random_draws.parquet").exists()


def test_fyi_on_digits_warns(tmp_path):
    digits = write(digits_table(), tmp_path / "d.parquet")
    with pytest.warns(UserWarning, match="FYI is expected to hurt"):
        r = runner.invoke(app, ["distill", str(digits), "-o", str(tmp_path / "s"), *FAST, "--fyi"])
    assert r.exit_code == 0, r.output


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    src = write(fashion_table(2, 4).drop(["label"]), tmp_path / "m.parquet")
    with pytest.raises(SystemExit) as exit_:
        main(["distill", str(src), "-o", str(tmp_path / "o")])
    assert exit_.value.code == 2
    assert "no 'label' column" in capsys.readouterr().err


def test_distill_chooses_datadams_lr_and_says_so(tmp_path):
    real = write(fashion_table(2, 40), tmp_path / "real.parquet")
    args = ["distill", str(real), "-o", str(tmp_path / "syn"), *FAST, "--method", "datadam",
            "--lr-grid", "1,100", "--val-per-class", "20", "--select-iterations", "1",
            "--select-epochs", "1", "--select-nets", "1"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "lr 1: validation accuracy" in r.output and "lr 100: validation accuracy" in r.output
    assert "(chosen on the validation rows)" in r.output
    bad = ["distill", str(real), "-o", str(tmp_path / "bad"), "--method", "datadam"]
    r = runner.invoke(app, [*bad, "--val-per-class", "5"])
    assert r.exit_code != 0 and "at least 20 validation rows per class" in str(r.exception)
