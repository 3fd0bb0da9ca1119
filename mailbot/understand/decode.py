"""Decode one raw mail into a ParsedMail: charsets, MIME tree, winmail.dat, forwards, quotes, bounces.
Pure: never does I/O or reads the clock, and never raises, whatever bytes it is given."""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email._header_value_parser
import email.headerregistry
import email.message
import email.policy
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import errors as email_errors
from email import policy
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime

from tnefparse import TNEF

from mailbot.understand import mime_split
from mailbot.understand.html_text import html_to_text
from mailbot.understand.types import Attachment, ForwardedFrom, ParsedMail

MAX_ATTACHED_MAIL_DEPTH = 3
MAX_HEADER_VALUE = 64 * 1024  # characters of one header value that are decoded
MAX_HEADERS = 1000  # header fields of one message that are read
MAX_PARTS = 500  # MIME parts of one mail that are read (real mail has a few, a newsletter some dozens)
_MAX_MIME_NESTING = 40  # far beyond real mail; guards the recursion against crafted input

# What policy.default's header parser raises on malformed headers: CPython 3.11 raises IndexError
# on "Content-Disposition: attachment; filename*" and UnboundLocalError (a NameError) on some
# broken domain literals. On these the header, or the whole mail, is read again compat32 style.
_PARSER_ERRORS = (
    email_errors.MessageError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    LookupError,
    NameError,
)


def parse_mail(raw: bytes) -> ParsedMail:
    """Everything one mail says, decoded. Never raises: what cannot be read is named in `defects`."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        return _empty_mail([f"expected the mail as bytes, got {type(raw).__name__}"])
    _FETCHED_LONG.clear()
    try:
        return _parse_safely(bytes(raw), depth=0)
    finally:
        _FETCHED_LONG.clear()


class _ReadMessage(email.message.EmailMessage):
    """EmailMessage whose parameter lists (Content-Type's charset, name, boundary; Content-Disposition's filename)
    are split once per header value, not at each get_param: the parser and the MIME walker ask a part several."""

    def _get_params_preserve(self, failobj, header):  # type: ignore[no-untyped-def]
        value = self.get(header, _NO_HEADER)
        if value is _NO_HEADER:
            return failobj
        if not isinstance(value, str) or len(value) > 2000:
            return super()._get_params_preserve(failobj, header)
        params = _PARAMETER_LISTS.get(value)
        if params is None:
            params = super()._get_params_preserve(failobj, header)
            if len(_PARAMETER_LISTS) >= 4096:
                _PARAMETER_LISTS.clear()
            _PARAMETER_LISTS[value] = params
        return list(params)  # the stdlib hands out a fresh list each time; so does this


_NO_HEADER = object()
_PARAMETER_LISTS: dict[str, list[tuple[str, object]]] = {}


class _ReadingPolicy(email.policy.Compat32):
    """compat32 (no header classes), but a header value fetched (Content-Type, Content-Disposition, Content-ID,
    Content-Transfer-Encoding: what the parser and the MIME walker ask each part) is the text policy.default's
    header class shows, so the parser splits parts and names types, charsets and files as policy.default would.
    That text is computed directly for the plain forms real mail uses (`_fetched_text`), else by the header class;
    either way it is remembered (mails share most of these values)."""

    message_factory = _ReadMessage

    def header_fetch_parse(self, name, value):  # type: ignore[no-untyped-def]
        if not isinstance(value, str):
            return value
        key = (name, value)
        # Long values (a hostile 1 MB Content-Type, which the header class parses in quadratic time) are kept only
        # for the mail being read, a few at a time: the parser and the walker fetch a part's Content-Type often.
        cache, bound = (_FETCHED, 4096) if len(value) <= 2000 else (_FETCHED_LONG, 8)
        text = cache.get(key)
        if text is None:
            text = _fetched_text(name, value)
            if len(cache) >= bound:
                cache.clear()
            cache[key] = text
        return text


_FETCHED: dict[tuple[str, str], str] = {}
_FETCHED_LONG: dict[tuple[str, str], str] = {}  # emptied by parse_mail
_DEFAULT = _ReadingPolicy()
_LINE_BREAK = re.compile(r"\n|\r")


def _fetched_text(name: str, value: str) -> str:
    """str() of policy.default's header object for this raw value (what Message.get returns under it)."""
    value = "".join(_LINE_BREAK.split(value))  # as EmailPolicy.header_fetch_parse
    if value.isascii() and "=?" not in value:
        lowered = name.lower()
        if lowered not in _STRUCTURED_HEADERS:
            return value
        if lowered in ("content-type", "content-disposition"):
            shown = _quick_parameterized(lowered, value)
            if shown is not None:
                return shown
    # A value the header class cannot read raises here as under policy.default: _parse_bytes reads the mail again.
    return str(policy.default.header_factory(name, value))


def _parse_safely(raw: bytes, depth: int) -> ParsedMail:
    try:
        return _parse_bytes(raw, depth)
    except MemoryError:
        raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
    except Exception as error:  # parse_mail's promise; the error is kept as a defect
        return _empty_mail([f"the mail could not be read at all: {error!r}"])


def _parse_bytes(raw: bytes, depth: int) -> ParsedMail:
    defects: list[str] = []
    if not raw.strip():
        defects.append("the mail is empty")
    try:
        return _read_message(_message_tree(raw), depth, defects)
    except _PARSER_ERRORS as error:
        defects.append(f"the standard parser failed ({error!r}); the mail was read again with compat32")
    return _read_message(email.message_from_bytes(raw, policy=policy.compat32), depth, defects)


