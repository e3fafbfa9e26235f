"""Every usage error and every unreadable input ends the real CLI with one line and the fix.

The tests drive ``curate.cli.app.main`` (the console script's entry point) in-process, and the
installed ``curate`` script in a subprocess for the cases a user meets first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curate.cli.app import main
from curate.manifests import write_manifest
from tests.conftest import embedded_table
from tests.manifests.ingest_data import digits_folder, write_laion

COMMANDS = ("ingest", "prune", "sql", "info", "export")


def run(capsys, *args: str) -> tuple[int, str]:
    """Run ``curate ARGS`` through its entry point; the exit status and stderr."""
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *named: str) -> str:
    """Exit status 2, one ``error:`` line on stderr that names each of ``named``."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for text in named:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def argv(command: str, path: Path, tmp_path: Path) -> list[str]:
    """The command line that makes ``command`` open ``path`` as its input."""
    return {
        "ingest": ["ingest", path, "-o", tmp_path / "out"],
        "prune": ["prune", path, "-o", tmp_path / "out", "--keep", "0.5"],
        "sql": ["sql", "SELECT count(*) FROM m", "-m", f"m={path}"],
        "info": ["info", path],
        "export": ["export", path, "-o", tmp_path / "out", "--format", "webdataset"],
    }[command]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(embedded_table(n=40), tmp_path / "m")


@pytest.mark.parametrize(
    ("typo", "meant"), [("prun", "prune"), ("ingset", "ingest"), ("sqll", "sql"), ("inf", "info")]
)
def test_a_typod_command_suggests_the_right_one(capsys, typo: str, meant: str) -> None:
    line = assert_one_line(*run(capsys, typo, "x"), f"no such command {typo!r}")
    assert f"did you mean {meant!r}?" in line and "curate --help" in line


def test_a_typod_option_suggests_the_right_one(capsys, manifest: Path) -> None:
    line = assert_one_line(*run(capsys, "prune", manifest, "--kep", "0.3"), "'--kep'")
    assert "did you mean '--keep'?" in line


@pytest.mark.parametrize(
    ("args", "flag", "fix"),
    [
        (["prune", "m", "-o", "x", "--keep", "abc"], "--keep 'abc' is not a number", "--keep 0.5"),
        (["ingest", "src", "-o", "x", "-j", "many"], "--workers 'many'", "--workers 4"),
        (["prune", "m", "-o", "x", "--k", "1.5"], "--k '1.5' is not a whole number", "--k 4"),
        (["export", "m", "--shard-size", "1e3"], "--shard-size '1e3'", "--shard-size 4"),
    ],
)
def test_a_bad_number_names_the_option_and_an_example(capsys, args, flag, fix) -> None:
    line = assert_one_line(*run(capsys, *args), flag)
    assert f"e.g. {fix}" in line


