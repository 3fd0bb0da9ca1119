"""PDF text with PDFium (pypdfium2) against pypdf on every PDF the tests hold (issue 14, "cheaper per mail").

    python benchmarks/pdf_text.py              # table of differences and times; exit status 1 when results differ
    python benchmarks/pdf_text.py --repeat 20  # more timing rounds per PDF (the minimum is reported)

The PDFs: every PDF attached to a mail under tests/fixtures (the corpus, the blind corpus, the decode cases; attached
mails too), those of the hostile corpus (tests/hostile_corpus.py), the one-page PDF of the benchmark mails
(benchmarks/intake_imap.small_pdf) and those the unit tests build (tests/understand/test_documents.py and
test_minutes.py: plain, encrypted against printing, locked with a user password, image only, cut off in transit,
garbage after the header; test_reader_budget.py's damaged PDF at 1 MB).

For each PDF both extractors' text (documents._pdfium_text, documents._pypdf_text; what extract_text answers, text
or problem) is compared exactly and after the whitespace normalisation the minutes reader applies (lines stripped,
runs of white space as one space, blank lines dropped), and so is what the product draws from it: the minutes
(meeting date, municipalities present, people present, problems), the meeting dates (date, time, place) and a member
list read from its lines. PDFium answering None means "pypdf reads it" (documents._pdf_text falls back), so for
those the results are the same by construction and counted as fallbacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests"), str(ROOT / "tests" / "fixtures")]


def collect() -> list[tuple[str, bytes]]:
    """(where, bytes) of every PDF; the same bytes once."""
    from hostile_corpus import hostile_mails
    from intake_imap import small_pdf
    from understand.test_documents import MINUTES_LINES, image_only_pdf_bytes, pdf_bytes
    from understand.test_minutes import SKIS_MINUTES

    from mailbot.understand.decode import parse_mail
    from mailbot.understand.documents import _detect

    def attachments(mail):  # type: ignore[no-untyped-def]
        yield from mail.attachments
        for inner in mail.attached_mails:
            yield from attachments(inner)

    found: list[tuple[str, bytes]] = []
    mails = [(str(path.relative_to(ROOT)), path.read_bytes()) for path in sorted((ROOT / "tests").rglob("*.eml"))]
    mails += [(f"hostile:{name}", raw) for name, raw in hostile_mails()]
    for where, raw in mails:
        for attachment in attachments(parse_mail(raw)):
            if _detect(attachment)[0] == "pdf":
                found.append((f"{where} / {attachment.filename}", attachment.payload))
    found.append(("benchmarks small_pdf", small_pdf()))
    found.append(("test_documents MINUTES_LINES", pdf_bytes(MINUTES_LINES)))
    found.append(("test_documents owner password", pdf_bytes(MINUTES_LINES, owner_password="ägare")))
    found.append(("test_documents user password", pdf_bytes(MINUTES_LINES, "ägare", user_password="hemligt")))
    found.append(("test_documents image only", image_only_pdf_bytes()))
    found.append(("test_documents truncated", pdf_bytes(MINUTES_LINES)[:400]))
    found.append(("test_documents garbage", b"%PDF-1.7\n" + bytes(range(256)) * 8))
    found.append(("test_minutes SKIS_MINUTES", pdf_bytes(SKIS_MINUTES.splitlines())))
    found.append(
        ("test_reader_budget damaged 1 MB", b"%PDF-1.4\n" + bytes((i * 7919 + 13) % 251 for i in range(1 << 16)) * 16)
    )
    seen: set[bytes] = set()
    distinct = []
    for where, payload in found:
        if payload not in seen:
            seen.add(payload)
            distinct.append((where, payload))
    return distinct


def normalise(text: str | None) -> str | None:
    if text is None:
        return None
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def drawn(text: str | None, municipalities, day: date) -> tuple:  # type: ignore[no-untyped-def]
    """What the product takes from a document's text."""
    from mailbot.understand.dates import parse_meeting_dates
    from mailbot.understand.members import parse_member_lines
    from mailbot.understand.minutes import parse_minutes

    if not text:
        return ()
    minutes = parse_minutes(text, municipalities)
    dates = parse_meeting_dates(text, day)
    members = parse_member_lines(text, municipalities)
    return (
        ("minutes", minutes.meeting_date, minutes.municipalities_present, minutes.people_present, minutes.problems),
        ("dates", tuple((d.date, d.start, d.end, d.place) for d in dates.dates), dates.problems),
        ("members", tuple(members.members) if members else None),
    )