def _message_tree(raw: bytes) -> email.message.Message:
    """What `email.message_from_bytes(raw, policy=_DEFAULT)` builds: through mime_split for the plain structure most
    mail has (without reading the bodies line by line), else by the stdlib's parser."""
    try:
        tree = mime_split.split(raw, _DEFAULT)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001  (the stdlib's parser then reads it, and names what it finds)
        tree = None
    return tree if tree is not None else email.message_from_bytes(raw, policy=_DEFAULT)


def _empty_mail(defects: list[str]) -> ParsedMail:
    return ParsedMail(
        message_id=None,
        in_reply_to=None,
        references=(),
        subject="",
        sender_name=None,
        sender_email=None,
        to=(),
        date=None,
        headers=(),
        body_text="",
        defects=tuple(defects),
    )


# --- charsets ------------------------------------------------------------------------------


def decode_text(data: bytes, charset: str | None) -> str:
    """`data` as text in its declared charset, repaired the way mail clients do: ISO-8859-1 with
    bytes 0x80-0x9F is Windows-1252, and an unknown or missing charset is UTF-8, else Windows-1252."""
    return _decode_with_note(data, charset)[0]


def _decode_with_note(data: bytes, charset: str | None) -> tuple[str, str | None]:
    label = (charset or "").strip().strip("\"'").lower()
    codec = _codec_name(label)
    if codec is None or codec in ("ascii", "utf-8"):
        note = f"unknown charset {label!r}; read as UTF-8 or Windows-1252" if label and codec is None else None
        return _decode_guess(data), note
    if codec in ("iso8859-1", "iso8859-15") and re.search(rb"[\x80-\x9f]", data):
        # These bytes are C1 controls in ISO-8859-1 and never meant as such: Windows software
        # labels Windows-1252 text as ISO-8859-1 (the WHATWG Encoding Standard maps it so too).
        codec = "cp1252"
    return data.decode(codec, errors="replace"), None


def _codec_name(label: str) -> str | None:
    if not label:
        return None
    label = label.split("*", 1)[0]  # RFC 2231 §5 language suffix: "utf-8*sv"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: a NUL byte in the label
        return None
    # codecs also knows bytes-to-bytes transforms ("base64", "zlib"); they are not charsets.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _decode_guess(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Valid multi-byte sequences mean damaged UTF-8 (a cut base64 line); none means 8-bit Windows.
    if _UTF8_MULTIBYTE.search(data):
        return data.decode("utf-8", errors="replace")
    return data.decode("cp1252", errors="replace")


def _repair_surrogates(text: str) -> str:
    """The parser keeps undeclared 8-bit bytes as surrogate escapes; read them as text."""
    if not re.search("[\udc80-\udcff]", text):
        return text
    return _decode_guess(text.encode("utf-8", errors="surrogateescape"))


# --- headers -------------------------------------------------------------------------------

_ENCODED_WORD = r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?="
_ENCODED_RUN = re.compile(rf"{_ENCODED_WORD}(?:\s*{_ENCODED_WORD})*")
_ENCODED_PARTS = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def _decode_run(run: str) -> str:
    """Adjacent RFC 2047 encoded words as one text. Words of one charset are joined before
    decoding because Outlook splits multi-byte characters across words."""
    pieces: list[tuple[str, bytes]] = []
    for charset, encoding, encoded in _ENCODED_PARTS.findall(run):
        try:
            raw = encoded.encode("utf-8", "surrogateescape")
            data = binascii.a2b_qp(raw, header=True) if encoding.lower() == "q" else binascii.a2b_base64(raw + b"==")
        except (binascii.Error, ValueError):
            data = encoded.encode("utf-8", "surrogateescape")
        if pieces and pieces[-1][0] == charset.lower():
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + data)
        else:
            pieces.append((charset.lower(), data))
    return "".join(decode_text(data, charset) for charset, data in pieces)


def _decode_encoded_words(value: str) -> str:
    # RFC 2047 §6.2: white space between adjacent encoded words is not displayed.
    return _ENCODED_RUN.sub(lambda match: _decode_run(match.group(0)), value)


def _as_utf8_words(value: str) -> str:
    """Every run of encoded words re-encoded as one UTF-8 word, so the stdlib parser, which keeps
    the header's structure (quoted names with commas), never meets a charset it cannot read."""

    def encode(match: re.Match[str]) -> str:
        text = _decode_run(match.group(0))
        return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii") + "?="

    return _ENCODED_RUN.sub(encode, value)


@dataclass(frozen=True)
class _Header:
    text: str  # decoded for display
    unfolded: str  # as sent, on one line: the stdlib rewrites some values (a zone-less Date gets "-0000")
    addresses: tuple[tuple[str, str], ...]  # (display name, address) for address headers


_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to"})


# The names policy.default parses with a header class of its own (addresses, dates, MIME parameters); every other
# header is unstructured text.
_STRUCTURED_HEADERS = frozenset(
    name
    for name, cls in policy.default.header_factory.registry.items()
    if not issubclass(cls, email.headerregistry.UnstructuredHeader)
)


def _decode_header(name: str, raw: str) -> _Header:
    """One header decoded; short values are remembered (mails share most of their Content-Type, To, MIME-Version)."""
    if len(raw) > 2000:
        return _decode_header_value(name, raw)
    key = (name, raw)
    header = _DECODED_HEADERS.get(key)
    if header is None:
        header = _decode_header_value(name, raw)
        if len(_DECODED_HEADERS) >= 4096:
            _DECODED_HEADERS.clear()
        _DECODED_HEADERS[key] = header
    return header


_DECODED_HEADERS: dict[tuple[str, str], _Header] = {}


def _decode_header_value(name: str, raw: str) -> _Header:
    # RFC 5322 §2.2.3: unfolding removes the line break before folding white space.
    text = re.sub(r"\r?\n(?=[ \t])", "", _repair_surrogates(str(raw))).replace("\r", "").replace("\n", " ")
    quick = _quick_header(name.lower(), text)
    if quick is not None:
        return quick
    return _parsed_header(name, text)


def _parsed_header(name: str, text: str) -> _Header:
    """`text` decoded by policy.default's header class for `name` (the reference `_quick_header` must equal)."""
    try:
        header = policy.default.header_factory(name, _as_utf8_words(text))
        decoded = str(header)
        addresses = tuple(
            (address.display_name, address.addr_spec) for address in getattr(header, "addresses", ()) or ()
        )
    except _PARSER_ERRORS:
        # compat32 style: decode the words in place and split addresses the old way.
        decoded = _decode_encoded_words(text)
        addresses = tuple(getaddresses([decoded])) if name.lower() in _ADDRESS_HEADERS else ()
    return _Header(_repair_surrogates(decoded).strip(), text.strip(), addresses)


# --- headers the stdlib's header classes need not parse -------------------------------------------------
#
# policy.default's header classes are most of what decoding a header block costs. For the forms real mail uses
# (a plain Content-Type, a Date, "Anna Öberg <anna@x.se>", an encoded Subject) `_quick_header` gives the value
# those classes give, computed directly; any other form (comments, groups, quoted pairs, obsolete syntax, encoded
# words where RFC 2047 does not put them) returns None and is parsed by them. tests/understand/test_decode.py
# checks it against `_parsed_header` on real and generated values.

