"""MkDocs hook: the docstrings cross-reference with Sphinx roles (``:class:`PruneConfig```),
which mkdocstrings' numpy parser leaves as text; the rendered page shows the name alone, as
code (``PruneConfig``, and ``~pkg.Name`` as ``Name``)."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):(<code>)~?(?:[\w.]+\.)?")


def _strip_roles(html: str) -> str:
    """``:class:<code>~a.b.C</code>`` -> ``<code>C</code>``; a role without ``~`` keeps its path."""

    def keep(match: re.Match) -> str:
        text = match.group(0)
        if "~" in text:
            return match.group(1)
        return match.group(1) + text[text.index("<code>") + len("<code>") :]

    return ROLE.sub(keep, html)


def on_page_content(html: str, page, config, files) -> str:
    return _strip_roles(html)