def fastest(function, payload: bytes, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        function(payload)
        best = min(best, time.process_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # pypdf's warnings on the damaged files
    import pypdfium2

    from mailbot.understand.documents import _pdfium_text, _pypdf_text
    from registry.config import load_registry
    from registry.paths import config_dir

    municipalities = load_registry(config_dir()).municipality_index()
    day = date(2025, 12, 31)
    pdfs = collect()
    print(f"{len(pdfs)} PDF:er; pypdfium2 {pypdfium2.version.PYPDFIUM_INFO}, PDFium {pypdfium2.version.PDFIUM_INFO}")
    differing_text = differing_normalised = differing_results = fallbacks = 0
    total_pdfium = total_pypdf = read_pdfium = read_pypdf = 0.0
    rows = []
    for where, payload in pdfs:
        with_pdfium = _pdfium_text(payload)
        with_pypdf = _pypdf_text_safe(_pypdf_text, payload)
        pdfium_seconds = fastest(_pdfium_text, payload, args.repeat)
        pypdf_seconds = fastest(lambda p: _pypdf_text_safe(_pypdf_text, p), payload, args.repeat)
        if with_pdfium is None:
            fallbacks += 1
            pdfium_seconds += pypdf_seconds  # what documents._pdf_text then spends
            verdict = "pypdf läser (PDFium öppnar inte / ingen text)"
        else:
            read_pdfium += pdfium_seconds
            read_pypdf += pypdf_seconds
            same_text = with_pdfium == with_pypdf
            same_normalised = normalise(with_pdfium[0]) == normalise(with_pypdf[0]) and with_pdfium[1] == with_pypdf[1]
            same_results = drawn(with_pdfium[0], municipalities, day) == drawn(with_pypdf[0], municipalities, day)
            differing_text += not same_text
            differing_normalised += not same_normalised
            differing_results += not same_results
            verdict = "samma text" if same_text else ("samma efter normalisering" if same_normalised else "OLIKA TEXT")
            verdict += "" if same_results else "; OLIKA RESULTAT"
            if not same_normalised or not same_results:
                print(f"\n--- {where}\nPDFium: {with_pdfium!r}\npypdf:  {with_pypdf!r}")
                print(f"PDFium ger: {drawn(with_pdfium[0], municipalities, day)}")
                print(f"pypdf ger:  {drawn(with_pypdf[0], municipalities, day)}")
        total_pdfium += pdfium_seconds
        total_pypdf += pypdf_seconds
        rows.append((where, len(payload), pdfium_seconds, pypdf_seconds, verdict))
    width = min(max(len(row[0]) for row in rows), 90)
    print(f"\n{'PDF':<{width}} {'byte':>9} {'PDFium ms':>10} {'pypdf ms':>9}  jämförelse")
    for where, size, pdfium_seconds, pypdf_seconds, verdict in rows:
        name = where if len(where) <= width else "…" + where[-width + 1 :]
        print(f"{name:<{width}} {size:>9} {pdfium_seconds * 1000:>10.2f} {pypdf_seconds * 1000:>9.2f}  {verdict}")
    print(
        f"\nSumma CPU (snabbaste av {args.repeat}): PDFium {total_pdfium * 1000:.1f} ms, pypdf {total_pypdf * 1000:.1f} ms "
        f"({total_pypdf / max(total_pdfium, 1e-9):.1f} gånger); på de {len(pdfs) - fallbacks} PDFium läser: "
        f"{read_pdfium * 1000:.1f} ms mot {read_pypdf * 1000:.1f} ms ({read_pypdf / max(read_pdfium, 1e-9):.1f} gånger)\n"
        f"Olika text: {differing_text}, olika efter normalisering: {differing_normalised}, olika resultat: "
        f"{differing_results}; pypdf läser {fallbacks} av {len(pdfs)}"
    )
    return 1 if differing_results else 0


def _pypdf_text_safe(function, payload: bytes):  # type: ignore[no-untyped-def]
    """pypdf as extract_text calls it: what it raises on a damaged file is the damaged problem."""
    from mailbot.understand.documents import _DAMAGED

    try:
        return function(payload)
    except Exception:  # noqa: BLE001
        return None, _DAMAGED["pdf"]


if __name__ == "__main__":
    sys.exit(main())
