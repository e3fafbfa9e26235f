"""The check's second pass, a :class:`~curate.engines.FitStep`: ``fit`` finds the links that
need the whole manifest (duplicates, leaks, outliers, dataset-relative pixel flags); each
batch then gets its rows' columns and ``check_issues``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.manifests.runinfo import Timer
from curate.pipelines.check import pixel_links as PL
from curate.pipelines.check.config import ISSUES, UNDECODABLE, CheckConfig
from curate.pipelines.check.embedding_links import embedding_links
from curate.pipelines.check.pixel_step import PIXEL_HASH
from curate.pipelines.check.plan import Plan
from curate.step import FitStep, add_columns, extend_schema

SIGNALS = ("exact", "phash", "embedding")
F = pa.field
STR, F32, BOOL = pa.string(), pa.float32(), pa.bool_()
PIXEL_LINK_FIELDS = [
    F("exact_dup_of", STR), F("is_exact_dup", BOOL), F("phash_dup_of", STR),
    F("phash_distance", pa.int32()), F("is_phash_dup", BOOL), F("odd_size_score", F32),
    F("is_odd_size", BOOL), F("is_grayscale", BOOL),
]  # fmt: skip
EMBEDDING_FIELDS = [
    F("near_dup_of", STR), F("near_dup_sim", F32), F("is_near_dup", BOOL),
    F("outlier_score", F32), F("is_outlier", BOOL),
]  # fmt: skip
LEAK_FIELDS = [
    F("leak_of", STR), F("leak_sim", F32), F("leak_source", STR), F("leak_by", STR),
    F("is_leak", BOOL),
]  # fmt: skip
CHECK_ISSUES = "check_issues"
#: The flag columns behind each name in ``check_issues`` (those present in the output).
FLAGS = ISSUES


@dataclass
class _Leaks:
    of: np.ndarray  # int64 partner row (in M or in the other manifest), -1
    by: np.ndarray  # int8 index into SIGNALS, -1
    source: np.ndarray  # int16 index into sources, -1
    sim: np.ndarray  # float32
    checked: np.ndarray  # bool


def _masks(m: Manifest, plan: Plan) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(test rows, reference rows, split code per row) from the ``split`` column."""
    n = m.num_rows
    codes = np.full(n, -1, np.int16)
    if S.SPLIT not in m.schema.names:
        return None, None, codes
    names = pa.array(list(plan.splits), pa.string())
    off = 0
    for b in m.iter_batches([S.SPLIT], prefetch=1):
        codes[off : off + b.num_rows] = pc.fill_null(pc.index_in(b.column(0), names), -1)
        off += b.num_rows
    if plan.test_split is None:
        return None, None, codes
    test = codes == plan.splits.index(plan.test_split)
    train = plan.train_split
    ref = codes == plan.splits.index(train) if train is not None else ~test
    return test, ref, codes