_DATE_HEADERS = frozenset({"date", "resent-date", "orig-date"})
_MIME_HEADERS = frozenset({"mime-version", "content-type", "content-disposition", "content-transfer-encoding"})
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]"  # RFC 5322 atext without "=" and "?" (they open encoded words)
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = rf"({_DOT_ATOM})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
_ID_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"  # "=?" is ruled out before
_SIMPLE_MESSAGE_ID = re.compile(rf"<{_ID_ATOM}@{_ID_ATOM}>")
# One mailbox: a bare address, or a display name (words, one quoted string, or encoded words) and <address>.
# Words exclude RFC 5322 specials, white space and controls; "=" is checked separately (encoded words).
_PHRASE_WORD = r"[^\x00-\x20\x7f()<>\[\]:;@\\,.\"\s]+"
_MAILBOX = re.compile(
    rf"[ \t]*(?:{_ADDR_SPEC}|(?:\"([^\"\\\x00-\x1f\x7f]*)\"|({_PHRASE_WORD}(?:[ \t]+{_PHRASE_WORD})*))?[ \t]*"
    rf"<{_ADDR_SPEC}>)[ \t]*(,|$)"
)
_TOKEN = r"[!#$&+.^_`|~0-9A-Za-z-]+"  # RFC 2045 token without "*", "'" and "%" (RFC 2231 is left to the stdlib)
_PARAMETER = re.compile(rf";[ \t]*({_TOKEN})=(?:({_TOKEN})|\"([^\"\\\x00-\x1f\x7f]*)\")[ \t]*")
_PARAMETERIZED = {
    "content-type": re.compile(rf"[ \t]*{_TOKEN}/{_TOKEN}"),
    "content-disposition": re.compile(rf"[ \t]*{_TOKEN}"),
}
_SIMPLE_MIME = {
    "mime-version": re.compile(r"[ \t]*[0-9]+\.[0-9]+[ \t]*"),
    "content-transfer-encoding": re.compile(rf"[ \t]*{_TOKEN}[ \t]*"),
}
_PLAIN_DECODED = re.compile(r"[^\x00-\x20\x7f\"\\\s]+(?: [^\x00-\x20\x7f\"\\\s]+)*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _quick_header(name: str, text: str) -> _Header | None:
    """`_parsed_header(name, text)` for the forms real mail uses, without the header classes; None for others."""
    stripped = text.strip()
    if name not in _STRUCTURED_HEADERS:
        if "=?" not in text:
            # Unstructured text (Received, DKIM-Signature, X-MS-...: most of an Outlook mail's header block)
            # decodes to itself.
            return _Header(stripped, stripped, ())
        if "=?" in _ENCODED_RUN.sub("", text):
            return None  # something like an encoded word the stdlib may read differently
        decoded = _decode_encoded_words(text)
        if _SURROGATE.search(decoded):
            return None
        return _Header(decoded.strip(), stripped, ())
    if not text.isascii() and name not in _ADDRESS_HEADERS:
        return None
    if name in _ADDRESS_HEADERS:
        addresses = _quick_addresses(text)
        if addresses is None:
            return None
        shown = ", ".join(
            str(email.headerregistry.Address(display, local, domain)) for display, local, domain in addresses
        )
        return _Header(
            shown.strip(), stripped, tuple((display, f"{local}@{domain}") for display, local, domain in addresses)
        )
    if "=?" in text:
        return None
    if name in _MIME_HEADERS:
        if name in ("content-type", "content-disposition"):
            shown = _quick_parameterized(name, text)
            return None if shown is None else _Header(shown.strip(), stripped, ())
        if _SIMPLE_MIME[name].fullmatch(text):
            return _Header(stripped, stripped, ())  # the header class keeps such text as it is
        return None
    if name in _DATE_HEADERS:
        if not text:
            return _Header("", "", ())
        try:
            when = parsedate_to_datetime(text)
        except ValueError:
            return _Header(stripped, stripped, ())
        except _PARSER_ERRORS:
            return None
        return _Header(email.utils.format_datetime(when).strip(), stripped, ())
    if name == "message-id" and _SIMPLE_MESSAGE_ID.fullmatch(stripped):
        return _Header(stripped, stripped, ())
    return None


def _quick_parameterized(name: str, text: str) -> str | None:
    """What ContentTypeHeader or ContentDispositionHeader shows for a plain value: the type as written, then each
    parameter as name="value" (a value always quoted, an empty one as the bare name)."""
    head = _PARAMETERIZED[name].match(text)
    if head is None:
        return None
    position = head.end()
    parameters: list[str] = []
    names: set[str] = set()
    while position < len(text):
        found = _PARAMETER.match(text, position)
        if found is None:
            return None
        key, token, quoted = found.groups()
        if key in names:
            return None  # a repeated parameter: the stdlib keeps the first, with a defect
        names.add(key)
        value = token if token is not None else quoted
        parameters.append(f"{key}={email._header_value_parser.quote_string(value)}" if value else key)
        position = found.end()
    if not parameters:
        return text[: head.end()]
    return text[: head.end()] + "; " + "; ".join(parameters)


def _quick_addresses(text: str) -> list[tuple[str, str, str]] | None:
    """(display name, local part, domain) of each mailbox of a simple address list, as the stdlib reads them."""
    found: list[tuple[str, str, str]] = []
    position, end = 0, len(text)
    if not text.strip():
        return None
    while position < end:
        match = _MAILBOX.match(text, position)
        if match is None:
            return None
        bare_local, bare_domain, quoted, phrase, local, domain, comma = match.groups()
        if bare_local is not None:
            found.append(("", bare_local, bare_domain))
        else:
            if quoted is not None:
                if "=?" in quoted:
                    return None
                display = quoted
            elif phrase is not None:
                words = _phrase_words(phrase)
                if words is None:
                    return None
                display = " ".join(words)
            else:
                display = ""
            found.append((display, local, domain))
        position = match.end()
        if comma == "," and position >= end:
            return None  # a trailing comma: an empty mailbox the stdlib reports
    return found


_PHRASE_TOKEN = re.compile(rf"{_ENCODED_RUN.pattern}|[^ \t]+")


def _phrase_words(phrase: str) -> list[str] | None:
    """The words of a display name, a run of encoded words decoded as one word (as the stdlib reads the run
    `_as_utf8_words` makes of it); None when a word is anything but plain text or a whole encoded run."""
    words: list[str] = []
    last = -1
    for token in _PHRASE_TOKEN.finditer(phrase):
        if token.start() == last:
            return None  # an encoded word glued to other text
        last = token.end()
        word = token.group(0)
        if word.startswith("=?") and _ENCODED_RUN.fullmatch(word):
            word = _decode_run(word)
            if not _PLAIN_DECODED.fullmatch(word) or _SURROGATE.search(word):
                return None
        elif "=" in word and "?" in word:
            return None
        words.append(word)
    return words


def _message_ids(text: str) -> tuple[str, ...]:
    found = re.findall(r"<([^<>]+)>", text)
    if not found:
        found = text.split()
    return tuple(re.sub(r"\s+", "", item) for item in found if item.strip())


def _mail_date(text: str | None, defects: list[str]) -> datetime | None:
    if text is None:
        defects.append("the mail has no Date header")
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        value = None
    if value is None:
        defects.append(f"the Date header could not be read: {text!r}")
        return None
    if value.tzinfo is None:
        # RFC 5322 §3.3: "-0000" is UTC with no local zone known; a missing zone is read the same.
        if not re.search(r"-0000\s*(\(.*\))?\s*$", text):
            defects.append(f"the Date header has no time zone; read as UTC: {text!r}")
        value = value.replace(tzinfo=UTC)
    return value


def _lower_addresses(addresses: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(address.strip().lower() for _, address in addresses if "@" in address)


# --- one message -----------------------------------------------------------------------------


def _read_message(message: Message, depth: int, defects: list[str]) -> ParsedMail:
    # Bounded: a header value past MAX_HEADER_VALUE (a 1 MiB Subject, 5,000 recipients) is cut before decoding.
    decoded = [
        (str(name), _decode_header(str(name), str(value)[:MAX_HEADER_VALUE]))
        for name, value in list(message.raw_items())[:MAX_HEADERS]
    ]
    headers = tuple((name.lower(), header.text) for name, header in decoded)

    def first(name: str) -> _Header | None:
        return next((header for key, header in decoded if key.lower() == name), None)

    subject_header = first("subject")
    subject = subject_header.text if subject_header else ""
    sender_name = sender_email = None
    from_header = first("from")
    if from_header and from_header.addresses:
        display, address = from_header.addresses[0]
        sender_name = display.strip() or None
        sender_email = address.strip().lower() if "@" in address else None
    elif decoded:
        defects.append("the mail has no readable From address")
    to = tuple(
        address for key, header in decoded if key.lower() == "to" for address in _lower_addresses(header.addresses)
    )
    message_id_header, reply_header, references_header = first("message-id"), first("in-reply-to"), first("references")
    message_ids = _message_ids(message_id_header.unfolded) if message_id_header else ()
    in_reply_to = _message_ids(reply_header.unfolded) if reply_header else ()
    date_header = first("date")
    date = _mail_date(date_header.unfolded if date_header else None, defects) if decoded else None
    if not decoded:
        defects.append("no headers could be read")

    walker = _MimeWalker(depth)
    walker.walk(message, take_body=True, in_related=False, level=0)
    defects.extend(walker.defects)

    text = "\n\n".join(segment for segment in walker.body if segment.strip())
    if not text.strip() and walker.tnef_bodies:
        text = walker.tnef_bodies[0]
    body_text, quoted_text, forwarded = split_body(subject, text)
    if forwarded is None and is_forward(subject, text) and walker.mails:
        # "Forward as attachment": the original is the attached message/rfc822 itself.
        original = walker.mails[0]
        forwarded = ForwardedFrom(original.sender_name, original.sender_email, original.date, original.subject)

    is_report = message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type", "")).lower() == "delivery-status"
    )
    return ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_message_ids(references_header.unfolded) if references_header else (),
        subject=subject,
        sender_name=sender_name,
        sender_email=sender_email,
        to=to,
        date=date,
        headers=headers,
        body_text=body_text,
        quoted_text=quoted_text,
        attachments=tuple(walker.attachments),
        calendar_parts=tuple(walker.calendar),
        attached_mails=tuple(walker.mails),
        forwarded=forwarded,
        is_delivery_report=is_report,
        bounced_recipients=tuple(dict.fromkeys(walker.bounced)),
        defects=tuple(dict.fromkeys(defects)),
    )


