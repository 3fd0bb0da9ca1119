"""Turn the HTML of a mail body (Outlook, Gmail, Apple Mail) into the plain text a reader sees.
Pure: never fetches anything the HTML points to and never raises on broken markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown. Outlook puts its whole CSS in <head><style>, and
# Word's <xml> islands carry document properties, not text.
_HIDDEN = frozenset({"head", "style", "script", "title", "xml", "template", "noscript"})

# Elements that start and end a line of their own (the CSS display:block ones that occur in mail).
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "tr",
        "table",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "dl",
        "dt",
        "dd",
        "address",
        "section",
        "article",
        "header",
        "footer",
        "center",
        "caption",
        "body",
        "blockquote",
    }
)

_CELLS = frozenset({"td", "th"})

# Outlook's own plain-text rendering of a reply separator; drawing <hr> the same way lets one
# reply splitter serve both HTML and plain bodies.
OUTLOOK_SEPARATOR = "_" * 32

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []  # (blockquote depth, text)
        self.current: list[str] = []
        self.current_depth = 0  # blockquote depth of the line being built
        self.quote_depth = 0
        self.hidden: list[str] = []  # open hidden elements, innermost last
        self.pre_depth = 0
        # Per open <table>: cells seen in the current row and the cell depth outside the table.
        # A table inside a cell (Outlook layout tables) gets rows of its own again.
        self.tables: list[tuple[int, int]] = []
        self.cell_depth = 0

    # -- output -----------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if not self.current:
            self.current_depth = self.quote_depth
        self.current.append(text)

    def _newline(self) -> None:
        depth = self.current_depth if self.current else self.quote_depth
        self.lines.append((depth, "".join(self.current)))
        self.current = []

    def _break_block(self) -> None:
        """Start a fresh line unless the current one is still empty; inside a cell, a space."""
        if self.cell_depth:
            self._write(" ")
        elif (line := "".join(self.current)).strip() or "\xa0" in line:
            # Outlook writes an empty paragraph as <p>&nbsp;</p>: a blank line the reader sees.
            self._newline()
        else:
            self.current = []

    # -- parser callbacks -------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # A missing </head> must not hide the body.
            self.hidden = [name for name in self.hidden if name != "head"]
        if tag in _HIDDEN:
            self.hidden.append(tag)
            return
        if self.hidden:
            return
        if tag == "br":
            if self.cell_depth:
                self._write(" ")
            else:
                self._newline()
        elif tag == "hr":
            self._break_block()
            if not self.cell_depth:
                self._write(OUTLOOK_SEPARATOR)
                self._newline()
        elif tag in _CELLS:
            if self.tables:
                cells, outer = self.tables[-1]
                if cells:
                    self._write(" | ")
                self.tables[-1] = (cells + 1, outer)
            self.cell_depth += 1
        elif tag == "table":
            self._break_block()
            self.tables.append((0, self.cell_depth))
            self.cell_depth = 0
        elif tag == "tr":
            if self.tables:
                self.tables[-1] = (0, self.tables[-1][1])
            self._break_block()
        elif tag == "blockquote":
            self._break_block()
            self.quote_depth += 1
        elif tag == "li":
            self._break_block()
            self._write("- ")
        elif tag in _BLOCKS:
            if tag == "pre":
                self.pre_depth += 1
            self._break_block()
        elif tag == "img":
            # Only images with a real description say something; "image001.png" does not.
            alt = dict(attrs).get("alt") or ""
            if alt and not re.search(r"\.(png|jpe?g|gif|bmp)$", alt, re.IGNORECASE):
                self._write(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and <hr/> are common; a self-closed <div/> or <td/> must not stay open.
        if tag in _HIDDEN:
            return
        self.handle_starttag(tag, attrs)
        if tag in _BLOCKS or tag in _CELLS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if tag in self.hidden:
                # Close the innermost matching element; unclosed inner ones close with it.
                del self.hidden[len(self.hidden) - 1 - self.hidden[::-1].index(tag) :]
            return
        if self.hidden:
            return
        if tag in _CELLS:
            self.cell_depth = max(0, self.cell_depth - 1)
        elif tag == "table":
            self.cell_depth = 0
            self._break_block()
            if self.tables:
                self.cell_depth = self.tables.pop()[1]
        elif tag == "tr":
            self.cell_depth = 0  # an unclosed <td> ends with its row
            self._break_block()
        elif tag == "blockquote":
            self._break_block()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag in _BLOCKS:
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
            self._break_block()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre_depth and not self.cell_depth:
            for number, piece in enumerate(data.split("\n")):
                if number:
                    self._newline()
                self._write(piece)
            return
        # Outside <pre>, source line breaks and runs of white space are one space (HTML 4.01 §9.1).
        self._write(re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        if self.current:
            self._newline()
        return _tidy(self.lines)


def _tidy(lines: list[tuple[int, str]]) -> str:
    cleaned: list[str] = []
    for depth, text in lines:
        text = re.sub(r"[ \t]{2,}", " ", text.translate(_INVISIBLE).replace("\xa0", " ")).strip()
        line = ("> " * depth + text).rstrip()
        if not text and cleaned and not cleaned[-1].strip("> "):
            continue  # at most one blank line in a row, as a reader sees it
        cleaned.append(line)
    return "\n".join(cleaned).strip("\n")


def html_to_text(html: str) -> str:
    """The text of an HTML mail body: one line per paragraph, div, list item or table row,
    table cells joined with " | ", blockquotes prefixed "> ", <hr> drawn as Outlook's separator."""
    builder = _TextBuilder()
    try:
        builder.feed(html)
        builder.close()
    except AssertionError:
        # html.parser asserts on some malformed declarations ("<![" without an end); what was
        # read up to there is still the best text there is.
        pass
    return builder.text()
