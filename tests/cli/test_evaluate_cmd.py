"""``curate evaluate`` as a user runs it: the table, the JSON file, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from curate.cli.app import app, main
from tests.evaluate._data import write_digits

runner = CliRunner()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("cli-digits") / "pool")


def test_evaluate_prints_the_table_and_writes_json(pool, tmp_path):
    out = tmp_path / "result.json"
    args = ["evaluate", str(pool), "--subset", "clean=NOT flipped", "--test-split", "test",
            "--seeds", "2", "--out", str(out)]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "better" in r.output and "random" in r.output
    assert "397 of its 1393 rows not trained on (397 test)" in " ".join(r.output.split())
    saved = json.loads(out.read_text())
    assert saved["results"][0]["subset"] == "clean" and saved["config"]["seeds"] == 2


def test_bad_subset_is_one_line_and_exit_2(pool, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(pool), "--subset", "x=label > 99", "--test-split", "test"])
    assert exc.value.code == 2
    assert "subset 'x'" in capsys.readouterr().err
