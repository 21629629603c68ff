"""Server text (error types, device names, ComfyUI's version string) in the run folder's
README.md: a string from a server must read as that string, never as Markdown or HTML (a link,
an image fetched from elsewhere, a table cell boundary, a heading)."""

from __future__ import annotations

# Always escaped: links and images ([ ] ( ) !), emphasis (* ~ `), table cells (|), escapes (\\),
# and HTML (< > & "). `_` only where it can open or close emphasis (not inside a word).
ALWAYS = frozenset("\\`*[]()!|~{}")
HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}
# At the start of the text a block marker (heading, quote, list, thematic break) would be read as one.
LEADING = frozenset("#>-+=")


def md_text(value) -> str:
    """`value` as literal text on one line, safe in a Markdown paragraph, list item or table cell."""
    text = " ".join(str(value).split())
    out = []
    for i, ch in enumerate(text):
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if ch in HTML:
            out.append(HTML[ch])
        elif (
            ch in ALWAYS
            or (ch == "_" and not (before.isalnum() and after.isalnum()))
            or (i == 0 and ch in LEADING)
            or (ch == ":" and text[i + 1 : i + 3] == "//")
        ):
            out.append("\\" + ch)
        elif ch in ".)" and text[:i].isdigit() and after in (" ", ""):
            out.append("\\" + ch)  # "1." at the start: an ordered list
        else:
            out.append(ch)
    return "".join(out)
