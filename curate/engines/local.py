"""The local engine: runs any step over a manifest in this process, shard by shard, resumable.

Rows are cut into shards of about ``shard_rows`` rows at row-group starts; each shard is read
in batches, passed through the step and written atomically (a temporary file renamed when
whole, with its counts beside it), so a killed run resumes from the shards it finished. A
thread-safe step runs several shards at once on threads; the output is the same whatever
their number.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate._malloc import reuse_heap
from curate.config import resolve_config
from curate.engines.options import RunOptions
from curate.engines.processes import prepared, process_pool
from curate.engines.progress import Progress
from curate.engines.workers import ThreadWorkers, fit_step
from curate.errors import InputError
from curate.manifests import parallel as P
from curate.manifests.io import Manifest, ManifestWriter, open_manifest
from curate.manifests.runinfo import fingerprint, make_run_info
from curate.step import NOT_PREPARED, FitStep, Step

#: Resume record inside an output directory that is still in progress.
RESUME_MARKER = "_CURATE_RESUME.json"


def plan_shards(
    m: Manifest, shard_rows: int, workers: int, *, exact: bool = False
) -> list[tuple[int, int]]:
    """Row ranges, one per output shard: about ``shard_rows`` rows each (cuts move to the
    nearest row-group start, so no two shards decode one row group), and at least ``workers``
    of them when the manifest is large enough to share out. ``exact`` cuts at ``shard_rows``
    whatever the row groups (:attr:`~curate.step.Step.exact_shards`)."""
    n = m.num_rows
    parts = max(workers, math.ceil(n / shard_rows)) if n else 0
    starts = None if exact else m.row_group_starts()
    return P.row_ranges(n, parts, max_rows=shard_rows, starts=starts)


def _resume_key(step: Step, m: Manifest, shards: list) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "step": step.name,
                "config": step.config_record(),
                "input": fingerprint(m.path),
                "rows": m.num_rows,
                "shards": [list(s) for s in shards],
            },
            default=str,
        )
    )


def check_resume(out: Path, key: dict[str, Any]) -> list[tuple[int, int]]:
    """Record this run's key in ``out``; a resumed run must match it. Returns the shard plan
    to use (the recorded one when resuming, so a different worker count changes nothing)."""
    marker = out / RESUME_MARKER
    if marker.exists():
        before = json.loads(marker.read_text())
        same = {k: before.get(k) == key[k] for k in ("step", "config", "input", "rows")}
        if not all(same.values()):
            diff = [k if k != "input" else "input manifest" for k, ok in same.items() if not ok]
            if not same["config"]:  # name the options that differ
                was, now = before.get("config") or {}, key["config"]
                keys = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
                diff[diff.index("config")] = ", ".join(keys) or "config"
            raise InputError(
                f"{out}: holds an interrupted {before.get('step')} run with a different "
                f"{', '.join(diff)}; rerun with the same options to resume, or pass "
                "--overwrite to start over."
            )
        return [tuple(s) for s in before["shards"]]
    if any(out.glob("part-*.parquet")):
        raise InputError(
            f"{out}: holds shards this run did not write; pass --overwrite to replace them."
        )
    tmp = out / f".{RESUME_MARKER}.tmp"
    tmp.write_text(json.dumps(key))
    os.replace(tmp, marker)
    return [tuple(s) for s in key["shards"]]


def counts_path(writer: ManifestWriter, index: int) -> Path:
    """Where shard ``index``'s counts wait until the run ends (merged into run.json)."""
    return writer.out / f"_part-{index:05d}.counts.json"


def save_counts(writer: ManifestWriter, index: int, counts: dict[str, int]) -> None:
    """Write a shard's counts atomically; call before the shard's rename, so that a shard
    that exists always has its counts."""
    path = counts_path(writer, index)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(counts)))
    os.replace(tmp, path)


def _gather_counts(writer: ManifestWriter, shards: int) -> dict[str, int]:
    total: Counter = Counter()
    for i in range(shards):
        path = counts_path(writer, i)
        if path.exists():
            total.update(json.loads(path.read_text()))
            path.unlink()
    return dict(total)


class ShardedRun:
    """What every engine does around a step: fit, set up, plan and resume shards, write
    run.json. An engine supplies how the pending shards get processed and written."""

    def __init__(self, step: Step, manifest, out, opt: RunOptions, *, workers: int) -> None:
        self.step, self.opt = step, opt
        self.m = open_manifest(manifest).validate(required=step.requires)
        self.timings: dict[str, float] = {}
        self.writer: ManifestWriter | None = None
        self._out, self._workers = out, workers

    def fit(self, fit_fn=None) -> None:
        """Fit a :class:`FitStep` that is not fitted yet (``fit_fn(step, manifest)`` runs it
        elsewhere and returns the fitted step; default: here, on this engine's threads)."""
        step = self.step
        if isinstance(step, FitStep) and not step.fitted:
            t0 = time.perf_counter()
            if fit_fn:
                self.step = fit_fn(step, self.m)
            else:
                self.step = fit_step(step, self.m, ThreadWorkers(self.opt.workers))
            self.timings["fit"] = round(time.perf_counter() - t0, 4)

    def open(self) -> list[int]:
        """Open the output and return the shards still to do (finished ones are skipped)."""
        self.writer = ManifestWriter(
            self._out,
            overwrite=self.opt.overwrite,
            resume=self.opt.resume and not self.opt.overwrite,
            schema=self.step.output_schema(self.m.schema),
        )
        shards = plan_shards(
            self.m, self.opt.shard_rows, self._workers, exact=self.step.exact_shards
        )
        self.shards = check_resume(self.writer.out, _resume_key(self.step, self.m, shards))
        self.done = self.writer.completed_shards()
        return [i for i in range(len(self.shards)) if i not in self.done]

    def rows_in(self, shards: list[int]) -> int:
        return sum(self.shards[i][1] - self.shards[i][0] for i in shards)

    def close(self, engine: str, seconds: float, rows: int, run_info: dict | None) -> Manifest:
        """Merge counts, write run.json, mark the output complete."""
        assert self.writer is not None
        self.timings["process"] = round(seconds, 4)
        self.timings["rows_per_s"] = round(rows / seconds, 2) if rows and seconds else 0.0
        counts = {"rows": self.m.num_rows, **_gather_counts(self.writer, len(self.shards))}
        counts["shards"], counts["shards_resumed"] = len(self.shards), len(self.done)
        info = make_run_info(
            self.step.name,
            config=self.step.config_record(),
            inputs={"manifest": self.m.path},
            counts=counts,
            timings=self.timings,
            engine=engine,
            **self.step.run_info(),
        )
        for key, value in (run_info or {}).items():  # the caller's fields win, dicts merge
            both = isinstance(value, dict) and isinstance(info.get(key), dict)
            info[key] = {**info[key], **value} if both else value
        self.writer.close(info)
        (self.writer.out / RESUME_MARKER).unlink(missing_ok=True)
        self.step.finish()
        return Manifest(self.writer.out)


