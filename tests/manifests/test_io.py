"""Reading and writing manifests: round trips, shards, streaming, atomicity, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError, OutputExistsError
from curate.manifests import ManifestWriter, open_manifest, write_manifest
from curate.manifests.runinfo import make_run_info
from curate.manifests.schema import embedding_info
from tests.conftest import embedded_table


def test_round_trip_keeps_rows_class_names_and_embedding_metadata(tmp_path: Path) -> None:
    table = embedded_table(n=1000)
    out = write_manifest(table, tmp_path / "m", rows_per_shard=300)
    m = open_manifest(out)
    assert len(m.files) == 4
    assert m.num_rows == 1000
    assert m.class_names == ["class0", "class1", "class2"]
    assert embedding_info(m.schema.field("embedding"))["model"] == "test-model"
    back = m.read()
    assert back.column("id").to_pylist() == table.column("id").to_pylist()
    np.testing.assert_array_equal(
        back.column("embedding").combine_chunks().values.to_numpy(),
        table.column("embedding").combine_chunks().values.to_numpy(),
    )


def test_single_file_output_and_iter_batches_are_bounded(tmp_path: Path) -> None:
    out = write_manifest(embedded_table(n=500), tmp_path / "m.parquet")
    assert out.is_file()
    sizes = [b.num_rows for b in open_manifest(out).iter_batches(batch_size=128)]
    assert max(sizes) <= 128 and sum(sizes) == 500


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    write_manifest(embedded_table(n=10), tmp_path / "m")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_manifest(embedded_table(n=10), tmp_path / "m")
    write_manifest(embedded_table(n=20), tmp_path / "m", overwrite=True)
    assert open_manifest(tmp_path / "m").num_rows == 20


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no-such-dir"):
        open_manifest(tmp_path / "no-such-dir")


def test_empty_directory_and_non_parquet_file_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no .parquet files"):
        open_manifest(tmp_path / "empty")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ManifestError, match="not a readable Parquet"):
        open_manifest(bad)


def test_unfinished_writer_does_not_read_as_complete_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "m"
    table = embedded_table(n=100)
    w = ManifestWriter(out)
    w.write_shard(0, table.slice(0, 50))
    with pytest.raises(ManifestError, match="incomplete"):
        open_manifest(out)
    with pytest.raises(OutputExistsError):
        ManifestWriter(out)
    w2 = ManifestWriter(out, resume=True)
    assert w2.completed_shards() == {0}
    w2.write_shard(1, table.slice(50))
    w2.close()
    assert open_manifest(out).num_rows == 100


_KILL_SCRIPT = """
import sys, numpy as np, pyarrow as pa
from curate.manifests import ManifestWriter
w = ManifestWriter(sys.argv[1], rows_per_shard=20_000)
ids = pa.array([f"r{i}" for i in range(10_000)])
vec = pa.array(np.zeros(10_000, np.float64))
print("started", flush=True)
while True:
    w.write(pa.table({"id": ids, "x": vec}))
"""


@pytest.mark.parametrize("name", ["m", "m.parquet"])
def test_sigkill_during_write_never_leaves_a_complete_looking_manifest(
    tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if name.endswith(".parquet"):
        assert not out.exists()
    else:
        assert any(out.glob("part-*.parquet")), "some shards should have finished"
        with pytest.raises(ManifestError, match="incomplete"):
            open_manifest(out)


def test_run_json_records_step_config_inputs_and_history(tmp_path: Path) -> None:
    first = write_manifest(
        embedded_table(n=10), tmp_path / "a", run_info=make_run_info("ingest", config={"x": 1})
    )
    info = make_run_info(
        "embed", config={"model": "m"}, inputs={"manifest": first}, counts={"rows": 10}
    )
    second = write_manifest(embedded_table(n=10), tmp_path / "b", run_info=info)
    run = open_manifest(second).run_info
    assert run["step"] == "embed" and run["counts"] == {"rows": 10}
    assert [h["step"] for h in run["history"]] == ["ingest", "embed"]
    assert len(run["inputs"]["manifest"]["fingerprint"]) == 16
    assert "pyarrow" in run["versions"]


def test_mismatched_batch_schema_is_a_clear_error(tmp_path: Path) -> None:
    w = ManifestWriter(tmp_path / "m")
    w.write(pa.table({"id": ["a"], "x": [1.0]}))
    with pytest.raises(ManifestError, match="does not match"):
        w.write(pa.table({"id": ["b"], "y": ["no"]}))


def test_step_options_are_checked_the_same_way_for_every_step() -> None:
    from curate.config import resolve_config
    from curate.errors import OptionError
    from curate.pipelines.prune import PruneConfig

    assert resolve_config(PruneConfig, None, {"keep": 0.5}, step="prune").keep == 0.5
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['kep'\].*'keep'"):
        resolve_config(PruneConfig, None, {"kep": 0.5}, step="prune")
    with pytest.raises(OptionError, match="not both"):
        resolve_config(PruneConfig, PruneConfig(keep=0.5), {"keep": 0.2}, step="prune")


def test_list_and_struct_columns_are_compressed_on_disk(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    n = 2000
    classes = pa.FixedSizeListArray.from_arrays(pa.array(np.tile(np.arange(10), n), pa.int16()), 10)
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "soft_classes": classes,
            "labels": pa.array([[1, 2, 3]] * n, pa.list_(pa.int64())),
            "box": pa.array([{"x": 1, "y": 2}] * n),
        }
    )
    m = open_manifest(write_manifest(table, tmp_path / "m"))
    meta = pq.ParquetFile(m.files[0]).metadata.row_group(0)
    codecs = {meta.column(c).path_in_schema: meta.column(c).compression for c in range(4)}
    assert set(codecs.values()) == {"SNAPPY"}, codecs
    assert m.read().column("soft_classes").equals(table.column("soft_classes"))


def test_a_column_name_twice_is_one_clear_error(tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "m").mkdir()
    t = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array([1]), pa.array([2])], names=["id", "x", "x"]
    )
    pq.write_table(t, tmp_path / "m" / "part-00000.parquet")
    with pytest.raises(ManifestError, match="'x' appear more than once"):
        open_manifest(tmp_path / "m").validate()
