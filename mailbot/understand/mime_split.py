"""A quicker way to the message tree the stdlib's parser builds, for the plain MIME structure most mail has.

`email.feedparser` reads a mail one line at a time, in Python: a 57 kB PDF attachment is about 750 base64 lines,
and reading them costs more than everything the understanding later does with the PDF's text. `split` finds the
same parts with `str.find` over the whole text: each part's header block is still parsed by the stdlib (the same
parser, `headersonly`), only the bodies are cut out of the text instead of read line by line.

It builds exactly what `email.message_from_bytes(raw, policy=...)` would (the same headers, payload strings,
preamble, epilogue and default types; tests/understand/test_mime_split.py compares the two over every mail under
tests/), or returns None, and the caller uses the stdlib's parser, for anything outside the plain structure: a
line ending that is a bare CR, a header block the stdlib would flag as defective, a multipart part without a
header block or without its closing boundary, an empty part, a message/* part (a forwarded mail, a delivery
report), a multipart/digest, nesting deeper than MAX_DEPTH. Pure: text in, message tree out.
"""

from __future__ import annotations

import email.message
import email.parser
import re
from email.policy import Policy

MAX_DEPTH = 16  # multiparts within multiparts; deeper is left to the stdlib's parser (and decode.py's caps)
_BOUNDARY_REST = re.compile(r"(--)?[ \t]*(\r\n|\n)?\Z")  # what may follow "--boundary" on its line (feedparser's)
_HEADER_END = re.compile(r"\r?\n\r?\n")
_PLAIN_CTE = ("7bit", "8bit", "binary")


class _NotPlain(Exception):
    """The structure is one the stdlib's parser should read (it names the defect, or parses what this does not)."""


def split(raw: bytes, policy: Policy) -> email.message.Message | None:
    """The message tree of `raw`, as `email.message_from_bytes(raw, policy=policy)` builds it; None when the mail
    is not of the plain structure described above (the caller then parses it with the stdlib)."""
    if raw.count(b"\r") != raw.count(b"\r\n"):
        return None  # a bare CR ends a line for the stdlib; not worth the bookkeeping here
    text = raw.decode("ascii", "surrogateescape")  # as BytesParser does
    try:
        return _part(text, 0, len(text), policy, 0)
    except _NotPlain:
        return None


def _part(text: str, start: int, end: int, policy: Policy, depth: int) -> email.message.Message:
    """The message in text[start:end] (headers, blank line, body)."""
    if text.startswith(("\n", "\r\n"), start, end):
        raise _NotPlain("no header block")  # the stdlib reads it (a part of only a body is rare)
    found = _HEADER_END.search(text, start, end)
    if found is None:
        raise _NotPlain("no end of the header block")
    parser = email.parser.Parser(policy=policy)
    message = parser.parsestr(text[start : found.end()], headersonly=True)
    if message.defects:
        raise _NotPlain("defects in the header block")
    body = found.end()
    maintype = message.get_content_maintype()
    if maintype == "message":
        raise _NotPlain("a message part: the stdlib parses the message inside")
    if maintype != "multipart":
        message._payload = text[body:end]  # type: ignore[attr-defined]  # what the stdlib's set_payload stores
        return message
    if depth >= MAX_DEPTH:
        raise _NotPlain("nested too deep")
    boundary = message.get_boundary()
    if not boundary:
        raise _NotPlain("a multipart without a boundary")
    if str(message.get("content-transfer-encoding", "8bit")).lower() not in _PLAIN_CTE:
        raise _NotPlain("a multipart with a transfer encoding (a defect for the stdlib)")
    if message.get_content_type() == "multipart/digest":
        raise _NotPlain("a digest (its parts are message/rfc822 by default)")
    lines = _boundary_lines(text, body, end, "--" + boundary)
    if not lines or not lines[-1][2]:
        raise _NotPlain("no closing boundary")
    if len(lines) < 2:
        raise _NotPlain("no part: the first boundary is the closing one")
    first_start = lines[0][0]
    if first_start > body:
        # RFC 2046: the line break before a boundary belongs to the boundary.
        message.preamble = _without_final_line_break(text[body:first_start])
    parts: list[email.message.Message] = []
    for (_, after, _), (next_start, _, _) in zip(lines, lines[1:], strict=False):  # the last one closes
        if next_start == after:
            raise _NotPlain("an empty part (two boundary lines in a row)")
        part = _part(text, after, next_start, policy, depth + 1)
        if part.get_content_maintype() == "multipart":
            epilogue = part.epilogue
            part.epilogue = None if epilogue == "" else _without_final_line_break(epilogue or "")
        else:
            part._payload = _without_final_line_break(part._payload)  # type: ignore[attr-defined]
        parts.append(part)
    message._payload = parts  # type: ignore[attr-defined]  # what the stdlib's attach builds, part by part
    message.epilogue = text[lines[-1][1] : end]
    return message


def _boundary_lines(text: str, start: int, end: int, separator: str) -> list[tuple[int, int, bool]]:
    """(line start, line end after its line break, is the closing one) of each boundary line in text[start:end],
    up to the closing one."""
    found: list[tuple[int, int, bool]] = []
    at = start
    while True:
        hit = text.find(separator, at, end)
        if hit < 0:
            return found
        line_end = text.find("\n", hit, end)
        line_end = end if line_end < 0 else line_end + 1
        at = hit + len(separator)
        if hit != start and text[hit - 1] != "\n":
            continue  # not at the start of a line
        rest = _BOUNDARY_REST.match(text, at, line_end)
        if rest is None:
            continue  # "--boundary" followed by more: an ordinary line (or another boundary that begins so)
        closing = rest.group(1) is not None
        found.append((hit, line_end, closing))
        if closing:
            return found
        at = line_end


def _without_final_line_break(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value
