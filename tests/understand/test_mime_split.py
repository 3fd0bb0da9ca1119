"""mailbot/understand/mime_split.py builds the stdlib parser's message tree, or declines.

For every mail under tests/ (the corpus, the other fixtures, the hostile corpus with its CPython malformed mails
and bombs) and for hand-made edge cases, `split` either returns None or a tree equal to
`email.message_from_bytes(raw, policy=decode's policy)`, part by part: headers, payload strings, preamble,
epilogue, default type, defects.
"""

from __future__ import annotations

import email
import email.message
from pathlib import Path

import pytest

from mailbot.understand import decode
from mailbot.understand.mime_split import MAX_DEPTH, split

TESTS = Path(__file__).resolve().parent.parent


def shape(message: email.message.Message) -> dict[str, object]:
    payload = message._payload  # type: ignore[attr-defined]
    return {
        "class": type(message).__name__,
        "headers": list(message._headers),  # type: ignore[attr-defined]
        "unixfrom": message.get_unixfrom(),
        "preamble": message.preamble,
        "epilogue": message.epilogue,
        "default_type": message.get_default_type(),
        "defects": [type(d).__name__ for d in message.defects],
        "charset": message.get_charset(),
        "payload": [shape(p) for p in payload] if isinstance(payload, list) else payload,
    }


def stdlib(raw: bytes) -> dict[str, object]:
    return shape(email.message_from_bytes(raw, policy=decode._DEFAULT))


def fixture_mails() -> list[tuple[str, bytes]]:
    import hostile_corpus

    mails = [(str(p.relative_to(TESTS)), p.read_bytes()) for p in sorted(TESTS.rglob("*.eml"))]
    return mails + [(f"hostile/{name}", raw) for name, raw in hostile_corpus.hostile_mails()]


def test_every_mail_under_tests_is_split_as_the_stdlib_parses_it_or_left_to_it() -> None:
    split_ones = declined = 0
    different = []
    for name, raw in fixture_mails():
        fast = split(raw, decode._DEFAULT)
        if fast is None:
            declined += 1
            continue
        split_ones += 1
        if shape(fast) != stdlib(raw):
            different.append(name)
    assert different == []
    # The point of it: most real mail is of the plain structure (a regression here is a slowdown, not a bug).
    assert split_ones > 200, (split_ones, declined)


OUTLOOK = (
    b"From: =?iso-8859-1?Q?Gunilla_Str=F6m?= <gunilla.strom@skovde.se>\r\n"
    b"To: utbildning@skaraborg.se\r\n"
    b"Subject: =?iso-8859-1?Q?Tr=E4ffar_v=E5ren?=\r\n"
    b"Content-Type: multipart/mixed;\r\n\tboundary=\"_004_AM0PR\"\r\n"
    b"MIME-Version: 1.0\r\n\r\n"
)


def case(body: bytes, head: bytes = OUTLOOK) -> bytes:
    return head + body


ALTERNATIVE = (
    b"--_004_AM0PR\r\nContent-Type: multipart/alternative; boundary=\"_000_AM0PR\"\r\n\r\n"
    b"--_000_AM0PR\r\nContent-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: "
    b"quoted-printable\r\n\r\nHej!\r\n\r\nTr=E4ffar 2025-02-07 och 2025-04-04.\r\n\r\n"
    b"--_000_AM0PR\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\n\r\n<p>Hej!</p>\r\n"
    b"--_000_AM0PR--\r\n"
)

