"""The check's links from pixels: exact duplicates (equal pixel hashes), perceptual-hash
near-duplicates, the dataset-relative pixel flags (odd size, grayscale in a colour set) and
the pixel signals of leakage (within the manifest's splits and against another manifest)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.manifests import parallel as P
from curate.manifests.io import Manifest
from curate.pipelines.check import hashes as H
from curate.pipelines.check.config import CheckConfig
from curate.pipelines.check.pixel_step import HEIGHT, PHASH, PIXEL_HASH, WIDTH, decode_facts
from curate.pipelines.check.pixels import ImageFacts, size_scores
from curate.pipelines.embed.decode import DEFAULT_MAX_PIXELS
from curate.pipelines.embed.loader import rows_of

GRAY = "grayscale_score"


@dataclass
class PixelFacts:
    """Per-row values read back from the first pass (row order)."""

    decoded: np.ndarray  # bool
    phash: np.ndarray  # uint64 (0 where not decoded)
    size: np.ndarray  # float64 sqrt(width x height), NaN where not decoded
    gray_score: np.ndarray  # float32, NaN where not decoded


def read_facts(m: Manifest) -> PixelFacts:
    """One pass over the small pixel columns (8 + 8 + 4 bytes per row kept)."""
    n = m.num_rows
    out = PixelFacts(
        np.zeros(n, bool),
        np.zeros(n, np.uint64),
        np.full(n, np.nan),
        np.full(n, np.nan, np.float32),
    )
    off = 0
    for b in m.iter_batches([PHASH, WIDTH, HEIGHT, GRAY], prefetch=1):
        sl = slice(off, off + b.num_rows)
        ph = b.column(0)
        out.decoded[sl] = ph.is_valid().to_numpy(zero_copy_only=False)
        out.phash[sl] = pc.fill_null(ph, 0).to_numpy()
        w = pc.fill_null(b.column(1), 0).to_numpy().astype(np.float64)
        h = pc.fill_null(b.column(2), 0).to_numpy().astype(np.float64)
        out.size[sl] = np.where(out.decoded[sl], np.sqrt(w * h), np.nan)
        out.gray_score[sl] = pc.fill_null(b.column(3), np.nan).to_numpy(zero_copy_only=False)
        off += b.num_rows
    return out


def hash_batches(m: Manifest):
    """``(rows, pixel_hash)`` batches of the first pass's output."""
    off = 0
    for b in m.iter_batches([PIXEL_HASH], prefetch=1):
        yield np.arange(off, off + b.num_rows), b.column(0)
        off += b.num_rows


@dataclass
class PixelLinks:
    """What the pixel links found, per row (row order; -1 / NaN where none)."""

    exact_of: np.ndarray  # int64: first earlier row with the same pixels
    phash_of: np.ndarray  # int64: earlier row within the Hamming radius (closest, earliest)
    phash_distance: np.ndarray  # int32: distance to the nearest other row's hash
    odd_size_score: np.ndarray  # float32
    is_odd_size: np.ndarray  # bool
    is_grayscale: np.ndarray  # bool
    colour_share: float
    odd_size_threshold: float


def _phash_links(facts: PixelFacts, cfg: CheckConfig) -> tuple[np.ndarray, np.ndarray]:
    n = len(facts.decoded)
    rows = np.flatnonzero(facts.decoded)
    link = np.full(n, H.NO_ROW, np.int64)
    nearest = np.full(n, -1, np.int32)
    if len(rows) < 2:
        return link, nearest
    codes = H.codes_of(facts.phash[rows])
    index = H.binary_index(
        codes, exact_max_rows=cfg.exact_max_rows, nprobe=cfg.nprobe, seed=cfg.seed
    )
    dist, pos = H.nearest_codes(index, codes, cfg.dup_k + 1)
    link[rows], nearest[rows] = H.nearest_earlier(rows, dist, pos, rows, cfg.phash_max_distance)
    # equal hashes in groups larger than k: the group's first row, exactly (DuckDB group-by)
    keys = pa.array(np.where(facts.decoded, facts.phash, 0), pa.uint64(), mask=~facts.decoded)
    with H.KeyTable(H.array_batches(keys), pa.uint64()) as table:
        dup, first = table.within()
    link[dup] = first
    nearest[dup] = 0
    return link, nearest


def pixel_keys(m: Manifest) -> H.KeyTable:
    """The first pass's pixel hashes in a DuckDB table (close it when done)."""
    return H.KeyTable(hash_batches(m), pa.string())


