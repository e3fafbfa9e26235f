"""curate serve without a browser: loopback only, one read-only SELECT per request, paging."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from curate.errors import InputError
from curate.reporting.serve import QueryError, make_server, page_query, serve_in_thread
from curate.reporting.source import open_sources


def test_only_loopback(demo_dir):
    with pytest.raises(InputError, match="loopback only"):
        make_server([demo_dir / "pruned"], host="0.0.0.0")


@pytest.mark.parametrize(
    "where, order",
    [("true; DROP TABLE x", ""), ("", "id; COPY (SELECT 1) TO '/tmp/x.csv'"), ("((", "")],
)
def test_page_query_allows_one_select_only(demo_dir, where, order):
    src = open_sources([demo_dir / "pruned"])[0]
    with pytest.raises(QueryError):
        page_query(src, where=where, order=order)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_rows_api_pages_and_reports_bad_sql(demo_dir):
    server, _ = serve_in_thread([demo_dir / "pruned"], port=0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code, page = _get(f"{base}/api/rows?m=pruned&where=NOT%20keep&order=id&page=1&size=10")
        assert code == 200 and page["total"] == 240 and len(page["rows"]) == 10
        assert all(r["keep"] is False for r in page["rows"])
        assert all(page["thumbs"][r["id"]].startswith("data:image/jpeg") for r in page["rows"])
        code, err = _get(f"{base}/api/rows?m=pruned&where=nosuch%20%3E%201")
        assert code == 400 and "nosuch" in err["error"]
        code, err = _get(f"{base}/api/rows?m=other")
        assert code == 400 and "pruned" in err["error"]
        # the connection is read-only: a write inside a single SELECT still fails
        code, err = _get(f"{base}/api/rows?m=pruned&where=(SELECT%20nextval('s'))%20%3E%200")
        assert code == 400
    finally:
        server.shutdown()
        server.server_close()
