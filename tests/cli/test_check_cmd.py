"""``curate check`` as a user (or a CI job guarding a benchmark) runs it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from curate.cli.app import app, main
from curate.manifests.io import Manifest
from tests.pipelines._check_data import build

pytest.importorskip("faiss")
pytest.importorskip("imagehash")
runner = CliRunner()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return build(tmp_path_factory.mktemp("cli") / "m", n_train=40, n_test=10)


def test_check_writes_every_row_and_prints_counts(planted, tmp_path):
    out = tmp_path / "c"
    args = ["check", str(planted.path), "-o", str(out), "--near-dup-threshold", "0.9995"]
    r = runner.invoke(app, [*args, "--progress", "off"])
    assert r.exit_code == 0, r.output
    assert Manifest(out).num_rows == len(planted.ids)
    for issue in ("exact_dup", "leak", "dark", "undecodable"):
        assert issue in r.output
    assert "train-copy-0" in r.output  # a worst example of the exact duplicates / leaks


def test_fail_on_exits_1_when_found_and_0_when_not(planted):
    base = ["check", str(planted.path), "--progress", "off"]
    r = runner.invoke(app, [*base, "--fail-on", "leak"])
    assert r.exit_code == 1
    assert "not kept" in r.output  # without -o only the summary is printed
    assert runner.invoke(app, [*base, "--fail-on", "grayscale,odd_aspect_ratio"]).exit_code == 1
    assert runner.invoke(app, [*base, "--fail-on", "grayscale"]).exit_code == 0


def test_bad_fail_on_name_lists_the_valid_ones(planted, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", str(planted.path), "--fail-on", "leaks"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown issue name" in err and "near_dup" in err
