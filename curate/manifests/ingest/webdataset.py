"""WebDataset tar shards as img2dataset writes them: ``KEY.jpg`` + ``KEY.txt`` + ``KEY.json``."""

from __future__ import annotations

import json
import tarfile
from collections import deque
from collections.abc import Iterator
from glob import glob
from itertools import islice
from pathlib import Path

import pyarrow as pa

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.ingest.base import Adapter, IngestContext, detect_files, is_glob
from curate.manifests.ingest.images import probe_images

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "ppm", "pgm")
CHUNK = 256  # samples per table (and per task sent to a worker process)
#: json fields not copied: the key is the id, the probed size wins over the stated one.
SKIP_JSON = frozenset({"key", "width", "height"})
RESERVED = frozenset({S.ID, S.IMAGE, S.TEXT, S.LABEL, S.ERROR, S.SPLIT, S.EMBEDDING})


def tar_shards(src: Path) -> list[Path]:
    """The ``.tar`` shards of a file, a folder (recursively) or a glob, sorted."""
    if is_glob(src):
        return sorted(Path(p) for p in glob(str(src), recursive=True) if p.endswith(".tar"))
    if src.is_dir():
        return sorted(p for p in src.rglob("*.tar") if not p.name.startswith("."))
    return [src] if src.suffix == ".tar" else []


def _split_name(name: str) -> tuple[str, str]:
    """``dir/000001.seg.png`` -> (``dir/000001``, ``seg.png``): the key ends at the first dot."""
    head, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower()


