"""The prune plan: memory bounded by one cluster, not by the pool, under either engine.

Phases, each resumable from what it left in the scratch directory:

1. **model**: k-means on a seeded sample of bounded size (or the clusters already in the
   manifest); ``model.npz``.
2. **scan**: every range of rows read, validated, assigned and spilled partitioned by cluster
   (:mod:`~curate.pipelines.prune.scan`); one spill run per range.
3. **per cluster**: the method's work inside each cluster, one cluster at a time
   (:mod:`~curate.pipelines.prune.groups`), then its global decision from per-cluster
   aggregates and radix-selected cut-offs (``decision.json``).
4. **finalize**: each range's decisions joined back in manifest order (``final/``), which
   the engine then writes with every row of the input.

Work items run on the engine's workers (threads locally, Ray tasks under Ray). Per-row state
in this process is never more than the counts; the vectors live in the spill.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from curate.engines.progress import Progress
from curate.engines.spill import Spill
from curate.engines.workers import Workers
from curate.errors import InputError, ManifestError
from curate.manifests import parallel as P
from curate.manifests.io import Manifest
from curate.manifests.runinfo import Timer, fingerprint
from curate.pipelines import _embeddings as E
from curate.pipelines._kmeans import _torch_cuda
from curate.pipelines.prune import groups as G
from curate.pipelines.prune import scratch as S
from curate.pipelines.prune import summary
from curate.pipelines.prune.base import PruneConfig, PruneMethod, target_count
from curate.pipelines.prune.finalize import FinalSpec, finalize_runs
from curate.pipelines.prune.model import clustering_model
from curate.pipelines.prune.scan import CHUNK_ROWS, ScanSpec, ids_source, scan_chunk
from curate.pipelines.prune.similarity import residual_projection
from curate.pipelines.prune.space import check_room

#: Bump when the scratch layout changes: an older scratch is then refused, not misread.
PLAN_VERSION = 1
#: Members per per-cluster work item (consecutive clusters are batched up to this), and at
#: most ITEMS items whatever the pool: the join opens every item once per group of runs.
ITEM_ROWS = 1 << 16
ITEMS = 256
#: Consecutive runs joined by one work item (each opens the per-cluster files once).
JOIN_RUNS = 8


@dataclass
class Decided:
    """What the fit leaves for the per-batch part: where each range's decisions are."""

    final_dir: str
    chunks: list[tuple[int, int]]
    computed_clusters: bool
    any_invalid: bool  # some embedding was unusable: the error column explains it
    uses_embedding: bool
    id_source: str
    centroids: np.ndarray | None
    counts: dict = field(default_factory=dict)
    explain: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