# --- the MIME tree -----------------------------------------------------------------------------

_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"})
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
# RFC 8551 (S/MIME) and RFC 3156 (OpenPGP) signatures say nothing to a reader.
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_MAIL_TYPES = frozenset({"message/rfc822", "message/global"})


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return b""
    if any(isinstance(defect, email_errors.InvalidBase64LengthDefect) for defect in part.defects):
        # The stdlib hands back the undecoded text when base64 was cut inside a 4-character
        # group (RFC 4648 §4); the whole groups before the cut are still good.
        text = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        return base64.b64decode(text[: len(text) // 4 * 4])
    return data


def _describe_defect(defect: object) -> str:
    kind = type(defect)
    summary = (kind.__doc__ or kind.__name__).strip().splitlines()[0].rstrip(".")
    detail = str(defect).strip()
    return f"{summary}: {detail}" if detail and detail not in summary else summary


@dataclass
class _MimeWalker:
    depth: int  # how deep this mail is nested in attached mails
    body: list[str] = field(default_factory=list)
    tnef_bodies: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    calendar: list[bytes] = field(default_factory=list)
    mails: list[ParsedMail] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parts: int = 0

    def walk(self, part: Message, *, take_body: bool, in_related: bool, level: int) -> None:
        content_type = part.get_content_type()
        self.parts += 1
        if self.parts > MAX_PARTS:
            if self.parts == MAX_PARTS + 1:
                self.defects.append(f"the mail has more than {MAX_PARTS} MIME parts; the rest were not read")
            return
        if level > _MAX_MIME_NESTING:
            self.defects.append(f"MIME parts nested deeper than {_MAX_MIME_NESTING} levels were skipped")
            return
        filename = _filename(part)
        if content_type in _MAIL_TYPES or (filename or "").lower().endswith(".eml"):
            self._attached_mail(part, filename)
        elif content_type == "message/delivery-status":
            self._delivery_status(part)
        elif content_type.startswith("message/") and content_type.endswith("-notification"):
            pass  # RFC 8098 read receipts: machine data, the human text is in the sibling part
        elif part.is_multipart():
            self._multipart(part, content_type, take_body, level)
        elif content_type.startswith("multipart/"):
            self._broken_multipart(part, content_type, take_body, level)
        else:
            self._leaf(part, content_type, filename, take_body, in_related)
        self.defects.extend(f"{content_type} part: {_describe_defect(defect)}" for defect in part.defects)

    def _multipart(self, part: Message, content_type: str, take_body: bool, level: int) -> None:
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if content_type == "multipart/alternative":
            chosen = _choose_alternative(children) if take_body else None
            for child in children:
                self.walk(child, take_body=child is chosen, in_related=False, level=level + 1)
        elif content_type == "multipart/related" and children:
            # RFC 2387: the root is named by "start", else it is the first part.
            start = str(part.get_param("start", "") or "").strip("<>")
            root = next((child for child in children if str(child.get("content-id", "")).strip("<>") == start), None)
            root = root if start and root is not None else children[0]
            for child in children:
                self.walk(child, take_body=take_body and child is root, in_related=child is not root, level=level + 1)
        else:
            for child in children:
                self.walk(child, take_body=take_body, in_related=False, level=level + 1)

    def _broken_multipart(self, part: Message, content_type: str, take_body: bool, level: int) -> None:
        """A multipart without a usable boundary: guess it from the first "--token" line."""
        payload = part.get_payload()
        text = payload if isinstance(payload, str) else ""
        match = re.search(r"^--([^\s\"]{1,70})[ \t]*\r?$", text, re.MULTILINE)
        if match:
            head = f'Content-Type: {content_type}; boundary="{match.group(1)}"\n\n'
            rebuilt = email.message_from_bytes((head + text).encode("utf-8", "surrogateescape"), policy=part.policy)
            if rebuilt.is_multipart():
                self.defects.append(f"{content_type} part had no usable boundary; read with {match.group(1)!r}")
                self._multipart(rebuilt, content_type, take_body, level)
                return
        self.defects.append(f"{content_type} part has no readable parts; its text is read as the body")
        if take_body:
            self.body.append(_normalize_text(decode_text(_payload_bytes(part), None)))

    def _leaf(self, part: Message, content_type: str, filename: str | None, take_body: bool, in_related: bool) -> None:
        name = (filename or "").lower()
        disposition = part.get_content_disposition()
        if content_type in _CALENDAR_TYPES or name.endswith((".ics", ".vcs")):
            self.calendar.append(_payload_bytes(part))
        elif content_type in _TNEF_TYPES or name == "winmail.dat":
            self._tnef(_payload_bytes(part), filename)
        elif content_type in _SIGNATURE_TYPES:
            pass
        elif content_type == "text/rfc822-headers":
            # RFC 3462: a bounce may return only the original's headers.
            self._add_mail(_payload_bytes(part).strip() + b"\n\n")
        elif content_type in ("text/plain", "text/html") and filename is None and disposition != "attachment":
            if take_body:
                self.body.append(_part_text(part, content_type, self.defects))
        elif (
            in_related and content_type.startswith("image/") and part.get("content-id") and disposition != "attachment"
        ):
            pass  # pictures the HTML shows by cid: (RFC 2392), such as Outlook's signature logo image001.png
        else:
            if content_type in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
                self.defects.append("the mail holds S/MIME content that cannot be read here")
            self.attachments.append(Attachment(filename, content_type, _payload_bytes(part)))

    def _add_mail(self, data: bytes) -> None:
        self.mails.append(_parse_safely(data, self.depth + 1))

    def _attached_mail(self, part: Message, filename: str | None) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
        encoded = str(part.get("content-transfer-encoding", "")).strip().lower() in ("base64", "quoted-printable")
        if self.depth >= MAX_ATTACHED_MAIL_DEPTH:
            self.defects.append(
                f"an attached mail nested deeper than {MAX_ATTACHED_MAIL_DEPTH} levels is kept as a file"
            )
            data = inner.as_bytes(policy=policy.compat32) if inner is not None else _payload_bytes(part)
            self.attachments.append(Attachment(filename, "message/rfc822", data))
        elif inner is not None and not encoded:
            self.mails.append(_read_message(inner, self.depth + 1, []))
        elif inner is not None:
            # RFC 2046 §5.2.1 forbids encoding message/rfc822, but some gateways do; the parser
            # then read base64 as headers, so decode what it kept and parse again.
            text = inner.as_string(policy=policy.compat32)
            decoder = binascii.a2b_base64 if "base64" in encoded else binascii.a2b_qp
            try:
                self._add_mail(decoder(text.encode("ascii", "replace")))
            except (binascii.Error, ValueError) as error:
                self.defects.append(f"an encoded attached mail could not be decoded: {error}")
        else:
            self._add_mail(_payload_bytes(part))

    def _delivery_status(self, part: Message) -> None:
        """RFC 3464: per-recipient blocks; a recipient bounced when its Action is "failed"."""
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [
                {str(key).lower(): _repair_surrogates(str(value)).strip() for key, value in block.raw_items()}
                for block in payload
                if isinstance(block, Message)
            ]
        else:
            blocks = _field_blocks(decode_text(_payload_bytes(part), None))
        for block in blocks:
            recipient = block.get("final-recipient") or block.get("original-recipient")
            if recipient and block.get("action", "").lower().startswith("failed"):
                address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                if address:
                    self.bounced.append(address)

    def _tnef(self, data: bytes, filename: str | None) -> None:
        try:
            tnef = TNEF(data, do_checksum=False)
        except MemoryError:
            raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
        except Exception as error:  # tnefparse fails in many ways on damaged files
            self.defects.append(f"winmail.dat could not be read ({error!r}); it is kept as a file")
            self.attachments.append(Attachment(filename or "winmail.dat", "application/ms-tnef", data))
            return
        codepage = _codec_name(str(tnef.codepage or "")) or "cp1252"
        for item in tnef.attachments:
            name = _tnef_filename(item, codepage)
            payload = item.data if isinstance(item.data, bytes) else b""
            if not payload and not name:
                continue
            mime_tag = next((attr.data for attr in item.mapi_attrs if attr.name == 0x370E), None)  # PR_ATTACH_MIME_TAG
            content_type = str(mime_tag).strip().lower() if mime_tag else "application/octet-stream"
            if hasattr(item, "embed"):
                self.defects.append(f"winmail.dat holds an embedded Outlook item {name!r}, kept as a file")
                content_type = "application/ms-tnef"
            if content_type in _CALENDAR_TYPES or (name or "").lower().endswith((".ics", ".vcs")):
                self.calendar.append(payload)
            else:
                self.attachments.append(Attachment(name, content_type, payload))
        body = _tnef_body(tnef, codepage)
        if body:
            self.tnef_bodies.append(body)
        if not body and not tnef.attachments:
            self.defects.append("winmail.dat holds neither attachments nor a body; it is kept as a file")
            self.attachments.append(Attachment(filename or "winmail.dat", "application/ms-tnef", data))


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Blocks of "Name: value" lines split by blank lines (RFC 3464 §2.1), for an unparsed status."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields = dict(
            (name.strip().lower(), value.strip())
            for name, value in re.findall(r"^([A-Za-z-]+)\s*:(.*)$", chunk, re.MULTILINE)
        )
        if fields:
            blocks.append(fields)
    return blocks


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    if not name:
        # An empty "filename" (or one compat32 could not split) leaves the Content-Type "name".
        name = collapse_rfc2231_value(part.get_param("name") or "")
    if not name:
        return None
    name = _repair_surrogates(str(name))
    if "=?" in name:
        # Outlook puts RFC 2047 words inside the quoted filename, which RFC 2047 §5 forbids.
        name = _decode_encoded_words(name)
    # A path sent along ("C:\Users\anna\Protokoll.pdf") is not part of the name.
    name = re.split(r"[\\/]", name)[-1].replace("\x00", "").strip()
    return name or None


def _choose_alternative(children: list[Message]) -> Message | None:
    """RFC 2046 §5.1.4 orders alternatives plainest first; we prefer text/plain with content,
    else the last HTML-bearing alternative."""
    plain = [child for child in children if child.get_content_type() == "text/plain" and not child.get_filename()]
    for child in plain:
        if _payload_bytes(child).strip():
            return child
    rich = [
        child
        for child in children
        if child.get_content_type() == "text/html" or child.get_content_maintype() == "multipart"
    ]
    if rich:
        return rich[-1]
    return plain[0] if plain else None


def _part_text(part: Message, content_type: str, defects: list[str]) -> str:
    data = _payload_bytes(part)
    charset = part.get_content_charset()
    if content_type == "text/html" and not charset:
        charset = _html_charset(data)
    text, note = _decode_with_note(data, charset)
    if note:
        defects.append(note)
    if content_type == "text/html":
        return _normalize_text(html_to_text(text))
    if str(part.get_param("format", "")).lower() == "flowed":
        text = _unflow(text.replace("\r\n", "\n"), str(part.get_param("delsp", "")).lower() == "yes")
    return _normalize_text(text)


def _html_charset(html: bytes) -> str | None:
    """The charset an HTML document names in its <meta> tag, for parts that declare none."""
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", html[:4096], re.IGNORECASE)
    return meta.group(1).decode("ascii") if meta else None


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\x00"))


def _normalize_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE).replace("\xa0", " ")
    # Lone surrogates (from escapes or RTF \u) cannot be stored as UTF-8 later.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _unflow(text: str, delete_space: bool) -> str:
    """RFC 3676: join soft line breaks (a line ending in a space) within one quote depth."""
    lines: list[str] = []
    pending: tuple[int, str] | None = None
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing, §4.4
        soft = content.endswith(" ") and content != "-- "  # "-- " is the signature separator
        if soft and delete_space:
            content = content[:-1]
        if pending is not None and pending[0] == depth:
            content = pending[1] + content
        elif pending is not None:
            lines.append(_quote_line(*pending))
        pending = (depth, content) if soft else None
        if not soft:
            lines.append(_quote_line(depth, content))
    if pending is not None:
        lines.append(_quote_line(*pending))
    return "\n".join(lines)


