"""The Ray Data engine: the same step objects, run as a pool of Ray actors.

A run is a Ray Data pipeline over the shards still to do: a read stage (tasks) yields each
shard's rows in batches tagged with their place in the manifest, the step runs in
``map_batches`` on an actor pool (``setup()`` once per actor, ``num_gpus``/``num_cpus`` from
the step's :class:`~curate.step.Resources`), and the driver writes each shard
atomically as its batches arrive, in order. A :class:`~curate.step.FitStep` is
fitted first in one Ray task and the fitted object is shipped to every actor; independent
work inside the fit (row ranges, batches of clusters) runs as Ray tasks
(:mod:`curate.engines.workers`). Shards, resume
and run.json are the local engine's (:class:`~curate.engines.local.ShardedRun`), so a Ray
run's output is an ordinary manifest, equal row for row to the local run's, and a killed
Ray run resumes (under either engine) from the shards it finished.

Ray's own ``write_parquet`` is not used: it is not atomic, and a half-written directory would
read as whole.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from curate.config import resolve_config
from curate.engines.local import ShardedRun, save_counts
from curate.engines.options import RunOptions
from curate.engines.progress import Progress
from curate.errors import require
from curate.manifests.io import Manifest
from curate.step import Step

#: Hidden columns that carry a batch's shard and first row through the pipeline.
SHARD_COL, ROW_COL = "__curate_shard", "__curate_row"
#: Actors when neither the options nor the cluster say (at most this many).
MAX_ACTORS = 8


def _ray():
    return require("ray", "ray", package="ray[data]")


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Use the running Ray session, connect to ``address``, or start a local one.

    A local session binds loopback only, has no dashboard and sends no usage stats; it gets
    at least 4 logical CPUs (twice the cores, at most 16) so that the actors never starve the
    read tasks on a small machine. A session started here is shut down on exit.
    """
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        cores = os.cpu_count() or 1
        ray.init(
            num_cpus=num_cpus or max(4, min(16, 2 * cores)),
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        yield ray
    finally:
        ray.shutdown()


def _read_shards(descriptors: dict[str, Any], path: str, batch_size: int):
    """Read stage: one shard descriptor in, its rows out in batches, tagged."""
    m = Manifest(path)
    for shard, lo, hi in zip(
        descriptors["shard"], descriptors["lo"], descriptors["hi"], strict=True
    ):
        row = int(lo)
        for batch in m.iter_batches(batch_size=batch_size, rows=(int(lo), int(hi))):
            table = pa.Table.from_batches([batch])
            n = table.num_rows
            table = table.append_column(SHARD_COL, pa.array(np.full(n, shard, np.int32)))
            yield table.append_column(ROW_COL, pa.array(np.arange(row, row + n, dtype=np.int64)))
            row += n


class _StepActor:
    """One Ray actor: a copy of the (fitted) step, set up once, applied to tagged batches."""

    def __init__(self, step: Step) -> None:
        self.step = step
        step.setup()

    def __call__(self, table: pa.Table) -> pa.Table:
        tags = (table.column(SHARD_COL), table.column(ROW_COL))
        rows = tags[1].to_numpy()
        data = table.drop_columns([SHARD_COL, ROW_COL])
        if len(rows) and rows[-1] - rows[0] != len(rows) - 1:  # blocks are contiguous runs
            raise RuntimeError("ray engine: a block's rows are not contiguous")
        first = int(rows[0]) if len(rows) else 0
        out = self.step(data, slice(first, first + data.num_rows))
        return out.append_column(SHARD_COL, tags[0]).append_column(ROW_COL, tags[1])


def _fit_remote(step, path: str):
    from curate.engines.workers import RayWorkers, fit_step

    return fit_step(step, Manifest(path), RayWorkers())  # the fit's items: Ray tasks


def _pool_size(ray, step: Step, opt: RunOptions, shards: int) -> int:
    if opt.workers:
        return opt.workers
    res = ray.cluster_resources()
    by_cpu = int(res.get("CPU", 1) // max(step.resources.cpus, 1e-9)) - 1  # one for reads
    by_gpu = int(res.get("GPU", 0) // step.resources.gpus) if step.resources.gpus else by_cpu
    return max(1, min(MAX_ACTORS, by_cpu, by_gpu, shards))


def _by_shard(batches: Iterator[pa.Table]) -> Iterator[tuple[int, pa.Table]]:
    """``(shard, rows)`` runs of the tagged batches, tags dropped (a block may hold several)."""
    for table in batches:
        shards = table.column(SHARD_COL).to_numpy()
        data = table.drop_columns([SHARD_COL, ROW_COL])
        cuts = [0, *(np.flatnonzero(np.diff(shards)) + 1).tolist(), len(shards)]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            if hi > lo:
                yield int(shards[lo]), data.slice(lo, hi - lo)


def _write_stream(job: ShardedRun, batches: Iterator[pa.Table], bar: Progress) -> None:
    """Write the tagged batches (arriving in order) shard by shard, each atomically."""
    writer, step = job.writer, job.step
    current, stream, counts = None, None, Counter()

    def finish() -> None:
        save_counts(writer, current, counts)
        stream.finish(keep_empty=True)
        bar.shard_done(current, len(job.shards))

    try:
        for shard, out in _by_shard(batches):
            if shard != current:
                if stream is not None:
                    finish()
                current, stream, counts = shard, writer.open_shard(shard), Counter()
            out = out.replace_schema_metadata(writer.schema.metadata)
            stream.write(out)
            counts.update(step.count(out))
            bar.advance(out.num_rows)
        if stream is not None:
            finish()
    except BaseException:
        if stream is not None:
            stream.abort()
        raise


def run_ray(
    step: Step,
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    options: RunOptions | None = None,
    run_info: dict[str, Any] | None = None,
    ray_address: str | None = None,
    **kwargs: Any,
) -> Manifest:
    """Run ``step`` over ``manifest`` into ``out`` on Ray Data (same output as ``run_local``).

    Parameters
    ----------
    step, manifest, out, options, run_info, **kwargs
        As :func:`~curate.engines.local.run_local`; ``workers`` is the actor-pool size
        (default: what the cluster's CPUs/GPUs allow for the step's resources, at most 8).
        On a cluster, ``manifest`` and ``out`` must be on storage every node sees.
    ray_address
        ``ray://host:10001`` or ``host:6379`` of a running cluster (``ray start --head``);
        None uses the session already initialised in this process, else starts a local one.
    """
    opt = resolve_config(RunOptions, options, kwargs, step="run")
    with ray_session(ray_address) as ray:
        job = ShardedRun(step, manifest, out, opt, workers=1)
        path = str(job.m.path.resolve())
        fit_task = ray.remote(num_cpus=step.resources.cpus, num_gpus=step.resources.gpus)(
            _fit_remote
        )
        job.fit(lambda s, m: ray.get(fit_task.remote(s, path)))
        todo = job.open()
        rows_todo = job.rows_in(todo)
        t0 = time.perf_counter()
        with Progress(job.step.name, rows_todo, mode=opt.progress) as bar:
            if job.done:
                bar.line(f"resuming: {len(job.done)} of {len(job.shards)} shards already done")
            if todo:
                batches = _pipeline(ray, job, todo, opt, path)
                try:
                    _write_stream(job, batches, bar)
                except BaseException:
                    job.writer.abort()
                    raise
        return job.close("ray", time.perf_counter() - t0, rows_todo, run_info)


def _pipeline(ray, job: ShardedRun, todo: list[int], opt: RunOptions, path: str):
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # shards and rows arrive in manifest order
    ctx.enable_progress_bars = False
    items = [{"shard": i, "lo": job.shards[i][0], "hi": job.shards[i][1]} for i in todo]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        _read_shards,
        batch_size=1,
        batch_format="numpy",
        fn_kwargs={"path": path, "batch_size": opt.batch_size},
        num_cpus=1,
    )
    res = job.step.resources
    ds = ds.map_batches(
        _StepActor,
        fn_constructor_args=(job.step,),
        compute=ray.data.ActorPoolStrategy(size=_pool_size(ray, job.step, opt, len(todo))),
        batch_size=None,
        batch_format="pyarrow",
        num_cpus=res.cpus,
        num_gpus=res.gpus or None,
        **({"memory": res.memory} if res.memory else {}),
    )
    return ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)
