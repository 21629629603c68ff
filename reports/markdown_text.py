"""Server text (error types, device names, ComfyUI's version string) in the run folder's
README.md: a string from a server must read as that string, never as Markdown or HTML (a link,
an image fetched from elsewhere, a table cell boundary, a heading)."""
from __future__ import annotations

MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()#+-.!|~:")
HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}


def md_text(value) -> str:
    """`value` as literal text on one line, safe in a Markdown paragraph, list item or table cell."""
    out = []
    for ch in " ".join(str(value).split()):
        if ch in HTML:
            out.append(HTML[ch])
        elif ch in MARKDOWN_PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
