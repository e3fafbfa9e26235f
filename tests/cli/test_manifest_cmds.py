"""The ``sql`` and ``info`` commands as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from curate.cli.app import app, main
from curate.manifests import write_manifest
from tests.conftest import embedded_table

runner = CliRunner()


def test_sql_prints_a_table(tmp_path: Path) -> None:
    m = write_manifest(embedded_table(n=30), tmp_path / "m")
    result = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM m", "--manifest", f"m={m}"])
    assert result.exit_code == 0, result.output
    assert "30" in result.output


def test_sql_out_writes_parquet_and_refuses_to_overwrite(tmp_path: Path) -> None:
    m = write_manifest(embedded_table(n=30), tmp_path / "m")
    out = tmp_path / "r.parquet"
    args = ["sql", "SELECT id FROM m WHERE label = 0", "-m", f"m={m}", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert pq.read_metadata(out).num_rows > 0
    again = runner.invoke(app, args)
    assert again.exit_code != 0
    assert "--overwrite" in str(again.exception)


def test_info_prints_rows_columns_and_labels(tmp_path: Path) -> None:
    m = write_manifest(embedded_table(n=30), tmp_path / "m")
    result = runner.invoke(app, ["info", str(m)])
    assert result.exit_code == 0, result.output
    assert "30" in result.output and "embedding" in result.output and "class1" in result.output


def test_main_turns_bad_input_into_a_one_line_error(tmp_path: Path, capsys) -> None:
    try:
        main(["info", str(tmp_path / "missing")])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "Traceback" not in err