def pixel_links(facts: PixelFacts, keys: H.KeyTable, cfg: CheckConfig) -> PixelLinks:
    """Exact and perceptual duplicates and the dataset-relative pixel flags."""
    n = len(facts.decoded)
    exact_of = np.full(n, H.NO_ROW, np.int64)
    rows, first = keys.within()
    exact_of[rows] = first
    phash_of, phash_distance = _phash_links(facts, cfg)
    ok = facts.decoded
    size_score = np.full(n, np.nan, np.float32)
    scores, size_threshold = size_scores(facts.size[ok], cfg.odd_size_iqr)
    size_score[ok] = scores
    gray = facts.gray_score < cfg.grayscale_threshold  # NaN compares False
    share = float(1.0 - gray[ok].mean()) if ok.any() else 0.0
    flag_gray = gray & (share >= cfg.colour_share)
    return PixelLinks(
        exact_of, phash_of, phash_distance, size_score, size_score < size_threshold, flag_gray,
        share, size_threshold,
    )  # fmt: skip


@dataclass
class Found:
    """Leak candidates from one signal: query rows and their partner rows."""

    rows: np.ndarray
    partners: np.ndarray
    by: str  # exact, phash, embedding
    source: str  # split, against
    sims: np.ndarray | None = None  # the embedding cosine, when the signal gives it


def split_leaks(
    facts: PixelFacts, keys: H.KeyTable, cfg: CheckConfig, test: np.ndarray, ref: np.ndarray
) -> list[Found]:
    """Test rows whose pixels (then perceptual hash) match a reference row."""
    rows, first = keys.across(test, ref)
    found = [Found(rows, first, "exact", "split")]
    if cfg.phash_leak:
        found.append(
            _phash_match(
                facts, test & facts.decoded, facts.phash, ref & facts.decoded, cfg, "split"
            )
        )
    return found


def _phash_match(facts, queries, ref_phash, ref_ok, cfg, source: str) -> Found:
    """Query rows whose perceptual hash is within the radius of a reference hash."""
    q = np.flatnonzero(queries)
    ref_rows = np.flatnonzero(ref_ok)
    if not len(q) or not len(ref_rows):
        return Found(np.zeros(0, np.int64), np.zeros(0, np.int64), "phash", source)
    index = H.binary_index(
        H.codes_of(ref_phash[ref_rows]), exact_max_rows=cfg.exact_max_rows, nprobe=cfg.nprobe,
        seed=cfg.seed,
    )  # fmt: skip
    dist, pos = H.nearest_codes(index, H.codes_of(facts.phash[q]), 1)
    hit = (pos[:, 0] >= 0) & (dist[:, 0] <= cfg.phash_max_distance)
    return Found(q[hit], ref_rows[pos[hit, 0]], "phash", source)


@dataclass
class OtherHashes:
    """The pixel and perceptual hashes of another manifest's images (``--against``)."""

    pixel_hash: pa.Array
    phash: np.ndarray
    decoded: np.ndarray


def other_hashes(ev: Manifest, base_dir: str | None, batch_size: int = 4096) -> OtherHashes:
    """Decode every image of ``ev`` (on threads, in row ranges) for its two hashes."""
    cols = [c for c in ("image", "path", "url") if c in ev.schema.names]
    ranges = P.row_ranges(ev.num_rows, P.default_workers() * 4, starts=ev.row_group_starts())

    def work(rows: tuple[int, int]) -> list:
        found = []
        for b in ev.iter_batches(cols, batch_size=batch_size, rows=rows):
            rows_ = rows_of(pa.Table.from_batches([b]))
            found.extend(decode_facts(r, base_dir, DEFAULT_MAX_PIXELS) for r in rows_)
        return found

    facts = [f for part in P.ordered_map(work, ranges, P.default_workers()) for f in part]
    good = [isinstance(f, ImageFacts) for f in facts]
    return OtherHashes(
        pa.array([f.pixel_hash if ok else None for f, ok in zip(facts, good, strict=True)]),
        np.array([f.phash if ok else 0 for f, ok in zip(facts, good, strict=True)], np.uint64),
        np.array(good, bool),
    )


def against_leaks(
    facts: PixelFacts, keys: H.KeyTable, other: OtherHashes, cfg: CheckConfig
) -> list[Found]:
    """Rows whose pixels (then perceptual hash) match a row of the other manifest."""
    rows, first = keys.against(H.array_batches(other.pixel_hash))
    found = [Found(rows, first, "exact", "against")]
    if cfg.phash_leak:
        found.append(_phash_match(facts, facts.decoded, other.phash, other.decoded, cfg, "against"))
    return found