def _quote_line(depth: int, text: str) -> str:
    return (">" * depth + " " + text) if depth else text


# --- winmail.dat (MS-OXTNEF) ---------------------------------------------------------------------


def _tnef_filename(item: object, codepage: str) -> str | None:
    try:
        name = item.long_filename()  # type: ignore[attr-defined]
    except UnicodeDecodeError:
        # tnefparse decodes the short name as UTF-8; Outlook writes it in the ANSI code page.
        name = getattr(item, "_name", b"")
    if isinstance(name, bytes):
        name = decode_text(name, codepage)
    name = str(name or "").replace("\x00", "").strip()
    return re.split(r"[\\/]", name)[-1] or None


def _tnef_body(tnef: TNEF, codepage: str) -> str:
    body, html = tnef.body, tnef.htmlbody
    if body:
        return _normalize_text(body if isinstance(body, str) else decode_text(body.rstrip(b"\x00"), codepage))
    if html:
        # Without PR_INTERNET_CPID tnefparse leaves the HTML as bytes; its <meta> names the charset.
        if isinstance(html, bytes):
            html = decode_text(html.rstrip(b"\x00"), _html_charset(html))
        return _normalize_text(html_to_text(html))
    # The public `rtfbody` needs the optional compressed_rtf package and logs when it is missing.
    rtf = getattr(tnef, "_rtfbody", None)
    if isinstance(rtf, bytes):
        return rtf_to_text(decompress_rtf(rtf))
    return ""