EDGE_CASES = {
    "nested alternative and an attachment": case(
        b"preamble line\r\n" + ALTERNATIVE + b"inner epilogue\r\n"
        b"--_004_AM0PR\r\nContent-Type: application/pdf; name=\"protokoll.pdf\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nJVBERi0xLjQK\r\n--_004_AM0PR--\r\nepilogue\r\n"
    ),
    "LF line ends": case(ALTERNATIVE.replace(b"\r\n", b"\n") + b"--_004_AM0PR--\n", OUTLOOK.replace(b"\r\n", b"\n")),
    "no epilogue, no final line break": case(ALTERNATIVE + b"--_004_AM0PR--"),
    "an inner multipart without epilogue": case(ALTERNATIVE + b"--_004_AM0PR--\r\n"),
    "white space after a boundary": case(
        b"--_004_AM0PR \t\r\nContent-Type: text/plain\r\n\r\ntext\r\n--_004_AM0PR-- \r\n"
    ),
    "a line that begins like the boundary": case(
        b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\n--_004_AM0PRx is not one\r\ntext --_004_AM0PR\r\n"
        b"--_004_AM0PR--\r\n"
    ),
    "an inner boundary that extends the outer one": case(
        b"--_004_AM0PR\r\nContent-Type: multipart/alternative; boundary=\"_004_AM0PR_1\"\r\n\r\n"
        b"--_004_AM0PR_1\r\nContent-Type: text/plain\r\n\r\na\r\n--_004_AM0PR_1--\r\n--_004_AM0PR--\r\n"
    ),
    "the same boundary inside": case(
        b"--_004_AM0PR\r\nContent-Type: multipart/alternative; boundary=\"_004_AM0PR\"\r\n\r\n"
        b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\na\r\n--_004_AM0PR--\r\n--_004_AM0PR--\r\n"
    ),
    "no closing boundary": case(b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\ntext\r\n"),
    "no boundary at all": case(b"only text\r\n"),
    "only the closing boundary": case(b"--_004_AM0PR--\r\n"),
    "two boundaries in a row": case(
        b"--_004_AM0PR\r\n--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\ntext\r\n--_004_AM0PR--\r\n"
    ),
    "a part without headers": case(b"--_004_AM0PR\r\n\r\njust a body\r\n--_004_AM0PR--\r\n"),
    "a part whose body starts at once": case(b"--_004_AM0PR\r\nthis is no header\r\n\r\nx\r\n--_004_AM0PR--\r\n"),
    "a forwarded mail": case(
        b"--_004_AM0PR\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@b.se\r\nSubject: x\r\n\r\nbody\r\n"
        b"--_004_AM0PR--\r\n"
    ),
    "a bare CR": case(b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\na\rb\r\n--_004_AM0PR--\r\n"),
    "a digest": case(b"--_004_AM0PR\r\n\r\nFrom: a@b.se\r\n\r\nx\r\n--_004_AM0PR--\r\n").replace(
        b"multipart/mixed", b"multipart/digest"
    ),
    "a base64 multipart": case(b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\nx\r\n--_004_AM0PR--\r\n").replace(
        b"MIME-Version", b"Content-Transfer-Encoding: base64\r\nMIME-Version"
    ),
    "a single part": b"From: a@b.se\r\nSubject: Protokoll\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"N\xc3\xa4rvarande: Sk\xc3\xb6vde\r\n\r\n",
    "a single part without body": b"From: a@b.se\r\nSubject: tomt\r\n\r\n",
    "a unix From line": b"From a@b.se Mon Jan  6 10:00:00 2025\nFrom: a@b.se\nSubject: x\n\nbody\n",
    "a bad header line": b"From: a@b.se\r\nthis line is no header\r\nSubject: x\r\n\r\nbody\r\n",
    "surrogates": case(b"--_004_AM0PR\r\nContent-Type: text/plain\r\n\r\n\xe5\xe4\xf6\xff\r\n--_004_AM0PR--\r\n"),
    "too deep": b"From: a@b.se\r\n"
    + b"".join(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (n, n) for n in range(MAX_DEPTH + 1))
    + b"Content-Type: text/plain\r\n\r\nx\r\n"
    + b"".join(b"--b%d--\r\n" % n for n in reversed(range(MAX_DEPTH + 1))),
}

SPLIT = {
    "nested alternative and an attachment",
    "LF line ends",
    "no epilogue, no final line break",
    "an inner multipart without epilogue",
    "white space after a boundary",
    "a line that begins like the boundary",
    "an inner boundary that extends the outer one",
    "a single part",
    "a single part without body",
    "a unix From line",
    "surrogates",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_an_edge_case_is_split_as_the_stdlib_parses_it_or_left_to_it(name: str) -> None:
    raw = EDGE_CASES[name]
    fast = split(raw, decode._DEFAULT)
    if name in SPLIT:
        assert fast is not None
        assert shape(fast) == stdlib(raw)
    else:
        assert fast is None


def test_the_outlook_mail_has_the_parts_it_should() -> None:
    fast = split(EDGE_CASES["nested alternative and an attachment"], decode._DEFAULT)
    assert fast is not None
    assert [p.get_content_type() for p in fast.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf",
    ]  # fmt: skip
    assert fast.preamble == "preamble line"
    assert fast.epilogue == "epilogue\r\n"
    inner = fast.get_payload(0)
    assert isinstance(inner, email.message.Message)
    assert inner.epilogue == "inner epilogue"
    assert inner.get_payload(0).get_payload(decode=True) == "Hej!\r\n\r\nTräffar 2025-02-07 och 2025-04-04.\r\n".encode(
        "iso-8859-1"
    )
