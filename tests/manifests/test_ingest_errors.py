"""Bad input to ingest: a clear error naming the file and the fix, and nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import InputError, ManifestError, OutputExistsError
from curate.manifests import open_manifest
from curate.manifests.ingest import IngestConfig, detect_format, ingest
from tests.manifests.ingest_data import digits_folder, write_laion


def test_a_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: input does not exist; check the path"):
        ingest(tmp_path / "nope", tmp_path / "out")


def test_an_empty_folder_and_an_empty_parquet(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="input folder is empty"):
        ingest(tmp_path / "empty", tmp_path / "out")
    pq.write_table(pa.table({"url": pa.array([], pa.string())}), tmp_path / "none.parquet")
    with pytest.raises(InputError, match="holds no rows"):
        ingest(tmp_path / "none.parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_class_folders_without_files_are_empty_input(tmp_path: Path) -> None:
    (tmp_path / "src" / "cat").mkdir(parents=True)
    (tmp_path / "src" / "dog").mkdir()
    with pytest.raises(InputError, match="cannot tell its format"):
        ingest(tmp_path / "src", tmp_path / "out")
    with pytest.raises(InputError, match="holds no rows"):
        ingest(tmp_path / "src", tmp_path / "out", format="imagefolder")


def test_an_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "in.parquet", 5)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        ingest(src, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert ingest(src, tmp_path / "out", overwrite=True).num_rows == 5


def test_duplicate_ids_are_refused_with_count_and_examples(tmp_path: Path) -> None:
    t = pa.table({"key": ["a", "b", "a", "c", "b", "a"], "url": list("uvwxyz")})
    pq.write_table(t, tmp_path / "dup.parquet")
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "dup.parquet", tmp_path / "out", batch_size=2)
    msg = str(err.value)
    assert "2 id(s) occur more than once (5 rows)" in msg and "'a' x3, 'b' x2" in msg
    assert "--map" in msg and "Nothing was written" in msg
    assert not (tmp_path / "out").exists()
    # the fix the message suggests works
    m = ingest(tmp_path / "dup.parquet", tmp_path / "out", column_map={"key": "source_key"})
    assert m.read(["id"])["id"].to_pylist() == [str(i) for i in range(6)]


def test_unknown_and_undetectable_formats_list_the_valid_ones(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "in.parquet", 3)
    with pytest.raises(ValueError, match=r"unknown format 'csv'; valid formats: \['hf', "):
        ingest(src, tmp_path / "out", format="csv")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="pass --format with one of hf, imagefolder, numpy"):
        detect_format(tmp_path / "x.csv")


def test_bad_options_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"IngestConfig.workers must be a positive integer"):
        IngestConfig(workers=0)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['colum_map'\]"):
        ingest(tmp_path, tmp_path / "out", colum_map={})


def test_output_inside_the_input_folder_is_refused(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 10)
    with pytest.raises(InputError, match="must not be the input or contain it"):
        ingest(src, src / "manifest")


_KILL_SCRIPT = """
import sys
from curate.manifests.ingest import ingest
ingest(sys.argv[1], sys.argv[2], workers=1, batch_size=64, rows_per_shard=128)
"""


def test_a_killed_ingest_never_reads_as_a_complete_manifest(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 1500)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(src), str(out)])
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("part-*.parquet")) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    if proc.returncode == 0:  # finished before the kill landed (a very fast machine)
        pytest.skip("ingest finished before it could be killed")
    assert list(out.glob("part-*.parquet"))  # some shards were finished...
    with pytest.raises(ManifestError, match="incomplete manifest"):
        open_manifest(out)  # ...but the manifest does not read as complete


def test_an_incomplete_manifest_is_not_ingested(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "in.parquet", 5)
    m = ingest(src, tmp_path / "m")
    (m.path / "_CURATE_IN_PROGRESS").touch()
    with pytest.raises(InputError, match="incomplete manifest"):
        ingest(m.path, tmp_path / "again")