_RTF_PREBUFFER = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript "
    b"\\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)


def decompress_rtf(data: bytes) -> bytes:
    """Outlook's compressed RTF (MS-OXRTFCP): "LZFu" LZ77 or "MELA" stored; plain RTF passes."""
    if data.lstrip().startswith(b"{\\rtf") or len(data) < 16:
        return data
    raw_size, magic = struct.unpack_from("<I4s", data, 4)
    if magic == b"MELA":
        return data[16 : 16 + raw_size]
    if magic != b"LZFu":
        return b""
    window = bytearray(4096)
    window[: len(_RTF_PREBUFFER)] = _RTF_PREBUFFER
    write = len(_RTF_PREBUFFER)
    out = bytearray()
    position = 16
    while position < len(data):
        control = data[position]
        position += 1
        for bit in range(8):
            if position >= len(data):
                return bytes(out)
            if control & (1 << bit):
                if position + 1 >= len(data):
                    return bytes(out)
                reference = data[position] << 8 | data[position + 1]
                position += 2
                offset, length = reference >> 4, (reference & 0xF) + 2
                if offset == write:
                    return bytes(out)  # the end marker points at the write position
                for index in range(length):
                    byte = window[(offset + index) % 4096]
                    out.append(byte)
                    window[write] = byte
                    write = (write + 1) % 4096
            else:
                byte = data[position]
                position += 1
                out.append(byte)
                window[write] = byte
                write = (write + 1) % 4096
    return bytes(out)


_RTF_TOKEN = re.compile(
    r"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|[\r\n]+|([^\\{}\r\n]+)", re.S
)
_RTF_SKIPPED = frozenset(
    "fonttbl colortbl stylesheet info pict object header footer headerl headerr footerl footerr listtable "
    "listoverridetable rsidtbl generator xmlnstbl themedata colorschememapping latentstyles datastore filetbl "
    "revtbl pgdsctbl mmathPr fldinst bkmkstart bkmkend".split()
)
_RTF_CHARACTERS = {
    "par": "\n",
    "line": "\n",
    "page": "\n",
    "sect": "\n",
    "tab": "\t",
    "cell": " | ",
    "row": "\n",
    "emdash": "\u2014",
    "endash": "\u2013",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
}


