"""HTML building blocks shared by the report, the comparison and the profile pages. Every value
goes through `esc`: server messages, node names and workflow names are untrusted text."""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#0a0;font-weight:bold}.fail{color:#c00;font-weight:bold}.na{color:#888}
.verdict{font-size:1.3em;padding:8px 12px;border-radius:4px;display:inline-block}
.verdict.pass{background:#e6f6e6}.verdict.fail{background:#fbe6e6}
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
code{background:#f6f6f6;padding:0 3px}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(headers, rows, raw_columns=()) -> str:
    """rows of values; columns whose index is in raw_columns are trusted HTML built here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{cell if i in raw_columns else esc(fmt(cell))}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table_or_note(headers, rows, note: str) -> str:
    """The table, or where there is no row the sentence that says why (a section never renders empty)."""
    return table(headers, rows) if rows else f"<p>{esc(note)}</p>"


def state_cell(passed) -> str:
    return {
        True: '<span class="pass">PASS</span>',
        False: '<span class="fail">FAIL</span>',
        None: '<span class="na">n/a</span>',
    }[passed]


def inline_png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure(chart) -> str:
    if chart.path is None:  # not measured: one line, no empty panel
        return f'<p class="not-measured" id="{esc(chart.name)}"><b>{esc(chart.title)}</b>: {esc(chart.caption)}</p>'
    return (
        f'<figure id="{esc(chart.name)}"><h3>{esc(chart.title)}</h3>{inline_png(chart.path, chart.title)}'
        f"<figcaption>{esc(chart.caption)}</figcaption></figure>"
    )


def document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
