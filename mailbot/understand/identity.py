"""Who sent a mail and how it names itself, read from its raw header block alone, in bounded time.

The full parser (decode.parse_mail) runs on the budgeted reader process and may fail or be killed; this is
what the intake records about a mail whatever becomes of its body: Message-ID, From, Subject, Date, and the
Message-IDs it refers to. Pure, never raises, linear in its (capped) input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailbot.understand.decode import _decode_header, _mail_date, _message_ids

MAX_HEADER_BLOCK = 256 * 1024  # the header block is never read past this many bytes
MAX_VALUE = 8 * 1024  # characters kept of one header's value (a 1 MiB Subject is cut here)
_WANTED = ("message-id", "from", "subject", "date", "in-reply-to", "references")


@dataclass(frozen=True)
class Identity:
    message_id: str | None  # without angle brackets; None when the mail has none (or none that is readable)
    sender_name: str | None
    sender_email: str | None  # lower case
    subject: str
    date: datetime | None  # aware
    in_reply_to: str | None
    references: tuple[str, ...]


def header_block(raw: bytes) -> bytes:
    """The bytes before the first empty line, at most MAX_HEADER_BLOCK of them."""
    head = raw[:MAX_HEADER_BLOCK]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    return head[: min(ends)] if ends else head


def _fields(block: bytes) -> dict[str, str]:
    """The first occurrence of each wanted header, unfolded, as text (8-bit bytes kept as surrogates)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block.replace(b"\x00", b"").split(b"\n"):
        text = line.rstrip(b"\r").decode("utf-8", "surrogateescape")
        if text[:1] in (" ", "\t"):
            if current is not None and sum(map(len, current)) < MAX_VALUE:
                current.append(text[:MAX_VALUE])
            continue
        name, colon, value = text.partition(":")
        name = name.strip().lower()
        if colon and name in _WANTED and name not in found:
            current = found[name] = [value[:MAX_VALUE]]
        else:
            current = None
    return {name: " ".join(part.strip() for part in parts)[:MAX_VALUE].strip() for name, parts in found.items()}


def read_identity(raw: bytes | None) -> Identity:
    """Message-ID, From, Subject, Date and references of `raw`, whatever state its body is in."""
    fields = _fields(header_block(raw or b""))
    routing = _routing(fields)
    sender_name = sender_email = None
    subject = ""
    try:
        if "subject" in fields:
            subject = _decode_header("subject", fields["subject"]).text[:MAX_VALUE]
        if "from" in fields:
            header = _decode_header("from", fields["from"])
            if header.addresses:
                display, address = header.addresses[0]
                sender_name = display.strip()[:255] or None
                sender_email = address.strip().lower()[:320] if "@" in address else None
    except Exception:  # noqa: BLE001  (the promise: an identity, never an error; what was read so far stands)
        pass
    return Identity(
        routing.message_id, sender_name, sender_email, subject, routing.date, routing.in_reply_to, routing.references
    )


@dataclass(frozen=True)
class Routing:
    """What the intake's main process needs of a mail before it is read (its context: the day's lists in force,
    the Message-IDs it refers to), without decoding From or Subject: the reader does that, and `read_identity`
    when a mail cannot be read."""

    message_id: str | None
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]


def read_routing(raw: bytes | None) -> Routing:
    """Message-ID, Date and references of `raw`; like `read_identity`, never raises."""
    return _routing(_fields(header_block(raw or b"")))


def _routing(fields: dict[str, str]) -> Routing:
    message_id = in_reply_to = date = None
    references: tuple[str, ...] = ()
    try:
        if "message-id" in fields:
            ids = _message_ids(fields["message-id"])
            message_id = ids[0][:998] if ids else None
        if "in-reply-to" in fields:
            ids = _message_ids(fields["in-reply-to"])
            in_reply_to = ids[0][:998] if ids else None
        if "references" in fields:
            references = tuple(item[:998] for item in _message_ids(fields["references"])[:100])
        if "date" in fields:
            date = _mail_date(fields["date"], [])
    except Exception:  # noqa: BLE001  (what was read so far stands)
        pass
    return Routing(message_id, date, in_reply_to, references)