def rtf_to_text(rtf: bytes) -> str:
    """The text of an RTF body; HTML wrapped in RTF by Outlook (\\fromhtml1, MS-OXRTFEX) is
    unwrapped and read as HTML."""
    source = rtf.decode("latin-1")
    cpg = re.search(r"\\ansicpg(\d+)", source)
    codepage = _codec_name(f"cp{cpg.group(1)}") if cpg else None
    codepage = codepage or "cp1252"
    from_html = "\\fromhtml" in source[:1024]
    out: list[str] = []
    stack: list[tuple[bool, int, bool, bool]] = []
    skip, unicode_skip, suppressed, html_tag = False, 1, False, False
    star = False
    pending_skip = 0  # fallback characters still to drop after a \uN

    def emit(text: str) -> None:
        if not skip and (html_tag or not (from_html and suppressed)):
            out.append(text)

    for match in _RTF_TOKEN.finditer(source):
        word, argument, hex_byte, symbol, brace, plain = match.groups()
        if brace == "{":
            stack.append((skip, unicode_skip, suppressed, html_tag))
            star = False
        elif brace == "}":
            if stack:
                skip, unicode_skip, suppressed, html_tag = stack.pop()
            star = False
        elif word:
            if star:
                star = False
                if from_html and word == "htmltag":
                    html_tag = True
                else:
                    skip = True  # an ignorable destination ("\*\word") we do not know
            if word in _RTF_SKIPPED:
                skip = True
            elif word == "htmlrtf":
                suppressed = argument != "0"
            elif word == "uc" and argument:
                unicode_skip = int(argument)
            elif word == "u" and argument:
                emit(chr(int(argument) % 65536))
                pending_skip = unicode_skip
            elif word in _RTF_CHARACTERS:
                emit(_RTF_CHARACTERS[word])
        elif hex_byte:
            if pending_skip:
                pending_skip -= 1
            else:
                emit(bytes([int(hex_byte, 16)]).decode(codepage, errors="replace"))
        elif symbol:
            if symbol == "*":
                star = True
            elif symbol in "\\{}":
                emit(symbol)
            elif symbol == "~":
                emit("\xa0")
            elif symbol == "_":
                emit("-")
        elif plain:
            if pending_skip:
                dropped = min(pending_skip, len(plain))
                plain, pending_skip = plain[dropped:], pending_skip - dropped
            emit(plain)
    text = "".join(out)
    return html_to_text(text) if from_html else _normalize_text(text)


# --- replies and forwards ---------------------------------------------------------------------

_FORWARD_PREFIXES = frozenset({"vb", "fw", "fwd", "vs", "wg", "tr", "rv", "vl", "doorst", "enc", "i"})
_REPLY_PREFIXES = frozenset({"re", "sv", "aw", "antw", "antwort", "odp", "ynt", "ref", "r", "vast"})
_TAG_PREFIXES = frozenset({"extern", "externt", "external", "ext", "varning", "warning", "spam"})
_SUBJECT_PREFIX = re.compile(
    r"\s*(?:\[[^\]]{0,40}\]|\*{1,3}[^*]{1,20}\*{1,3}|(\w{1,12})\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a])\s*"
)


def is_forward_subject(subject: str) -> bool:
    """True when the chain of prefixes that opens the subject ("SV: VB: ...", "[EXTERN] Fwd: ...")
    contains a forward prefix. "VS:" counts as one (Danish and Norwegian), as agreed."""
    rest = subject
    while match := _SUBJECT_PREFIX.match(rest):
        word = (match.group(1) or "").lower()
        if word in _FORWARD_PREFIXES:
            return True
        if word and word not in _REPLY_PREFIXES and word not in _TAG_PREFIXES:
            return False
        rest = rest[match.end() :]
    return False


_LABEL_KINDS = {
    "from": ("från", "from", "fra", "von", "de", "lähettäjä", "avsändare", "van"),
    "sent": ("skickat", "sent", "datum", "date", "sendt", "gesendet", "envoyé", "lähetetty", "verzonden", "enviado"),
    "to": ("till", "to", "kopia", "kopia till", "cc", "bcc", "hemlig kopia", "an", "à", "vastaanottaja", "til", "kopi"),
    "subject": ("ämne", "subject", "emne", "betreff", "objet", "aihe", "onderwerp", "asunto", "rubrik"),
    "other": ("prioritet", "priority", "importance", "prioritet", "bilagor", "bifogade filer", "attachments"),
}
_LABEL_OF = {label: kind for kind, labels in _LABEL_KINDS.items() for label in labels}
_LABEL_LINE = re.compile(
    r"^\s*\*?(" + "|".join(sorted(map(re.escape, _LABEL_OF), key=len, reverse=True)) + r")\s*:\*?(.*)$",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:vidarebefordrat meddelande|forwarded message|videresendt (?:meddelelse|melding)|"
    r"weitergeleitete nachricht|välitetty viesti|message transféré)\s*-{2,}|"
    r"(?:början (?:av|på) )?vidarebefordrat meddelande:|begin forwarded message:)\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MARKER = re.compile(
    r"^\s*-{2,}\s*(?:ursprungligt meddelande|original message|originalmeddelande|opprinnelig melding|"
    r"oprindelig meddelelse|ursprüngliche nachricht|alkuperäinen viesti|message d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
# Gmail and Apple Mail: "Den 14 mars 2025 kl. 10:12 skrev Anna <anna@x.se>:", "On ..., Anna wrote:".
_ATTRIBUTION = re.compile(
    r"^\s*(?:(?:den|on|am|le|el|il|op)\b|\d).{0,300}?\b(?:skrev|wrote|schrieb|a écrit|escribió|scrisse|schreef|kirjoitti)"
    r"\b.{0,300}:\s*$",
    re.IGNORECASE,
)
_QUOTE_LINE = re.compile(r"^\s*>")
_HEADER_WINDOW = 8  # lines after "Från:" in which "Skickat:" (or "Till:" and "Ämne:") must follow


def _label(line: str) -> tuple[str, str] | None:
    match = _LABEL_LINE.match(line)
    if not match:
        return None
    return _LABEL_OF[match.group(1).lower()], match.group(2).strip().strip("*").strip()


def _starts_header_block(lines: list[str], index: int) -> bool:
    found = _label(lines[index])
    if not found or found[0] != "from":
        return False
    kinds = {label[0] for line in lines[index + 1 : index + 1 + _HEADER_WINDOW] if (label := _label(line))}
    return "sent" in kinds or {"to", "subject"} <= kinds


def _is_attribution(lines: list[str], index: int) -> bool:
    line = lines[index]
    candidates = [line]
    if index + 1 < len(lines) and not line.rstrip().endswith(":"):
        candidates.append(line.rstrip() + " " + lines[index + 1].strip())  # wrapped at 76 columns
    return any(
        _ATTRIBUTION.match(text) and ("@" in text or re.search(r"\d{1,2}[:.]\d{2}", text)) for text in candidates
    )


def _separator_index(lines: list[str]) -> int | None:
    """Where the earlier mail starts: a separator, a header block, an attribution or a "> " line."""
    for index, line in enumerate(lines):
        if (
            _UNDERSCORES.match(line)
            or _ORIGINAL_MARKER.match(line)
            or _FORWARD_MARKER.match(line)
            or _QUOTE_LINE.match(line)
            or _starts_header_block(lines, index)
            or _is_attribution(lines, index)
        ):
            return index
    return None


def is_forward(subject: str, text: str) -> bool:
    """A forward has a forward prefix in its subject, or its text opens with the earlier mail
    (a forward marker, Outlook's separator or a "Från:" block: nothing of its own above it)."""
    if is_forward_subject(subject):
        return True
    lines = _unquote(text).split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return False
    line = lines[first]
    return bool(
        _FORWARD_MARKER.match(line)
        or _ORIGINAL_MARKER.match(line)
        or _UNDERSCORES.match(line)
        or _starts_header_block(lines, first)
    )


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int]:
    """The fields of the "Från:/Skickat:/Till:/Ämne:" block at `start`, and the line after it.
    A label alone on its line (Outlook HTML puts "Från:" in bold) takes the next line as value."""
    fields: dict[str, str] = {}
    last: str | None = None
    index = start
    while index < len(lines):
        line = lines[index].strip()
        label = _label(line)
        if label:
            last = label[0]
            fields.setdefault(last, label[1])
        elif last is not None and fields.get(last) == "":
            if line:
                fields[last] = line
        elif last == "to" and line and ("@" in line or ";" in line):
            pass  # a long recipient list wrapped onto the next line
        else:
            break
        index += 1
    return fields, index


