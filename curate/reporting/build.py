"""``curate report``: query each manifest's sections, add thumbnails, write a page (or folder)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from curate.config import resolve_config
from curate.engines import local_only
from curate.engines.options import progress_mode
from curate.engines.progress import Progress
from curate.errors import InputError, OutputExistsError
from curate.manifests.io import Manifest, open_manifest
from curate.reporting import check, clusters, extras, sections
from curate.reporting.page import render
from curate.reporting.sections import Limits
from curate.reporting.source import Source, open_sources
from curate.reporting.thumbs import thumb_from_row

#: The single-file page's thumbnail budget (each ~1-3 KB as a JPEG data URI).
MAX_THUMBS = 2000
#: The folder form writes thumbnails as files, so its galleries can be larger.
FOLDER_LIMITS = Limits(label_issues=2000, removed_per_reason=200, duplicate_groups=100,
                       clusters=100, map_thumbs=5000)  # fmt: skip
FOLDER_MAX_THUMBS = 20_000

Log = Callable[[str], None]


def _sections(src: Source, lim: Limits) -> dict:
    """Every section the manifest's columns allow (absent ones are left out)."""
    out = {"summary": sections.summary(src)}
    for name, fn in (
        ("check", check.check_section),
        ("label_issues", sections.label_issues),
        ("pruning", sections.pruning),
        ("clusters", clusters.clusters),
        ("soft", extras.soft_labels),
        ("multi", extras.multi_labels),
        ("per_class", extras.per_class),
        ("map", clusters.embedding_map),
    ):
        value = fn(src, lim)
        if value is not None:
            out[name] = value
    return out


#: Sections a later manifest often inherits unchanged (label-issues -> prune keeps the columns).
_INHERITED = ("label_issues", "per_class", "clusters")


def _shape(obj):
    """A section with every card reduced to its id (what a person sees as "the same rows")."""
    if isinstance(obj, dict):
        if isinstance(obj.get("id"), str):
            return obj["id"]
        return {k: _shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shape(v) for v in obj]
    return obj


def _point_to_earlier(secs: dict, earlier: list[dict]) -> None:
    """Replace a section identical to an earlier manifest's by ``{"same_as": name}``."""
    for key in _INHERITED:
        for prev in earlier:
            if key in secs and _shape(prev["sections"].get(key)) == _shape(secs[key]):
                secs[key] = {"same_as": prev["name"]}
                break


def _card_ids(obj) -> list[str]:
    """Ids of every card (a dict with an ``id``) inside a section, in page order."""
    found: list[str] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("id"), str):
            found.append(obj["id"])
        for k, v in obj.items():
            if k != "map":
                found.extend(_card_ids(v))
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict | list):
        for v in obj:
            found.extend(_card_ids(v))
    return found


def _thumb_rows(src: Source, ids: list[str]) -> list[dict]:
    cols = [c for c in ("id", "image", "path", "url", "error") if src.has(c)]
    if not ids or len(cols) == 1:
        return [{"id": i} for i in ids]
    sel = ", ".join(f'"{c}"' for c in cols)
    return src.rows(f"SELECT {sel} FROM {{m}} WHERE id IN (SELECT unnest(?))", [ids])


def _thumbnails(src: Source, secs: dict, budget: int, folder: Path | None) -> dict:
    """id -> data URI (or ``thumbs/...`` file, or ``{"err": ...}``) for the page's cards."""
    ids = list(dict.fromkeys(_card_ids(secs)))
    if "map" in secs:
        ids = list(dict.fromkeys(ids + secs["map"]["ids"][: secs["map"].get("want_thumbs", 0)]))
    out = {}
    for row in _thumb_rows(src, ids[:budget]):
        thumb = thumb_from_row(row)
        if folder is not None and thumb.jpeg is not None:
            name = f"thumbs/{src.name}/{len(out):06d}.jpg"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(thumb.jpeg)
            out[row["id"]] = name
        else:
            out[row["id"]] = thumb.as_json()
    return out


