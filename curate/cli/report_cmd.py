"""``curate report`` (one self-contained HTML page) and ``curate serve`` (a loopback server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_Manifests = Annotated[list[Path], typer.Argument(help="Manifests (Parquet files or folders).")]
_Evaluation = Annotated[
    Path | None, typer.Option("--evaluation", help="curate evaluate's result.json, as a table.")
]


def report_cmd(
    manifests: _Manifests,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="report.html (one file), or a folder (index.html + thumbs/); default "
            "NAME-report.html beside the first manifest.",
        ),
    ] = None,
    evaluation: _Evaluation = None,
    map_rows: Annotated[
        int, typer.Option("--map-rows", help="Rows sampled for the embedding map.")
    ] = 50_000,
    max_thumbs: Annotated[
        int | None,
        typer.Option("--max-thumbs", help="Thumbnail budget (default 2000 file, 20000 folder)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing page.")
    ] = False,
    progress: Annotated[
        str,
        typer.Option(
            "--progress",
            help="auto (a bar on a terminal, a line at least every 25 s "
            "in logs), bar, lines or off.",
        ),
    ] = "auto",
) -> None:
    """Write a page a person looks at: the sections each manifest's columns allow."""
    from dataclasses import replace

    from curate.cli.app import console
    from curate.reporting import FOLDER_LIMITS, Limits, report

    folder = out is not None and out.suffix.lower() not in (".html", ".htm")
    limits = replace(FOLDER_LIMITS if folder else Limits(), map_rows=map_rows)
    path = report(
        manifests,
        out,
        evaluation=evaluation,
        limits=limits,
        max_thumbs=max_thumbs,
        overwrite=overwrite,
        progress=progress,
        log=lambda m: console.print(m, highlight=False),
    )
    size = path.stat().st_size
    console.print(
        f"wrote {path} ({size / 1e6:.2f} MB); open it in a browser (file://{path.resolve()})"
    )


def serve_cmd(
    manifests: _Manifests,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Loopback address only.")] = "127.0.0.1",
    evaluation: _Evaluation = None,
) -> None:
    """Browse manifests too big for one page: paged galleries by any SQL WHERE / ORDER BY."""
    from curate.cli.app import console
    from curate.reporting.serve import serve

    serve(manifests, host=host, port=port, evaluation=evaluation, log=console.print)


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``serve`` to the app."""
    app.command("report")(report_cmd)
    app.command("serve")(serve_cmd)