_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def _forwarded_from(fields: dict[str, str]) -> ForwardedFrom:
    sender = fields.get("from", "")
    found = _ADDRESS.search(sender)
    name = _ADDRESS.sub("", sender)
    # Outlook writes "Anna <anna@x.se<mailto:anna@x.se>>" or "Anna [mailto:anna@x.se]".
    name = re.sub(r"mailto:|<[^>]*>|\[[^\]]*\]|[<>\[\]\"]", "", name).strip(" \t,;'")
    subject = fields.get("subject", "").strip()
    return ForwardedFrom(
        sender_name=name or None,
        sender_email=found.group(0).lower() if found else None,
        sent=parse_sent_datetime(fields["sent"]) if fields.get("sent") else None,
        subject=subject or None,
    )


def split_body(subject: str, text: str) -> tuple[str, str, ForwardedFrom | None]:
    """(body_text, quoted_text, forwarded) of a decoded body.

    A forward keeps the forwarder's note and the forwarded text in the body (without the marker
    and the first header block, which become `forwarded`, and without "> " quote marks).
    A reply or a new mail keeps only what comes before the first separator; the rest is quoted."""
    if is_forward(subject, text):
        lines = _unquote(text).split("\n")
        start = next((index for index in range(len(lines)) if _starts_header_block(lines, index)), None)
        if start is None:
            return _unquote(text), "", None
        fields, end = _header_block(lines, start)
        first = start
        while first > 0 and (
            not lines[first - 1].strip()
            or _UNDERSCORES.match(lines[first - 1])
            or _FORWARD_MARKER.match(lines[first - 1])
            or _ORIGINAL_MARKER.match(lines[first - 1])
        ):
            first -= 1
        note = "\n".join(lines[:first]).strip("\n")
        forwarded_text = "\n".join(lines[end:]).strip("\n")
        body = "\n\n".join(part for part in (note, forwarded_text) if part)
        return body, "", _forwarded_from(fields)
    lines = text.split("\n")
    index = _separator_index(lines)
    if index is None:
        return text.strip("\n"), "", None
    return "\n".join(lines[:index]).strip("\n"), "\n".join(lines[index:]).strip("\n"), None


def _unquote(text: str) -> str:
    return "\n".join(re.sub(r"^(?:\s*>)+ ?", "", line) for line in text.split("\n"))


# --- dates in forwarded header blocks ------------------------------------------------------

_MONTHS = {
    **dict.fromkeys(("januari", "january", "jan"), 1),
    **dict.fromkeys(("februari", "february", "feb"), 2),
    **dict.fromkeys(("mars", "march", "mar"), 3),
    **dict.fromkeys(("april", "apr"), 4),
    **dict.fromkeys(("maj", "may"), 5),
    **dict.fromkeys(("juni", "june", "jun"), 6),
    **dict.fromkeys(("juli", "july", "jul"), 7),
    **dict.fromkeys(("augusti", "august", "aug"), 8),
    **dict.fromkeys(("september", "sept", "sep"), 9),
    **dict.fromkeys(("oktober", "october", "okt", "oct"), 10),
    **dict.fromkeys(("november", "nov"), 11),
    **dict.fromkeys(("december", "dec"), 12),
}
_DATE_FORMS = (
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"),
    re.compile(r"\b(?P<day>\d{1,2})(?::?[ea]|st|nd|rd|th)?\.?\s+(?P<name>[a-zåäö]+)\.?\s+(?P<year>\d{4})"),
    re.compile(r"\b(?P<name>[a-zåäö]+)\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?P<year>\d{4})"),
    re.compile(r"\b(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})"),
)
_TIME = re.compile(r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:[:.](?P<second>\d{2}))?\s*(?P<half>[ap]\.?m\.?|fm|em)?\b")
_ZONE = re.compile(
    r"^\s*(?:(?P<name>cest|cet|utc|gmt|z)\b)?\s*(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?"
)
_ZONE_NAMES = {"cet": 1, "cest": 2, "utc": 0, "gmt": 0, "z": 0}


def parse_sent_datetime(text: str) -> datetime | None:
    """The time in a forwarded "Skickat:"/"Sent:"/"Datum:" line: "den 14 mars 2025 10:12",
    "fredag 14 mars 2025 10:12", "2025-03-14 10:12", "Friday, March 14, 2025 10:12 AM",
    "Fri, 14 Mar 2025 10:12:00 +0100". Aware when the text names a zone, else naive."""
    lowered = text.lower().replace(",", " ")
    for form in _DATE_FORMS:
        for match in form.finditer(lowered):
            parts = match.groupdict()
            month = _MONTHS.get(parts["name"]) if parts.get("name") else int(parts["month"])
            if month is None:
                continue
            try:
                day = datetime(int(parts["year"]), month, int(parts["day"]))
            except ValueError:
                continue
            return _with_time(day, lowered[match.end() :])
    return None


def _with_time(day: datetime, rest: str) -> datetime:
    found = _TIME.search(rest)
    if not found:
        return day
    hour, minute = int(found["hour"]), int(found["minute"])
    half = (found["half"] or "").replace(".", "")
    if half in ("pm", "em") and hour < 12:
        hour += 12
    elif half in ("am", "fm") and hour == 12:
        hour = 0
    try:
        value = day.replace(hour=hour, minute=minute, second=int(found["second"] or 0))
    except ValueError:
        return day
    zone = _ZONE.match(rest[found.end() :])
    if zone and (zone["name"] or zone["sign"]):
        offset = timedelta(hours=_ZONE_NAMES.get(zone["name"] or "", 0))
        if zone["sign"]:
            sign = -1 if zone["sign"] == "-" else 1
            offset += sign * timedelta(hours=int(zone["hours"]), minutes=int(zone["minutes"] or 0))
        if abs(offset) < timedelta(hours=15):
            value = value.replace(tzinfo=timezone(offset))
    return value