def _ids(m: Manifest, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """The ids of ``rows`` (sorted, unique), read in one pass over ``id``."""
    rows = np.unique(rows[rows >= 0])
    parts, off = [], 0
    for b in m.iter_batches([S.ID], prefetch=1):
        lo, hi = np.searchsorted(rows, [off, off + b.num_rows])
        if hi > lo:
            parts.append(b.column(0).take(pa.array(rows[lo:hi] - off)))
        off += b.num_rows
    ids = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
    return rows, ids.cast(pa.string())


def _lookup(rows: np.ndarray, ids: pa.Array, links: np.ndarray) -> pa.Array:
    """Ids of ``links`` (row numbers, -1 = none) from the sorted ``rows`` and their ``ids``."""
    has = links >= 0
    pos = np.searchsorted(rows, np.where(has, links, 0))
    out = (
        ids.take(pa.array(np.minimum(pos, max(len(rows) - 1, 0)), mask=~has)) if len(rows) else None
    )
    return out if out is not None else pa.nulls(len(links), pa.string())


def _flag(values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    return pa.array(values, mask=None if valid is None else ~valid)


class CheckLinks(FitStep):
    """Fit: links over the whole manifest; per batch: their columns and ``check_issues``.

    Parameters
    ----------
    config
        The :class:`~curate.pipelines.check.config.CheckConfig`.
    plan
        What runs (:func:`~curate.pipelines.check.plan.make_plan`).
    progress
        Progress mode for the fit's search pass.
    """

    name = "check"
    thread_safe = True

    def __init__(self, config: CheckConfig, plan: Plan, *, progress: str = "auto") -> None:
        super().__init__(config)
        self.plan, self.progress = plan, progress

    # -- fit ---------------------------------------------------------------------------
    def fit(self, manifest: Manifest) -> CheckLinks:
        cfg, plan, n = self.config, self.plan, manifest.num_rows
        timer = Timer()
        test, ref, self.split_codes_ = _masks(manifest, plan)
        found: list[PL.Found] = []
        self.pixel_ = self.embed_ = None
        if plan.pixels:
            with timer("pixel_links"):
                found += self._fit_pixels(manifest, test, ref)
        if plan.embeddings:
            with timer("embedding_links"):
                self.embed_ = embedding_links(
                    manifest, cfg, test=test, ref=ref,
                    against=plan.against if plan.against_embeddings else None,
                    pixel_found=found, progress=self.progress,
                )  # fmt: skip
            found += self.embed_.found
        if plan.leakage:
            self.leaks_ = self._combine(found, n, test)
        with timer("ids"):
            self._fetch_ids(manifest)
        self.timings_ = timer.seconds
        return self

    def _fit_pixels(self, manifest: Manifest, test, ref) -> list[PL.Found]:
        cfg, plan = self.config, self.plan
        facts = PL.read_facts(manifest)
        self.decoded_ = facts.decoded
        found: list[PL.Found] = []
        with PL.pixel_keys(manifest) as keys:
            self.pixel_ = PL.pixel_links(facts, keys, cfg)
            if test is not None:
                found += PL.split_leaks(facts, keys, cfg, test, ref)
            if plan.against_pixels:
                other = PL.other_hashes(open_manifest(plan.against), plan.against_base_dir)
                found += PL.against_leaks(facts, keys, other, cfg)
        return found

    def _combine(self, found: list[PL.Found], n: int, test: np.ndarray | None) -> _Leaks:
        """One leak per row: exact before phash before embedding, --against before split."""
        sources = [f"against:{self.plan.against}"] + [f"split:{s}" for s in self.plan.splits]
        leaks = _Leaks(
            np.full(n, -1, np.int64), np.full(n, -1, np.int8), np.full(n, -1, np.int16),
            np.full(n, np.nan, np.float32), np.zeros(n, bool),
        )  # fmt: skip
        leaks.checked[:] = self.plan.against is not None
        if test is not None:
            leaks.checked |= test
        usable = np.zeros(n, bool)
        if self.pixel_ is not None:
            usable |= self.decoded_
        if self.embed_ is not None:
            usable |= self.embed_.valid
            leaks.sim[:] = self.embed_.nearest_leak_sim
        leaks.checked &= usable
        order = sorted(found, key=lambda f: (SIGNALS.index(f.by), f.source != "against"))
        pair_sims = self.embed_.pair_sims if self.embed_ is not None else {}
        for f in order:
            new = leaks.of[f.rows] < 0
            rows, partners = f.rows[new], f.partners[new]
            leaks.of[rows] = partners
            leaks.by[rows] = SIGNALS.index(f.by)
            if f.source == "against":
                leaks.source[rows] = 0
            else:
                leaks.source[rows] = 1 + self.split_codes_[partners]
            if f.sims is not None:
                leaks.sim[rows] = f.sims[new]
            else:
                keys = zip(rows.tolist(), partners.tolist(), strict=True)
                leaks.sim[rows] = [pair_sims.get((r, p, f.source), np.nan) for r, p in keys]
        self.sources_ = sources
        return leaks

    def _fetch_ids(self, manifest: Manifest) -> None:
        links = []
        if self.pixel_ is not None:
            links += [self.pixel_.exact_of, self.pixel_.phash_of]
        if self.embed_ is not None:
            links.append(self.embed_.neighbours.dup_of)
        leaks = getattr(self, "leaks_", None)
        if leaks is not None:
            links.append(leaks.of[leaks.source > 0])
        rows = np.concatenate(links) if links else np.zeros(0, np.int64)
        self.link_rows_, self.link_ids_ = _ids(manifest, rows)
        self.other_rows_ = None
        if leaks is not None and (leaks.source == 0).any():
            ev = open_manifest(self.plan.against)
            self.other_rows_, self.other_ids_ = _ids(ev, leaks.of[leaks.source == 0])

    # -- per batch ---------------------------------------------------------------------
    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        fields = []
        if self.plan.pixels:
            fields += PIXEL_LINK_FIELDS
        if self.plan.embeddings:
            fields += EMBEDDING_FIELDS
        if self.plan.leakage:
            fields += LEAK_FIELDS
        fields.append(F(CHECK_ISSUES, pa.list_(STR)))
        return extend_schema(schema, fields)

    def _pixel_columns(self, sl: slice) -> dict[str, pa.Array]:
        p, ok = self.pixel_, self.decoded_[sl]
        r, i = self.link_rows_, self.link_ids_
        return {
            "exact_dup_of": _lookup(r, i, p.exact_of[sl]),
            "is_exact_dup": _flag(p.exact_of[sl] >= 0, ok),
            "phash_dup_of": _lookup(r, i, p.phash_of[sl]),
            "phash_distance": pa.array(p.phash_distance[sl], mask=p.phash_distance[sl] < 0),
            "is_phash_dup": _flag(p.phash_of[sl] >= 0, ok),
            "odd_size_score": _flag(p.odd_size_score[sl], ok),
            "is_odd_size": _flag(p.is_odd_size[sl], ok),
            "is_grayscale": _flag(p.is_grayscale[sl], ok),
        }

    def _embedding_columns(self, sl: slice) -> dict[str, pa.Array]:
        e, ok = self.embed_, self.embed_.valid[sl]
        nb = e.neighbours
        sim = np.where(nb.dup_of[sl] >= 0, nb.dup_sim[sl], nb.nearest_sim[sl])
        return {
            "near_dup_of": _lookup(self.link_rows_, self.link_ids_, nb.dup_of[sl]),
            "near_dup_sim": pa.array(sim, mask=~np.isfinite(sim)),
            "is_near_dup": _flag(nb.dup_of[sl] >= 0, ok),
            "outlier_score": pa.array(nb.outlier[sl], mask=~np.isfinite(nb.outlier[sl])),
            "is_outlier": _flag(e.is_outlier[sl], ok & np.isfinite(nb.outlier[sl])),
        }

    def _leak_columns(self, sl: slice) -> dict[str, pa.Array]:
        lk = self.leaks_
        of, src = lk.of[sl], lk.source[sl]
        mine = _lookup(self.link_rows_, self.link_ids_, np.where(src > 0, of, -1))
        if self.other_rows_ is not None:
            theirs = _lookup(self.other_rows_, self.other_ids_, np.where(src == 0, of, -1))
            mine = pc.coalesce(mine, theirs)
        names = pa.array(self.sources_, STR)
        signals = pa.array(SIGNALS, STR)
        return {
            "leak_of": mine,
            "leak_sim": pa.array(lk.sim[sl], mask=~np.isfinite(lk.sim[sl])),
            "leak_source": names.take(pa.array(src.astype(np.int64), mask=src < 0)),
            "leak_by": signals.take(pa.array(lk.by[sl].astype(np.int64), mask=lk.by[sl] < 0)),
            "is_leak": _flag(of >= 0, lk.checked[sl]),
        }

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        cols: dict[str, pa.Array] = {}
        if self.plan.pixels:
            cols.update(self._pixel_columns(rows))
        if self.plan.embeddings:
            cols.update(self._embedding_columns(rows))
        if self.plan.leakage:
            cols.update(self._leak_columns(rows))
        cols[CHECK_ISSUES] = issues_column(table, cols, self.plan.pixels)
        return add_columns(table, cols, self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        out = {}
        for name, col in FLAGS.items():
            if col in table.column_names:
                out[name] = int(pc.sum(pc.fill_null(table.column(col), False)).as_py() or 0)
        if self.plan.pixels:
            out[UNDECODABLE] = table.column(PIXEL_HASH).null_count
        return out

    def run_info(self) -> dict:
        info: dict = {"plan": self.plan.record(), "fit_timings": getattr(self, "timings_", {})}
        if self.pixel_ is not None:
            info["thresholds"] = {
                "odd_size_score": self.pixel_.odd_size_threshold,
                "colour_share": round(self.pixel_.colour_share, 4),
            }
        if self.embed_ is not None:
            info.setdefault("thresholds", {})["outlier_score"] = self.embed_.outlier_threshold
            info["index"] = self.embed_.index
        return info

    def config_record(self) -> dict:
        return {**super().config_record(), "plan": self.plan.record()}


def issues_column(table: pa.Table, cols: dict[str, pa.Array], pixels: bool) -> pa.Array:
    """Per row, the names of the issues flagged on it (``undecodable`` when its image could
    not be read), built from the flag columns without a Python loop over rows."""
    names, flags = [], []
    for name, col in FLAGS.items():
        arr = cols.get(col, table.column(col) if col in table.column_names else None)
        if arr is not None:
            names.append(name)
            flags.append(pc.fill_null(arr, False).to_numpy(zero_copy_only=False))
    if pixels:
        names.append(UNDECODABLE)
        flags.append(table.column(PIXEL_HASH).is_null().to_numpy(zero_copy_only=False))
    n = table.num_rows
    mat = np.stack(flags, axis=1) if flags else np.zeros((n, 0), bool)
    r, c = np.nonzero(mat)  # row-major: each row's issues together, in FLAGS order
    offsets = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]).astype(np.int32)
    values = pa.array(names, STR).take(pa.array(c))
    return pa.ListArray.from_arrays(pa.array(offsets), values)