def iter_samples(shard: Path, ctx: IngestContext) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Group consecutive tar members by key, streaming (the tar is read once, in order)."""
    key, parts = None, {}
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for member in tar:
                base = member.name.rpartition("/")[2]
                if not member.isfile() or base.startswith("."):
                    continue
                k, ext = _split_name(member.name)
                if k != key and key is not None:
                    yield key, parts
                    parts = {}
                key = k
                fh = tar.extractfile(member)
                parts[ext] = fh.read() if fh is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        ctx.note(f"shard {shard.name} unreadable past this point ({exc}); later samples missing")
    else:
        if not _ends_cleanly(shard):
            ctx.note(
                f"shard {shard.name} lacks the tar end marker (truncated?); samples may be missing"
            )
    if key is not None:
        yield key, parts


def _ends_cleanly(shard: Path) -> bool:
    """A whole tar ends with two zero 512-byte blocks; a file cut at a block boundary does not."""
    try:
        with open(shard, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() < 1024:
                return False
            fh.seek(-1024, 2)
            return not any(fh.read(1024))
    except OSError:
        return True  # not a seekable file (a pipe): nothing to check


def _text(raw: bytes | None, errors: list[str]) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(
            f"caption_not_utf8: byte {exc.start} of the .txt is not UTF-8, decoded with U+FFFD "
            "replacement characters"
        )
        return raw.decode("utf-8", errors="replace")


def _meta(raw: bytes | None, errors: list[str]) -> dict:
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        errors.append(f"bad_json: the .json is not valid JSON ({exc})")
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


def _row(key: str, parts: dict[str, bytes]) -> dict:
    errors: list[str] = []
    ext = next((e for e in IMAGE_EXTS if e in parts), None)
    row = {S.ID: key, S.IMAGE: parts.get(ext) if ext else None}
    meta = _meta(parts.get("json"), errors)
    caption = meta.pop("caption", None)
    row[S.TEXT] = _text(parts["txt"], errors) if "txt" in parts else caption
    if "cls" in parts:
        try:
            row[S.LABEL] = int(parts["cls"].strip())
        except ValueError:
            row[S.LABEL] = None
            errors.append(f"bad_label: the .cls holds {parts['cls'][:20]!r}, not an integer")
    if ext is None:
        errors.append(f"missing_image: no image file among {sorted(parts)}")
    row["_json"] = {k: v for k, v in meta.items() if k not in SKIP_JSON}
    row["_errors"] = errors
    return row


class _Columns:
    """The json columns and their types, fixed by the first rows so every table matches."""

    def __init__(self, rows: list[dict]) -> None:
        seen: dict[str, list] = {}
        for r in rows:
            for k, v in r["_json"].items():
                seen.setdefault(k, []).append(v)
        self.types = {}
        for k, values in seen.items():
            t = pa.array(values).type
            self.types[k] = pa.string() if pa.types.is_null(t) else t
        self.names = {
            k: (f"json_{k}" if k in RESERVED or k in (S.PATH, "width", "height") else k)
            for k in self.types
        }
        self.has_label = any(S.LABEL in r for r in rows)

    def arrays(self, rows: list[dict], ctx: IngestContext) -> dict[str, pa.Array]:
        extra = {k for r in rows for k in r["_json"]} - set(self.types)
        if extra:
            ctx.note(f"json fields absent from the first rows (not written): {sorted(extra)}")
        out = {}
        for k, t in self.types.items():
            values = [r["_json"].get(k) for r in rows]
            try:
                out[self.names[k]] = pa.array(values, t)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                fixed = [v if _fits(v, t) else None for v in values]
                ctx.note(
                    f"json {k!r} values not of type {t} (written as null)",
                    sum(v is not None for v in values) - sum(v is not None for v in fixed),
                )
                out[self.names[k]] = pa.array(fixed, t)
        return out


def _fits(value: object, t: pa.DataType) -> bool:
    try:
        pa.array([value], t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return False
    return True


class WebDatasetAdapter(Adapter):
    """One row per key: ``id`` = key, ``text`` from ``.txt``, ``label`` from ``.cls``, scalar
    ``.json`` fields as columns (url, similarity, original_width...); bad images keep their row.
    """

    name = "webdataset"

    def detect(self, src: Path) -> bool:
        return detect_files(src, ".tar", tar_shards)

    def _table(self, rows: list[dict], probed: list, cols: _Columns, ctx: IngestContext):
        images = [r[S.IMAGE] for r in rows]
        data: dict[str, pa.Array] = {
            S.ID: pa.array([r[S.ID] for r in rows], pa.string()),
            S.IMAGE: pa.array(images, pa.binary()),
            S.TEXT: pa.array([r[S.TEXT] for r in rows], pa.string()),
        }
        if cols.has_label:
            data[S.LABEL] = pa.array([r.get(S.LABEL) for r in rows], pa.int64())
        elif any(S.LABEL in r for r in rows):
            ctx.note(".cls labels absent from the first rows (not written)")
        data["width"] = pa.array([p[0] for p in probed], pa.int32())
        data["height"] = pa.array([p[1] for p in probed], pa.int32())
        data.update(cols.arrays(rows, ctx))
        if ctx.config.split is not None:
            data[S.SPLIT] = pa.array([ctx.config.split] * len(rows), pa.string())
        errors = [
            "; ".join(r["_errors"] + ([p[2]] if p[2] else [])) or None
            for r, p in zip(rows, probed, strict=True)
        ]
        data[S.ERROR] = pa.array(errors, pa.string())
        return pa.table(data)

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        shards = tar_shards(ctx.src)
        if not shards:
            raise InputError(f"{ctx.src}: no .tar shards found.")
        samples = (s for shard in shards for s in iter_samples(shard, ctx))
        pending: deque[list[dict]] = deque()

        def image_chunks() -> Iterator[list[bytes | None]]:
            # the tar is read here while the workers check the chunks already sent
            while rows := [_row(k, p) for k, p in islice(samples, CHUNK)]:
                pending.append(rows)
                yield [r[S.IMAGE] for r in rows] if ctx.config.verify_images else []

        cols: _Columns | None = None
        for probed in ctx.pool.imap(probe_images, image_chunks()):
            rows = pending.popleft()
            cols = cols or _Columns(rows)
            yield self._table(rows, probed or [(None, None, None)] * len(rows), cols, ctx)
