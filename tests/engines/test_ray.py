"""The Ray engine runs the same step objects as the local engine, with the same output."""

from __future__ import annotations

import pytest

from curate.engines import ray_session, run, run_local, run_ray
from curate.manifests.io import Manifest, write_manifest
from tests.conftest import embedded_table
from tests.engines._ray import ray, ray_local  # noqa: F401 (the module's Ray session)
from tests.engines.test_local import Centered, FailsAfter, FirstCoordinate

pytestmark = pytest.mark.ray


@pytest.fixture
def source(tmp_path):
    return write_manifest(embedded_table(n=1200, dim=8), tmp_path / "in", rows_per_shard=400)


def test_per_batch_step_same_rows_order_and_counts_as_local(source, tmp_path):
    local = run_local(
        FirstCoordinate(),
        source,
        tmp_path / "local",
        shard_rows=300,
        batch_size=100,
        progress="off",
    )
    on_ray = run(
        FirstCoordinate(),
        source,
        tmp_path / "ray",
        engine="ray",
        shard_rows=300,
        batch_size=100,
        progress="off",
        workers=2,
    )
    assert on_ray.read().equals(local.read())
    assert on_ray.run_info["engine"] == "ray"
    assert on_ray.run_info["counts"] == local.run_info["counts"]
    assert on_ray.read().schema.metadata == local.read().schema.metadata


def test_fit_step_is_fitted_on_a_worker_and_shipped(source, tmp_path):
    local = run_local(Centered(), source, tmp_path / "local", progress="off").read()
    on_ray = run_ray(Centered(), source, tmp_path / "ray", progress="off", workers=2).read()
    assert on_ray.equals(local)


def test_failed_ray_run_never_reads_complete_and_reruns_to_the_local_output(source, tmp_path):
    out = tmp_path / "ray"
    with pytest.raises(Exception, match="interrupted"):
        run_ray(
            FailsAfter(fail_at=1000),
            source,
            out,
            shard_rows=200,
            batch_size=100,
            progress="off",
            workers=1,
        )
    with pytest.raises(Exception, match="incomplete manifest"):
        Manifest(out)
    done_before = len(list(out.glob("part-*.parquet")))  # Ray may stop before any is whole
    _finish_on_ray_as_local(source, out, tmp_path, done_before)


def _finish_on_ray_as_local(source, out, tmp_path, finished: int) -> None:
    """Rerun the interrupted ``out`` on Ray: it resumes ``finished`` shards and ends equal to
    an uninterrupted local run."""
    opts = {"shard_rows": 200, "batch_size": 100, "progress": "off"}
    resumed = run_ray(FailsAfter(fail_at=None), source, out, workers=1, **opts)
    assert resumed.run_info["counts"]["shards_resumed"] == finished
    local = run_local(FailsAfter(fail_at=None), source, tmp_path / "local", **opts)
    assert resumed.read().equals(local.read())


def test_ray_resumes_the_shards_an_interrupted_run_finished(source, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="interrupted"):
        run_local(
            FailsAfter(fail_at=1000), source, out, shard_rows=200, batch_size=100, progress="off"
        )
    finished = len(list(out.glob("part-*.parquet")))
    assert finished == 2  # shards snap to the 400-row groups: rows 0-799 were done
    _finish_on_ray_as_local(source, out, tmp_path, finished)


def test_ray_address_needs_the_ray_engine(source, tmp_path):
    with pytest.raises(ValueError, match="needs engine='ray'"):
        run(FirstCoordinate(), source, tmp_path / "x", ray_address="127.0.0.1:6379")


def test_per_group_work_as_ray_tasks_equals_threads():
    import numpy as np

    from curate.engines.workers import RayWorkers, ThreadWorkers

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float16)
    cluster = rng.integers(0, 7, 500)
    groups = [np.flatnonzero(cluster == c) for c in range(7)]

    def fn(members):
        x = vectors[members].astype(np.float32)
        return (x @ x.T).sum(axis=1)

    local = ThreadWorkers().map(fn, groups, cost=[len(g) for g in groups])
    with ray_session():
        on_ray = RayWorkers().map(fn, groups, cost=[len(g) for g in groups])
    assert len(on_ray) == 7
    for a, b in zip(local, on_ray, strict=True):
        np.testing.assert_array_equal(a, b)
