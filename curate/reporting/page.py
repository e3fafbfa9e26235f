"""The report page: one HTML document with its CSS, JS and data inline (no network, no server)."""

from __future__ import annotations

import json
from importlib import resources

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{css}</style>
</head>
<body>
<header id="top"><h1>{title}</h1><div id="filters"></div></header>
<main id="app"><noscript>This report draws its galleries with JavaScript.</noscript></main>
<div id="tip" hidden></div>
<script id="curate-data" type="application/json">{data}</script>
<script>{js}</script>
</body>
</html>
"""

#: Nothing but this document and data: URIs may load; a served page may also ask its own origin.
_CSP = {
    False: "default-src 'none'; img-src data: 'self' file:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'",
    True: "default-src 'none'; img-src data: 'self' file:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; connect-src 'self'",
}


def asset(name: str) -> str:
    """The text of ``curate/reporting/assets/<name>``."""
    return resources.files("curate.reporting").joinpath("assets", name).read_text(encoding="utf-8")


def _js(serve: bool) -> str:
    return (
        (asset("serve.js") + "\n" if serve else "") + asset("check.js") + "\n" + asset("report.js")
    )


def render(data: dict, *, title: str = "curate report", serve: bool = False) -> str:
    """The page for ``data`` (see :func:`curate.reporting.build.build_data`)."""
    payload = json.dumps({**data, "serve": serve}, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c")  # only inside JSON strings: no </script> ends it
    return _TEMPLATE.format(
        title=title, css=asset("report.css"), js=_js(serve), data=payload, csp=_CSP[serve]
    )