def json_safe(obj):
    """JSON-safe: NaN/inf to null, numpy and Decimal scalars to Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    return float(obj) if hasattr(obj, "__float__") else str(obj)


def build_data(
    manifests: list[str | os.PathLike | Manifest],
    *,
    evaluation: str | os.PathLike | None = None,
    limits: Limits | None = None,
    max_thumbs: int = MAX_THUMBS,
    folder: Path | None = None,
    log: Log | None = None,
    sources: list[Source] | None = None,
) -> dict:
    """The page's data: one entry per manifest with its sections and thumbnails.

    ``sources`` (already registered views, e.g. the server's read-only connection) replaces
    opening ``manifests`` in a fresh connection.
    """
    log = log or (lambda _m: None)
    if not manifests and sources is None:
        raise InputError("curate report needs at least one manifest (a Parquet file or folder).")
    lim = limits or Limits()
    data = {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "manifests": []}
    data["evaluation"] = extras.read_evaluation(evaluation)
    own = sources is None
    sources = open_sources(list(manifests)) if own else sources
    left = max_thumbs
    for i, src in enumerate(sources):
        t0 = time.perf_counter()
        secs = _sections(src, lim)
        if "map" in secs:
            secs["map"]["want_thumbs"] = lim.map_thumbs
        _point_to_earlier(secs, data["manifests"])
        share = left // (len(sources) - i)  # a fair share of what is left, so none starves
        thumbs = _thumbnails(src, secs, share, folder)
        left = max(0, left - len(thumbs))
        data["manifests"].append({
            "name": src.name, "path": str(src.manifest.path), "rows": src.num_rows,
            "classes": src.class_names, "sections": secs, "thumbs": thumbs,
        })  # fmt: skip
        log(f"{src.name}: {len(secs)} sections, {len(thumbs)} thumbnails "
            f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    if own:
        sources[0].con.close()
    return json_safe(data)


@dataclass(frozen=True)
class ReportConfig:
    """Options of :func:`report`.

    Attributes
    ----------
    evaluation
        ``curate evaluate``'s result JSON, shown as a table.
    limits
        Gallery sizes (:class:`~curate.reporting.sections.Limits`; default: the file's, or
        ``FOLDER_LIMITS`` for a folder).
    max_thumbs
        Thumbnail budget over all manifests (default 2,000 for a file, 20,000 for a folder).
    """

    evaluation: str | os.PathLike | None = None
    limits: Limits | None = None
    max_thumbs: int | None = None

    def __post_init__(self) -> None:
        if self.max_thumbs is not None and self.max_thumbs < 0:
            raise ValueError(f"max_thumbs={self.max_thumbs}: must be 0 or more")


def default_report_out(first: str | os.PathLike | Manifest) -> Path:
    """``NAME-report.html`` beside the first manifest."""
    path = first.path if isinstance(first, Manifest) else Path(first)
    return path.with_name(f"{path.name.removesuffix('.parquet')}-report.html")


def report(
    manifest: list[str | os.PathLike | Manifest] | str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: ReportConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    **options: object,
) -> Path:
    """Write a self-contained HTML report of one or more manifests.

    Parameters
    ----------
    manifest
        A manifest path (or open manifest), or a list of them; each gets the sections its
        columns allow.
    out
        ``report.html``: one file, data and thumbnails inline (works from ``file://``).
        Any other path: a folder with ``index.html`` and ``thumbs/`` for larger galleries.
        Default: ``NAME-report.html`` beside the first manifest.
    config, **options
        A :class:`ReportConfig`, or its fields as keywords (``evaluation``, ``limits``,
        ``max_thumbs``); also ``log``, called with a line per manifest.
    engine, ray_address
        ``"local"`` only: DuckDB queries each manifest here; ``"ray"`` is an error.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``: manifests done, a line at least every 25 s in
        a log.
    overwrite
        Replace an existing page or folder's ``index.html``.

    Returns
    -------
    pathlib.Path
        The HTML file written (a page, not a manifest: there are no rows to return).
    """
    log: Log | None = options.pop("log", None)  # type: ignore[assignment]
    cfg = resolve_config(ReportConfig, config, options, step="report")
    local_only("report", engine, ray_address, "DuckDB reads each manifest on this machine")
    progress = progress_mode(progress)
    given = manifest if isinstance(manifest, list | tuple) else [manifest]
    if not given:
        raise InputError("curate report needs at least one manifest (a Parquet file or folder).")
    manifests = [open_manifest(m) for m in given]  # a missing input fails first
    out = Path(default_report_out(manifests[0]) if out is None else out)
    folder = None if out.suffix.lower() in (".html", ".htm") else out
    html_path = out if folder is None else folder / "index.html"
    if html_path.exists() and not overwrite:
        raise OutputExistsError(f"{html_path}: already exists; pass --overwrite to replace it.")
    limits, max_thumbs = cfg.limits, cfg.max_thumbs
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        limits = limits or FOLDER_LIMITS
        max_thumbs = FOLDER_MAX_THUMBS if max_thumbs is None else max_thumbs
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    with Progress("report", len(manifests), mode=progress, unit="manifests") as bar:

        def one_done(line: str) -> None:  # build_data logs one line per manifest
            bar.advance(1)
            if log is not None:
                log(line)

        data = build_data(
            manifests,
            evaluation=cfg.evaluation,
            limits=limits,
            max_thumbs=MAX_THUMBS if max_thumbs is None else max_thumbs,
            folder=folder,
            log=one_done,
        )
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    os.replace(tmp, html_path)
    return html_path


__all__ = ["FOLDER_LIMITS", "Limits", "ReportConfig", "build_data", "report"]