def _batches(m: Manifest, rows, opts) -> Iterator[tuple[pa.Table, Any]]:
    """A shard's batches, each with the step's stage run ahead on it when it has one."""
    tables = (
        b if isinstance(b, pa.Table) else pa.Table.from_batches([b])
        for b in m.iter_batches(batch_size=opts["batch_size"], rows=rows, prefetch=1)
    )
    if opts["stage"] is None:
        return ((t, NOT_PREPARED) for t in tables)
    return prepared(tables, opts["stage"], opts["pool"])


#: Output batches are gathered up to this many rows or bytes before a write, so a step with
#: small batches (embed: one forward pass, 256 rows) still writes few, large row groups. The
#: window also bounds memory: while batches wait, the allocators cannot reuse the pages around
#: them, so each waiting 64-row relabel batch held ~7 MB more (16,384 rows: 2.3 GB at
#: 10,000 rows; 2,048 rows: flat at 1.37 GB after 60 batches; BENCHMARKS.md, Relabel).
WRITE_ROWS, WRITE_BYTES = 2_048, 32 << 20


def _run_shard(step: Step, m: Manifest, writer: ManifestWriter, index: int, rows, opts) -> None:
    counts: Counter = Counter()
    stream = writer.open_shard(index)
    pending: list[pa.Table] = []
    pending_rows = pending_bytes = 0
    try:
        lo = rows[0]
        for batch, ready in _batches(m, rows, opts):
            out = step(batch, slice(lo, lo + batch.num_rows), ready)
            lo += batch.num_rows
            pending.append(out)
            pending_rows, pending_bytes = pending_rows + out.num_rows, pending_bytes + out.nbytes
            if pending_rows >= WRITE_ROWS or pending_bytes >= WRITE_BYTES:
                stream.write(pa.concat_tables(pending))
                pending, pending_rows, pending_bytes = [], 0, 0
            counts.update(step.count(out))
            opts["progress"].advance(batch.num_rows)
        if pending:
            stream.write(pa.concat_tables(pending))
        save_counts(writer, index, counts)
    except BaseException:
        stream.abort()
        raise
    stream.finish(keep_empty=True)
    opts["progress"].shard_done(index, opts["shards"])


def run_local(
    step: Step,
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    options: RunOptions | None = None,
    run_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Manifest:
    """Run ``step`` over every row of ``manifest`` into the directory ``out``.

    Parameters
    ----------
    step
        A :class:`Step` (a :class:`FitStep` is fitted first unless already fitted).
    manifest, out
        Input manifest; output directory (``part-NNNNN.parquet`` shards and run.json).
    options, **kwargs
        A :class:`~curate.engines.options.RunOptions`, or its fields as keywords
        (``overwrite``, ``resume``, ``shard_rows``, ``batch_size``, ``workers``, ``progress``).
        ``workers`` threads run a ``thread_safe`` step; other steps run on this thread.
    run_info
        Extra fields for run.json (they win over the engine's; dicts are merged).

    Returns
    -------
    Manifest
        The output; its run.json holds the step, config, counts (summed :meth:`Step.count`)
        and timings.
    """
    opt = resolve_config(RunOptions, options, kwargs, step="run")
    workers = (opt.workers or P.default_workers()) if step.thread_safe else 1
    job = ShardedRun(step, manifest, out, opt, workers=workers)
    job.fit()
    t1 = time.perf_counter()
    job.step.setup()
    job.timings["setup"] = round(time.perf_counter() - t1, 4)
    todo = job.open()
    rows_todo = job.rows_in(todo)
    stage = job.step.prepare_stage()
    pool = process_pool(stage.workers, stage.init) if stage and todo else None  # before threads
    t2 = time.perf_counter()
    try:
        # batch after batch allocates the same large buffers (a model's activations, decoded
        # pixels): served from the heap, each reuses the last one's pages (curate._malloc)
        with reuse_heap(), Progress(job.step.name, rows_todo, mode=opt.progress) as bar:
            if job.done:
                bar.line(f"resuming: {len(job.done)} of {len(job.shards)} shards already done")
            opts = {"batch_size": opt.batch_size, "progress": bar, "shards": len(job.shards)}
            opts.update(stage=stage, pool=pool)
            P.ordered_map(
                lambda i: _run_shard(job.step, job.m, job.writer, i, job.shards[i], opts),
                todo,
                workers,
            )
    except BaseException:
        job.writer.abort()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return job.close("local", time.perf_counter() - t2, rows_todo, run_info)
