"""The local engine runs any step: every row kept in order, counts, resume, progress lines."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.engines import FitStep, Progress, Step, StepError, add_columns, extend_schema, run
from curate.errors import InputError
from curate.manifests.io import Manifest, write_manifest
from tests.conftest import embedded_table


class FirstCoordinate(Step):
    """Adds ``x0`` (the embedding's first value) and counts negative ones."""

    name = "first-coordinate"
    thread_safe = True

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [pa.field("x0", pa.float32())])

    def process(self, table: pa.Table) -> pa.Table:
        x0 = pc.list_element(table.column("embedding"), 0).cast(pa.float32())
        return add_columns(table, {"x0": x0}, self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        return {"negative": int(pc.sum(pc.less(table.column("x0"), 0)).as_py() or 0)}


class Centered(FitStep):
    """Learns the mean first coordinate in ``fit``; adds the centred value per batch."""

    name = "centered"

    def fit(self, manifest: Manifest) -> Centered:
        col = manifest.read(["embedding"]).column("embedding")
        self.mean_ = float(pc.mean(pc.list_element(col, 0).cast(pa.float64())).as_py())
        return self

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [pa.field("centered", pa.float64())])

    def process(self, table: pa.Table) -> pa.Table:
        x0 = pc.list_element(table.column("embedding"), 0).cast(pa.float64())
        return add_columns(
            table, {"centered": pc.subtract(x0, self.mean_)}, self.output_schema(table.schema)
        )


class FailsAfter(FirstCoordinate):
    """Raises on the batch that holds row ``fail_at`` (to interrupt a run)."""

    thread_safe = False

    def __init__(self, fail_at: int | None) -> None:
        super().__init__(None)
        self.fail_at = fail_at
        self.seen: list[str] = []

    def process(self, table: pa.Table) -> pa.Table:
        ids = table.column("id").to_pylist()
        self.seen.extend(ids)
        if self.fail_at is not None and f"r{self.fail_at:05d}" in ids:
            raise RuntimeError("interrupted")
        return super().process(table)


@pytest.fixture
def source(tmp_path):
    return write_manifest(embedded_table(n=1000, dim=8), tmp_path / "in", rows_per_shard=300)


def test_every_row_kept_in_order_with_counts(source, tmp_path):
    out = run(
        FirstCoordinate(), source, tmp_path / "out", shard_rows=250, batch_size=64, progress="off"
    )
    got = out.read()
    want = Manifest(source).read()
    assert got.column("id").to_pylist() == want.column("id").to_pylist()
    x0 = np.array([v[0] for v in want.column("embedding").to_pylist()], np.float32)
    assert np.array_equal(got.column("x0").to_numpy(), x0)
    info = out.run_info
    assert info["step"] == "first-coordinate" and info["engine"] == "local"
    assert info["counts"]["negative"] == int((x0 < 0).sum())
    assert (
        info["counts"]["rows"] == 1000 and info["counts"]["shards"] == 3
    )  # cuts snap to the 300-row groups


def test_same_output_whatever_the_threads(source, tmp_path):
    one = run(FirstCoordinate(), source, tmp_path / "a", workers=1, progress="off").read()
    two = run(FirstCoordinate(), source, tmp_path / "b", workers=2, progress="off").read()
    assert one.equals(two)


def test_fit_step_is_fitted_once_then_transforms(source, tmp_path):
    step = Centered()
    out = run(step, source, tmp_path / "out", progress="off").read()
    assert step.fitted
    assert abs(float(np.mean(out.column("centered").to_numpy()))) < 1e-6


def test_killed_run_resumes_from_finished_shards(source, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="interrupted"):
        run(FailsAfter(fail_at=700), source, out, shard_rows=250, batch_size=50, progress="off")
    with pytest.raises(Exception, match="incomplete manifest"):
        Manifest(out)  # never reads as complete
    again = FailsAfter(fail_at=None)
    m = run(again, source, out, shard_rows=250, batch_size=50, progress="off")
    assert len(again.seen) < 1000  # finished shards were skipped
    assert (
        m.read().column("id").to_pylist() == Manifest(source).read(["id"]).column("id").to_pylist()
    )
    assert m.run_info["counts"]["shards_resumed"] >= 1


def test_resume_with_other_config_is_refused(source, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run(FailsAfter(fail_at=700), source, out, shard_rows=250, progress="off")
    other = FailsAfter(fail_at=None)
    other.name = "something-else"
    with pytest.raises(InputError, match="different step"):
        run(other, source, out, shard_rows=250, progress="off")


def test_a_step_that_drops_rows_is_an_error(source, tmp_path):
    class Drops(FirstCoordinate):
        def process(self, table):
            return super().process(table).slice(1)

    with pytest.raises(StepError, match="keep every row"):
        run(Drops(), source, tmp_path / "out", progress="off")


def test_progress_prints_one_line_per_shard_in_logs():
    buf = io.StringIO()
    with Progress("embed", 300, mode="auto", stream=buf) as bar:  # StringIO is no terminal
        for i in range(3):
            bar.advance(100)
            bar.shard_done(i, 3)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "embed: 300 rows to process"
    assert len(lines) == 4 and lines[-1].startswith("embed: shard 3/3: 300/300 rows")
    assert "rows/s" in lines[-1] and "ETA" in lines[-1]


def test_a_heartbeat_logs_only_when_due():
    from curate.engines.progress import Heartbeat

    got = []
    every, never = Heartbeat(got.append, seconds=0.0), Heartbeat(got.append, seconds=3600.0)
    for i in range(3):
        every(f"step {i}")
        never("never")
    Heartbeat(None, seconds=0.0)("no log: nothing happens")
    assert got == ["step 0", "step 1", "step 2"]
