"""Commands over manifests themselves: ``sql``, ``info`` and the built-in ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.errors import InputError

_MAX_PRINT_ROWS = 50


def _parse_manifests(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(
                f"--manifest {spec!r}: expected NAME=PATH, e.g. --manifest m=out/ingested"
            )
        out[name] = path
    return out


def _print_table(table, *, max_rows: int = _MAX_PRINT_ROWS) -> None:
    from curate.cli.app import console

    t = Table(show_lines=False)
    for name in table.column_names:
        t.add_column(name, overflow="fold")
    shown = table.slice(0, max_rows).to_pylist()
    for row in shown:
        t.add_row(*[_short(v) for v in row.values()])
    console.print(t)
    if table.num_rows > max_rows:
        console.print(f"... {table.num_rows - max_rows} more rows (use --out to write them all)")


def _short(value: object, width: int = 80) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list) and len(value) > 6:
        return "[" + ", ".join(_short(v) for v in value[:4]) + f", ... ({len(value)} items)]"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def sql_cmd(
    query: Annotated[str, typer.Argument(help="A DuckDB SQL query; manifests are views by name.")],
    manifest: Annotated[
        list[str], typer.Option("--manifest", "-m", help="NAME=PATH, repeatable.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the result to this Parquet file.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Run a DuckDB SQL query over manifests; print it, or stream it to Parquet with --out."""
    from curate.cli.app import console
    from curate.manifests.catalog import sql, sql_to_parquet
    from curate.manifests.io import prepare_output

    views = _parse_manifests(manifest or [])
    if out is not None:
        prepare_output(out, overwrite=overwrite)
        n = sql_to_parquet(query, out, **views)
        console.print(f"wrote {n} rows to {out}")
        return
    _print_table(sql(query, **views))


def info_cmd(
    manifest: Annotated[Path, typer.Argument(help="A manifest: Parquet file or directory.")],
) -> None:
    """Rows, columns and types, size on disk, label histogram, errors and producing steps."""
    from curate.cli.app import console
    from curate.manifests.info import describe

    console.print(render_info(describe(manifest)))


def render_info(info) -> Table:
    """A rich renderable of :class:`~curate.manifests.info.ManifestInfo`."""
    from rich.console import Group

    head = Table.grid(padding=(0, 2))
    head.add_row("manifest", info.path)
    head.add_row("rows", f"{info.rows:,}")
    head.add_row("on disk", f"{info.bytes_on_disk / 1e6:,.1f} MB in {info.files} file(s)")
    head.add_row("rows with errors", f"{info.error_rows:,}")
    for kind, n in info.error_kinds:
        head.add_row("", f"{kind}: {n:,}")
    head.add_row("steps", " → ".join(s["step"] for s in info.steps) or "(no run.json)")
    cols = Table("column", "type", title="columns", title_justify="left")
    for name, typ in info.columns:
        cols.add_row(name, typ)
    parts = [head, cols]
    if info.label_counts:
        labels = Table("label", "class", "rows", title="labels", title_justify="left")
        for label, name, n in info.label_counts:
            labels.add_row(str(label), name or "", f"{n:,}")
        parts.append(labels)
    return Group(*parts)


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the demo's manifests.")],
) -> None:
    """Run the pipeline on the built-in Fashion-MNIST test set (offline) into OUT."""
    from curate.cli.app import console
    from curate.demo import run_demo
    from curate.manifests.info import describe

    results = run_demo(out, log=console.print)
    console.print(render_info(describe(results["ingested"])))
    console.print(f"demo manifests: {', '.join(str(p) for p in results.values())}")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_cmd)
    app.command("info")(info_cmd)
    app.command("demo")(demo_cmd)
