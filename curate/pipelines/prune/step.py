"""Pruning as a step on the engine contract: fit = the prune plan (sample, assign + spill,
per-cluster work, join); per batch = the ``keep`` / ``prune_reason`` (and fresh cluster)
columns of its rows, read from the plan's per-range files."""

from __future__ import annotations

import shutil
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.engines.workers import ThreadWorkers, Workers
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.cluster import CENTROID_SIM, CLUSTER, invalid_error_messages, with_columns
from curate.pipelines.prune.base import KEEP, PRUNE_REASON, PruneConfig
from curate.pipelines.prune.plan import Decided, Plan
from curate.pipelines.prune.scan import id_strings
from curate.pipelines.prune.space import default_scratch
from curate.step import FitStep, add_columns


class PruneDecision(FitStep):
    """Decide which rows to keep (``fit``), then annotate every row (``process_rows``).

    Parameters
    ----------
    config
        A :class:`~curate.pipelines.prune.base.PruneConfig`.
    scratch
        Where the plan spills (default: beside the input manifest); removed by :meth:`finish`.
    progress
        Progress mode of the fit's phases.
    overwrite
        Start over when the scratch holds an interrupted prune with other options.

    Attributes
    ----------
    decided_
        Where each range's decisions are, with counts, the explain table and timings.
    """

    name = "prune"
    thread_safe = True
    requires = ()  # a LAION-style Parquet without ids is pruned as it is; ids are derived

    def __init__(
        self, config: PruneConfig, *, scratch=None, progress: str = "auto", overwrite: bool = False
    ) -> None:
        super().__init__(config)
        self.scratch, self.progress, self.overwrite = scratch, progress, overwrite

    def config_record(self) -> dict:
        return asdict(self.config)

    def fit(self, manifest: Manifest, workers: Workers | None = None) -> PruneDecision:
        from curate.pipelines.prune import get_method

        scratch = Path(self.scratch or default_scratch(manifest.path))
        plan = Plan(
            manifest,
            self.config,
            get_method(self.config.method),
            scratch=scratch,
            workers=workers or ThreadWorkers(),
            progress=self.progress,
            overwrite=self.overwrite,
        )
        self.decided_: Decided = plan.run()
        self.scratch_ = str(scratch)
        self.timings_ = self.decided_.timings
        return self

    def finish(self) -> None:
        """The rows are written: the scratch directory goes."""
        shutil.rmtree(self.scratch_, ignore_errors=True)

    def __getstate__(self) -> dict:
        """Shipped to Ray actors without this process's open files and lock."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_finals", "_lock")}

    # -- per batch -------------------------------------------------------------------------
    def _final(self, run: int) -> pa.Table:
        cache = self.__dict__.setdefault("_finals", {})
        lock = self.__dict__.setdefault("_lock", threading.Lock())
        with lock:
            if run not in cache:
                path = Path(self.decided_.final_dir) / f"run-{run:06d}.arrow"
                cache[run] = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            return cache[run]

    def _slice(self, rows: slice) -> pa.Table:
        chunks = self.decided_.chunks
        starts = np.array([lo for lo, _ in chunks])
        first = int(np.searchsorted(starts, rows.start, side="right")) - 1
        parts, at = [], rows.start
        for run in range(max(first, 0), len(chunks)):
            lo, hi = chunks[run]
            if at >= rows.stop:
                break
            take = min(hi, rows.stop) - at
            parts.append(self._final(run).slice(at - lo, take))
            at += take
        return pa.concat_tables(parts) if parts else self._final(0).slice(0, 0)

    def _columns(self, batch, rows: slice) -> dict[str, pa.Array]:
        d = self.decided_
        f = self._slice(rows)
        cols: dict[str, pa.Array] = {}
        if d.computed_clusters:
            cols[CLUSTER] = f.column("cluster").combine_chunks()
            cols[CENTROID_SIM] = f.column("centroid_sim").combine_chunks()
        if d.uses_embedding and (d.any_invalid or S.ERROR in batch.schema.names):
            existing = batch.column(S.ERROR) if S.ERROR in batch.schema.names else None
            codes = f.column("ecode").to_numpy()
            cols[S.ERROR] = invalid_error_messages(codes, existing, "prune")
        cols[KEEP] = f.column("keep").combine_chunks()
        cols[PRUNE_REASON] = f.column("prune_reason").combine_chunks()
        return cols

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cache = self.__dict__.setdefault("_schemas", {})
        key = schema.to_string(show_schema_metadata=False)
        if key not in cache:
            empty = pa.RecordBatch.from_arrays(
                [pa.array([], f.type) for f in schema], schema=schema
            )
            out = with_columns(empty, self._columns(empty, slice(0, 0))).schema
            if S.ID not in out.names:
                out = out.insert(0, pa.field(S.ID, pa.string()))
            cache[key] = out
        return cache[key].with_metadata(schema.metadata)

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        cols = self._columns(table, rows)
        if S.ID not in table.column_names:
            cols[S.ID] = id_strings(table, self.decided_.id_source, rows.start)
        return add_columns(table, cols, self.output_schema(table.schema))