class Plan:
    """One prune of ``manifest`` with ``cfg``, its scratch directory and its workers."""

    def __init__(
        self,
        manifest: Manifest,
        cfg: PruneConfig,
        method: PruneMethod,
        *,
        scratch: Path,
        workers: Workers,
        progress: str = "auto",
        overwrite: bool = False,
    ) -> None:
        self.m, self.cfg, self.method = manifest, cfg, method
        self.scratch, self.workers, self.progress_mode = Path(scratch), workers, progress
        self.overwrite = overwrite
        self.timer = Timer()
        self.k, self.n_valid, self.target = 1, 0, 0
        self.centroids: np.ndarray | None = None
        self._item_sizes: np.ndarray | None = None

    # -- bookkeeping -----------------------------------------------------------------------
    def _key(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "config": asdict(self.cfg),
            "input": str(self.m.path.resolve()),
            "fingerprint": fingerprint(self.m.path),
            "rows": self.m.num_rows,
        }

    def _bar(self, label: str, total: int) -> Progress:
        return Progress(f"prune: {label}", total, mode=self.progress_mode)

    def save_array(self, name: str, values: np.ndarray) -> str:
        return S.save_array(self.scratch, name, values)

    def forest_edges(self) -> int:
        return S.forest_edges(self.scratch)

    def stream_forest(self):
        return S.stream_forest(self.scratch)

    def stream_decided(self, what: str, *, dup: bool):
        return S.stream_decided(self.scratch, what, dup=dup)

    def stream_keys(self, *, negate: bool):
        return S.stream_keys(self.scratch, self._chunk_list, negate=negate)

    # -- phase 1: the model ----------------------------------------------------------------
    def _model(self, col: E.EmbeddingColumn) -> tuple[bool, bool]:
        """(fresh clusters?, centroids rebuilt from members?) and ``self.centroids``/``k``."""
        with self._bar("sample + k-means", self.m.num_rows):
            model = clustering_model(self.m, self.cfg, col, self.scratch, self.workers)
        self.timer.seconds.update(model.timings)
        self.centroids, self.k = model.centroids, model.k
        return model.fresh, model.rebuild

    # -- phase 2: scan ---------------------------------------------------------------------
    def _chunks(self) -> list[tuple[int, int]]:
        n = self.m.num_rows
        return S.recorded(
            self.scratch,
            "chunks",
            lambda: P.row_ranges(
                n,
                math.ceil(n / CHUNK_ROWS),
                max_rows=CHUNK_ROWS,
                min_rows=1,
                starts=self.m.row_group_starts(),
            ),
        )

    def _items_of(self) -> list[list[int]]:
        per = max(ITEM_ROWS, -(-int(self.sizes.sum()) // ITEMS))
        return S.recorded(self.scratch, "items", lambda: G.batches(self.sizes, per))

    def _scan(self, spec: ScanSpec, chunks) -> Spill:
        spill = Spill(spec.spill, spec.parts)
        Path(spec.spill).mkdir(exist_ok=True)
        todo = [(i, lo, hi) for i, (lo, hi) in enumerate(chunks) if not spill.done(i)]
        if todo:
            per_row = 16 + (2 * spec.embedding.dim if spec.vectors else 0) + (40 if spec.ids else 0)
            check_room(self.scratch, per_row * sum(hi - lo for _, lo, hi in todo))
        with self._bar("assign + spill", sum(hi - lo for _, lo, hi in todo)) as bar:
            self.workers.map(
                partial(scan_chunk, spec),
                todo,
                cost=[hi - lo for _, lo, hi in todo],
                gpus=self._gpus(),
                one_thread_each=False,  # FAISS's sims depend on its thread count
                on_done=lambda i, _: bar.advance(todo[i][2] - todo[i][1]),
            )
        return spill

    def _gpus(self) -> float:
        return 0.5 if self.workers.name == "ray" and getattr(self.workers, "gpus", 0) else 0.0

    def _scan_spec(self, col, fresh: bool, rebuild: bool) -> ScanSpec:
        method, cfg = self.method, self.cfg
        clustered = method.needs_clusters
        dedup = method.needs_vectors(cfg)
        return ScanSpec(
            path=str(self.m.path),
            spill=str(self.scratch / "spill"),
            embedding=col,
            parts=self.k if clustered else 1,
            centroids=self.centroids if clustered and fresh else None,
            existing=clustered and not fresh,
            vectors=dedup,
            ids=self.id_source if dedup else None,
            key=method.key_column,
            member_sums=rebuild,
        )

    def _counts_from_runs(self, spill: Spill, spec: ScanSpec, rebuild: bool) -> dict:
        codes = np.zeros(len(E.INVALID_REASONS) + 1, np.int64)
        n_key = 0
        sums = None
        for run in spill.runs():
            ecode = spill.section(run, "ecode")
            codes += np.bincount(ecode, minlength=len(codes))
            if spec.key:
                key = spill.section(run, "key")
                n_key += int(np.isfinite(key).sum())
            if rebuild:
                part = spill.section(run, "sums")
                sums = part.copy() if sums is None else sums + part
        if rebuild:
            norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
            self.centroids = (sums / norms).astype(np.float32)
        return {"codes": codes, "n_key": n_key}

    # -- phase 3: per cluster --------------------------------------------------------------
    def per_cluster(self, *, threshold=None, dup_sim=False, rank=None, forest=False, ids=False):
        """Run one per-cluster pass (resumably); returns {cluster: aggregates}."""
        kind = G.FOREST if forest else G.DECIDE
        out = self.scratch / kind
        out.mkdir(exist_ok=True)
        spec = G.GroupSpec(
            spill=str(self.scratch / "spill"),
            parts=self.k,
            out=str(out),
            threshold=threshold,
            dup_sim=dup_sim,
            rank=rank,
            forest=forest,
            ids=ids,
            projection=self._projection(),
            device="cuda" if _torch_cuda() else None,
            group_memory=self.cfg.group_memory,
            dim=self.dim,
        )
        items = self._items_of()
        stats: dict[int, dict] = {}
        todo = []
        for item in items:
            done = None if forest else G.read_stats(out, item[0])
            if forest and (out / f"{G.item_name(item[0])}.npy").exists():
                done = {}
            if done is None:
                todo.append(item)
            else:
                stats.update(done)
        rows = [int(self.sizes[it].sum()) for it in todo]
        label = "near-neighbour forest" if forest else "per-cluster decisions"
        with self.timer(kind), self._bar(label, sum(rows)) as bar:
            results = self.workers.map(
                partial(G.decide_item, spec),
                todo,
                cost=rows,
                gpus=self._gpus(),
                on_done=lambda i, _: bar.advance(rows[i]),
            )
        for r in results:
            if not forest:
                stats.update({int(c): s for c, s in r.items()})
        self._items = items
        return stats

    def _projection(self) -> np.ndarray | None:
        if not self.method.needs_vectors(self.cfg) or _torch_cuda():
            return None
        if not hasattr(self, "_proj"):
            spill = Spill(self.scratch / "spill", self.k)
            big = np.argsort(-self.sizes, kind="stable")[:64]
            xs, assign = [], []
            for c in big[self.sizes[big] > 1]:
                x = spill.read(int(c), "vec", 0, min(256, int(self.sizes[c])))
                xs.append(x)
                assign.append(np.full(len(x), c))
            spill.close()
            self._proj = (
                residual_projection(np.concatenate(xs), self.centroids, np.concatenate(assign))
                if xs
                else None
            )
        return self._proj

    # -- the whole plan --------------------------------------------------------------------
    def run(self) -> Decided:
        """Every phase (skipping what the scratch already holds); returns the decisions."""
        method, cfg = self.method, self.cfg
        if method.key_column and method.key_column not in self.m.schema.names:
            raise ManifestError(
                f"{self.m.path}: --method {cfg.method} needs a {method.key_column!r} column "
                f"(image-text cosine), which it lacks (it has {self.m.schema.names}). Run "
                "`curate embed` with a CLIP model on a manifest with a text column to add it."
            )
        S.open_scratch(self.scratch, self._key(), overwrite=self.overwrite)
        col = None
        if method.needs_clusters or (
            method.needs_embeddings and cfg.embedding_column in self.m.schema.names
        ):
            col = E.check_embedding_column(self.m, cfg.embedding_column)
        self.dim = col.dim if col else 0
        self.id_source = ids_source(self.m)
        fresh = rebuild = False
        if method.needs_clusters:
            fresh, rebuild = self._model(col)
        self._chunk_list = self._chunks()
        spec = self._scan_spec(col, fresh, rebuild)
        with self.timer("scan"):
            spill = self._scan(spec, self._chunk_list)
        counts = self._counts_from_runs(spill, spec, rebuild)
        self.sizes = spill.sizes() if method.needs_clusters else np.zeros(1, np.int64)
        spill.close()
        self.n_valid = counts["n_key"] if method.key_column else int(counts["codes"][E.VALID])
        if self.n_valid == 0:
            what = "clip_score" if method.key_column else repr(cfg.embedding_column)
            raise InputError(
                f"{self.m.path}: no row is usable for {cfg.method}: every {what} is null, "
                "NaN or zero."
            )
        self.target = target_count(cfg.keep, self.n_valid) if cfg.keep is not None else 0
        state, explain = self._decide()
        final = self._finalize(spec, state)
        any_invalid = bool(col is not None and counts["codes"][1:].sum() > 0)
        return Decided(
            final_dir=str(self.scratch / "final"),
            chunks=self._chunk_list,
            computed_clusters=fresh,
            any_invalid=any_invalid,
            uses_embedding=col is not None,
            id_source=self.id_source,
            centroids=self.centroids if fresh else None,
            counts=summary.counts(
                final,
                method=cfg.method,
                rows=self.m.num_rows,
                valid=self.n_valid,
                target=self.target,
            ),
            explain=summary.explain(explain, final, self.sizes, self.k)
            if method.needs_clusters
            else explain,
            timings=self.timer.seconds,
        )

    def _decide(self) -> tuple[dict, dict]:
        path = self.scratch / "decision.json"
        if path.exists():
            saved = json.loads(path.read_text())
            self._items = self._items_of()
            return saved["state"], saved["explain"]
        with self.timer(self.cfg.method):
            state, explain = self.method.decide(self, self.cfg)
        tmp = self.scratch / ".decision.json.tmp"
        tmp.write_text(json.dumps({"state": state, "explain": explain}))
        os.replace(tmp, path)
        return state, explain

    # -- phase 4: finalize -----------------------------------------------------------------
    def _finalize(self, spec: ScanSpec, state: dict) -> list[dict]:
        out = self.scratch / "final"
        out.mkdir(exist_ok=True)
        items = getattr(self, "_items", None) if self.method.needs_clusters else None
        fspec = FinalSpec(
            spill=spec.spill,
            parts=spec.parts,
            final=str(out),
            decide=str(self.scratch / G.DECIDE),
            method=self.method,
            cfg=self.cfg,
            state=state,
            clustered=self.method.needs_clusters,
            items=[it[0] for it in items] if items else [],
            sizes=self.sizes.tolist(),
            key=spec.key is not None,
            n_rows=self.m.num_rows,
        )
        chunks = self._chunk_list
        todo = [i for i in range(len(chunks)) if not fspec.path(i).exists()]
        groups = [todo[i : i + JOIN_RUNS] for i in range(0, len(todo), JOIN_RUNS)]
        rows = [sum(chunks[i][1] - chunks[i][0] for i in g) for g in groups]
        with self.timer("finalize"), self._bar("join decisions", sum(rows)) as bar:
            self.workers.map(
                partial(finalize_runs, fspec),
                [[(i, *chunks[i]) for i in g] for g in groups],
                cost=rows,
                on_done=lambda j, _: bar.advance(rows[j]),
            )
        return [fspec.counts(i) for i in range(len(chunks))]