def test_a_number_out_of_range_names_the_option(capsys, manifest: Path, tmp_path: Path) -> None:
    assert_one_line(*run(capsys, "prune", manifest, "-o", tmp_path / "p", "--keep", "2"), "--keep")
    src = write_laion(tmp_path / "in.parquet", 5)
    assert_one_line(*run(capsys, "ingest", src, "-o", tmp_path / "o", "-j", "0"), "workers")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["evaluate", "pool"], "missing option --subset; usage: curate evaluate [OPTIONS] POOL"),
        (["prune"], "missing argument MANIFEST; usage: curate prune [OPTIONS] MANIFEST"),
        (["sql"], "missing argument QUERY; usage: curate sql [OPTIONS] QUERY"),
        (["info"], "missing argument MANIFEST; usage: curate info [OPTIONS] MANIFEST"),
        (["prune", "m", "--keep"], "option '--keep' needs a value; give --keep VALUE"),
    ],
)
def test_a_missing_option_or_argument_shows_the_usage(capsys, args, named) -> None:
    assert_one_line(*run(capsys, *args), named)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_file(capsys, tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nope.parquet"
    line = assert_one_line(*run(capsys, *argv(command, missing, tmp_path)), str(missing))
    assert "check the path" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_parquet_file(capsys, tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    assert_one_line(*run(capsys, *argv(command, empty, tmp_path)), str(empty), "empty (0 bytes)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_corrupt_parquet_file(capsys, tmp_path: Path, command: str) -> None:
    good = write_laion(tmp_path / "good.parquet", 30)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:-100])  # cut inside the footer, as a killed copy does
    line = assert_one_line(*run(capsys, *argv(command, bad, tmp_path)), str(bad))
    assert "not a readable Parquet file: no Parquet footer (not Parquet, or truncated)" in line
    assert "re-export" in line or "rerun the step" in line


@pytest.mark.parametrize("command", ("ingest", "prune"))
def test_a_parquet_file_corrupt_past_its_footer(capsys, tmp_path: Path, command: str) -> None:
    """The footer reads, a data page does not: the error comes when the rows are read."""
    if command == "prune":  # prune reads a manifest with an embedding column
        good = write_manifest(embedded_table(n=2000), tmp_path / "good.parquet")
    else:
        good = write_laion(tmp_path / "good.parquet", 2000)
    data = bytearray(good.read_bytes())
    data[64 : len(data) // 2] = b"\xab" * (len(data) // 2 - 64)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    code, err = run(capsys, *argv(command, bad, tmp_path), "--overwrite")
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]  # prune may have printed a progress line first
    assert last.startswith("error: ") and str(bad) in last
    assert "not a readable Parquet file: corrupt" in last


@pytest.mark.parametrize("command", ("prune", "sql", "info", "export"))
def test_a_folder_without_parquet_is_not_a_manifest(capsys, tmp_path, command: str) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a manifest")
    line = assert_one_line(*run(capsys, *argv(command, folder, tmp_path)), str(folder))
    assert "holds no .parquet files" in line and "curate ingest" in line


def test_the_installed_script_prints_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("curate")
    if not script.exists():
        pytest.skip("the curate console script is not installed beside this python")
    for args, named in (
        (["prun", "m"], "did you mean 'prune'?"),
        (["prune", "m", "-o", "x", "--keep", "abc"], "--keep 'abc' is not a number"),
    ):
        done = subprocess.run([script, *args], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and named in done.stderr, done.stderr


@pytest.fixture
def as_nobody():
    """Run the curate script as an unprivileged user (root reads any file) in a folder that
    user can reach; skip where the machine does not allow it."""
    setpriv, script = shutil.which("setpriv"), Path(sys.executable).with_name("curate")
    if os.geteuid() != 0 or setpriv is None or not script.exists():
        pytest.skip("needs root, setpriv and the curate script to test as another user")
    shared = Path("/tmp") / f"curate-perm-{os.getpid()}"
    shared.mkdir(mode=0o755)

    def run_as(*args) -> subprocess.CompletedProcess:
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", script, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=shared)
        if "Permission denied" in done.stderr and "error:" not in done.stderr:
            pytest.skip("the unprivileged user cannot run this environment's python")
        return done

    run_as.folder = shared
    yield run_as
    shutil.rmtree(shared)


def test_permission_denied_names_the_file(as_nobody) -> None:
    m = write_manifest(embedded_table(n=10), as_nobody.folder / "m")
    m.chmod(0o755)
    locked = next(m.glob("*.parquet"))
    locked.chmod(0o000)
    for args in (["info", m], ["export", m, "-o", as_nobody.folder / "x.parquet"]):
        done = as_nobody(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and str(locked) in done.stderr
        assert "permission denied" in done.stderr and "chmod" in done.stderr


def test_an_unreadable_class_folder_is_named_not_skipped(as_nobody) -> None:
    src = digits_folder(as_nobody.folder / "digits", 30)
    for p in (src, *src.iterdir()):
        p.chmod(0o755)
    for f in src.rglob("*.png"):
        f.chmod(0o644)
    (src / "three").chmod(0o000)
    done = as_nobody("ingest", src, "-o", as_nobody.folder / "out", "--format", "imagefolder")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and str(src / "three") in done.stderr
    assert "cannot list this folder" in done.stderr and "chmod" in done.stderr
    (src / "three").chmod(0o755)


@pytest.mark.parametrize(
    "args",
    [["embed"], ["check"], ["prune", "--keep", "0.5"], ["cluster"], ["label-issues"], ["relabel"]],
)
def test_a_bad_progress_mode_is_one_line(capsys, manifest: Path, args: list[str]) -> None:
    line = run(capsys, args[0], manifest, *args[1:], "--progress", "loud")
    assert_one_line(*line, "progress='loud'")
