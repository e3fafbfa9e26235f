"""``curate serve``: the report page on a loopback HTTP server, with paged SQL galleries (DuckDB).

The manifests are views in a DuckDB database file written once at start; requests then use a
**read-only** connection to it, one cursor per request, so a query typed in the page can read
but never change anything. The server binds to loopback addresses only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb

from curate.errors import InputError
from curate.manifests.catalog import register_decoders
from curate.manifests.io import Manifest
from curate.reporting.build import build_data, json_safe
from curate.reporting.page import render
from curate.reporting.sections import Limits
from curate.reporting.source import Source, open_sources
from curate.reporting.thumbs import thumb_from_row

LOOPBACK = ("127.0.0.1", "localhost")
MAX_PAGE = 500
_IMAGE_COLS = ("image", "path", "url", "error")


class QueryError(InputError):
    """A WHERE / ORDER BY typed in the page is not one valid read-only SELECT."""


def page_query(src: Source, *, where: str = "", order: str = "", page: int = 0, size: int = 60):
    """The SELECT for one gallery page (card columns + image columns), checked to be one SELECT."""
    if not 1 <= size <= MAX_PAGE or page < 0:
        raise QueryError(f"page must be >= 0 and size 1..{MAX_PAGE}; got page={page} size={size}")
    cols = src.card_columns() + [c for c in _IMAGE_COLS if src.has(c) and c != "error"]
    extra = [c for c in ("soft_classes", "soft_probs", "labels") if src.has(c)]
    sel = ", ".join(f'"{c}"' for c in cols + extra)
    body = f'FROM "{src.name}"' + (f" WHERE ({where})" if where.strip() else "")
    query = f"SELECT {sel} {body} ORDER BY {order or 'id'} LIMIT {size} OFFSET {page * size}"
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"not valid SQL: {exc}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError("WHERE and ORDER BY must form one SELECT (no ';', no other statement)")
    return query, f"SELECT count(*) {body}"


def run_page(src: Source, **q) -> dict:
    """One gallery page: rows (card columns), their thumbnails, the total matching rows."""
    query, count = page_query(src, **q)
    cur = src.con.cursor()
    try:
        res = cur.execute(query)
        names = [d[0] for d in res.description]
        rows = [dict(zip(names, r, strict=True)) for r in res.fetchall()]
        total = cur.execute(count).fetchone()[0]
    except duckdb.Error as exc:
        raise QueryError(f"{exc}".splitlines()[0]) from exc
    finally:
        cur.close()
    thumbs = {r["id"]: thumb_from_row(r).as_json() for r in rows}
    for r in rows:
        for c in _IMAGE_COLS[:3]:
            r.pop(c, None)
        for c in ("soft_classes", "soft_probs", "labels"):
            if r.get(c) is not None:
                r[c] = [float(v) for v in r[c]]
    return {"rows": rows, "thumbs": thumbs, "total": total, "sql": query}


def thumb_bytes(src: Source, row_id: str) -> bytes | None:
    """The JPEG thumbnail of one row (None when it has no decodable image)."""
    cols = ["id"] + [c for c in _IMAGE_COLS if src.has(c)]
    sel = ", ".join(f'"{c}"' for c in cols)
    rows = src.rows(f"SELECT {sel} FROM {{m}} WHERE id = ? LIMIT 1", [row_id])
    return thumb_from_row(rows[0]).jpeg if rows else None


def _readonly_sources(manifests: list, db: Path) -> list[Source]:
    """Register the views in ``db`` once, then reopen it read-only for the requests."""
    rw = duckdb.connect(str(db))
    sources = open_sources(manifests, con=rw)
    rw.close()
    ro = duckdb.connect(str(db), read_only=True)
    for s in sources:
        register_decoders(ro, s.manifest)
    return [dataclasses.replace(s, con=ro) for s in sources]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, fmt: str, *args) -> None:
        self.server.log(f"{self.address_string()} {fmt % args}")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: dict) -> None:
        body = json.dumps(obj, default=str, allow_nan=False).encode()
        self._send(code, body, "application/json")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/", "/index.html"):
                self._send(200, self.server.page.encode(), "text/html; charset=utf-8")
            elif url.path == "/api/rows":
                src = self.server.source(q.get("m", ""))
                page = {"page": int(q.get("page", 0)), "size": int(q.get("size", 60))}
                out = run_page(src, where=q.get("where", ""), order=q.get("order", ""), **page)
                self._json(200, json_safe(out))
            elif url.path == "/thumb":
                jpeg = thumb_bytes(self.server.source(q.get("m", "")), q.get("id", ""))
                if jpeg is None:
                    self._json(404, {"error": "no decodable image for that id"})
                else:
                    self._send(200, jpeg, "image/jpeg")
            else:
                self._json(404, {"error": f"no such page {url.path}"})
        except (InputError, ValueError) as exc:
            self._json(400, {"error": str(exc)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, sources: list[Source], page: str, log: Callable[[str], None]):
        super().__init__(addr, _Handler)
        self.sources = {s.name: s for s in sources}
        self.page, self.log = page, log

    def server_close(self) -> None:
        """Close the socket, the read-only connection and remove the views' database file."""
        super().server_close()
        for con in {id(s.con): s.con for s in self.sources.values()}.values():
            con.close()
        if getattr(self, "tmp_dir", None):
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def source(self, name: str) -> Source:
        if name not in self.sources:
            raise QueryError(f"no manifest {name!r}; choose one of {', '.join(self.sources)}")
        return self.sources[name]


def make_server(
    manifests: list[str | os.PathLike | Manifest],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    evaluation: str | os.PathLike | None = None,
    limits: Limits | None = None,
    log: Callable[[str], None] | None = None,
) -> ThreadingHTTPServer:
    """Build the page and a server for it (not yet serving; ``port=0`` picks a free one)."""
    if host not in LOOPBACK:
        raise InputError(
            f"curate serve binds to loopback only (127.0.0.1), not {host!r}: the page runs "
            "any SELECT a visitor types. Use an SSH tunnel to reach it from another machine."
        )
    log = log or (lambda _m: None)
    tmp = Path(tempfile.mkdtemp(prefix="curate-serve-"))
    sources = _readonly_sources(list(manifests), tmp / "views.duckdb")
    lim = limits or Limits(map_rows=20_000)
    data = build_data([], evaluation=evaluation, limits=lim, sources=sources, log=log)
    server = _Server((host, port), sources, render(data, serve=True), log)
    server.tmp_dir = tmp
    return server


def serve(manifests: list[str | os.PathLike | Manifest], **options) -> None:
    """Serve the report of ``manifests`` on http://127.0.0.1:PORT until interrupted.

    Options are those of :func:`make_server` (``host``, ``port``, ``evaluation``, ``limits``,
    ``log``).
    """
    server = make_server(manifests, **options)
    log = options.get("log") or print
    host, port = server.server_address[:2]
    log(f"serving {len(server.sources)} manifest(s) on http://{host}:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_in_thread(manifests: list, **options) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start :func:`make_server` in a daemon thread (tests, notebooks); ``server.shutdown()``."""
    server = make_server(manifests, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
