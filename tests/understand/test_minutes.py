"""Minutes: the meeting date of the heading and the Närvarande list, from text, Word and PDF files.

Word and PDF files are built here with python-docx and fpdf2 and read through documents.extract_text.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from docx import Document
from fpdf import FPDF

from mailbot.understand.documents import extract_text
from mailbot.understand.minutes import NO_ATTENDANCE, NO_DATE, parse_minutes
from mailbot.understand.types import Attachment

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


SKIS_MINUTES = """Minnesanteckningar SKIS 2025-03-14
Plats: Stadshuset, Skövde
Nästa möte: 2025-05-16

Närvarande:
Anna Svensson, Skövde
Per Ek (Hjo kommun)
Skara: Jonas Ek, Eva Holm
Vara – Lisa Berg

Frånvarande: Olle Berg, Tibro

§ 1 Mötets öppnande
Ordförande Anna Svensson öppnade mötet. Götene och Mariestad lämnade rapporter.
"""


# --- meeting date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "Minnesanteckningar SKIS 2025-03-14",
        "Protokoll från nätverksträff fredag 14 mars 2025",
        "Protokoll nätverksträff den 14:e mars 2025",
        "Minnesanteckningar elevhälsa 14 Mars 2025",
        "Protokoll Vux\nDatum: 2025-03-14",
        "Protokoll Vux\nDatum: 14/3 2025",
        "Protokoll Vux\nDatum: 14/3-25",
        "Protokoll Vux\nMötesdatum: 14/3-2025",
    ],
)
def test_meeting_date_is_read_from_the_heading(municipalities, heading):
    result = parse_minutes(f"{heading}\n\nNärvarande: Anna Svensson, Skövde\n", municipalities)

    assert result.meeting_date == date(2025, 3, 14)
    assert result.date_source == "heading"


def test_heading_date_wins_over_the_next_meeting_date(municipalities):
    text = "Nätverket för rektorer i grundskolan\nNästa möte 2025-05-16\nProtokoll 2025-03-14\n"

    assert parse_minutes(text, municipalities).meeting_date == date(2025, 3, 14)


def test_signing_date_after_the_meeting_date_is_not_taken(municipalities):
    text = "Protokoll SKIS 2025-03-14, justerat 2025-03-20\nNärvarande: Per Ek, Hjo\n"

    assert parse_minutes(text, municipalities).meeting_date == date(2025, 3, 14)


def test_day_and_month_without_a_year_is_not_read_as_a_date(municipalities):
    assert (
        parse_minutes("Protokoll SKIS 14/3 20 deltagare\nNärvarande: Per Ek, Hjo", municipalities).meeting_date is None
    )


def test_date_far_below_the_heading_is_not_taken(municipalities):
    text = "Protokoll SKIS\n" + "\n".join(f"Punkt {n}" for n in range(20)) + "\nBeslut 2025-03-14\n"

    result = parse_minutes(text, municipalities)

    assert result.meeting_date is None
    assert result.date_source is None
    assert NO_DATE in result.problems


def test_impossible_date_is_not_a_date(municipalities):
    assert parse_minutes("Protokoll 2025-02-30\nNärvarande: Per Ek, Hjo", municipalities).meeting_date is None


# --- attendance --------------------------------------------------------------------------------


def test_people_and_municipalities_present_are_read_from_the_section(municipalities):
    result = parse_minutes(SKIS_MINUTES, municipalities)

    assert result.people_present == ("Anna Svensson", "Per Ek", "Jonas Ek", "Eva Holm", "Lisa Berg")
    assert result.municipalities_present == ("Hjo", "Skara", "Skövde", "Vara")
    assert result.problems == ()
    assert result.text == SKIS_MINUTES


def test_absent_municipalities_and_those_named_later_are_not_present(municipalities):
    present = parse_minutes(SKIS_MINUTES, municipalities).municipalities_present

    assert "Tibro" not in present  # Frånvarande
    assert "Götene" not in present  # named under § 1
    assert "Skövde" in present


@pytest.mark.parametrize(
    "section, people, present",
    [
        ("Närvarande: Anna Svensson, Skövde; Per Ek, Hjo", ("Anna Svensson", "Per Ek"), ("Hjo", "Skövde")),
        (
            "Närvarande\nAnna Svensson (Skövde kommun)\nÅsa Öberg (Götene)",
            ("Anna Svensson", "Åsa Öberg"),
            ("Götene", "Skövde"),
        ),
        (
            "Närvarande:\nSkövde: Anna Svensson, Per Ek\nTöreboda: Lena Ström",
            ("Anna Svensson", "Per Ek", "Lena Ström"),
            ("Skövde", "Töreboda"),
        ),
        ("Närvarande:\nHjo – Lisa Berg\nGullspång - Erik Dahl", ("Lisa Berg", "Erik Dahl"), ("Gullspång", "Hjo")),
        (
            "Närvarande\nNamn | Kommun\nAnna Svensson | Falköping\nPer Ek | Lidköping",
            ("Anna Svensson", "Per Ek"),
            ("Falköping", "Lidköping"),
        ),
        (
            "§ 1 Närvarande\nAnna Svensson, rektor, Essunga\nPer Ek, Grästorp (via Teams)",
            ("Anna Svensson", "Per Ek"),
            ("Essunga", "Grästorp"),
        ),
        ("Närvarande ledamöter: Karlsborg, Tidaholm och Mariestad", (), ("Karlsborg", "Mariestad", "Tidaholm")),
        ("Närvarande: Anna Svensson, Skövde. Frånvarande: Per Ek, Hjo", ("Anna Svensson",), ("Skövde",)),
    ],
)
def test_attendance_forms_are_read(municipalities, section, people, present):
    result = parse_minutes(f"Protokoll Vux 2025-03-14\n\n{section}\n\nDagordning\n1. Mötets öppnande\n", municipalities)

    assert result.people_present == people
    assert result.municipalities_present == present


def test_deltagare_list_counts_when_there_is_no_narvarande_heading(municipalities):
    text = "Minnesanteckningar 2025-03-14\nDeltagare: Per Ek, Hjo; Eva Holm, Skara\n"

    assert parse_minutes(text, municipalities).municipalities_present == ("Hjo", "Skara")


def test_narvarande_heading_wins_over_an_earlier_deltagare_line(municipalities):
    text = "Protokoll 2025-03-14\nDeltagare från Tibro presenterade.\n\nNärvarande:\nPer Ek Skövde kommun\n"

    result = parse_minutes(text, municipalities)

    assert result.people_present == ("Per Ek",)
    assert result.municipalities_present == ("Skövde",)


def test_lower_case_vara_and_hjo_are_ordinary_words_not_municipalities(municipalities):
    text = "Protokoll 2025-03-14\nNärvarande:\nAnna Svensson, Skövde\nalla som kunde vara med, hjo-gruppen saknades\n"

    assert parse_minutes(text, municipalities).municipalities_present == ("Skövde",)


@pytest.mark.parametrize(
    "stop",
    ["Frånvarande:", "Ej närvarande", "Anmält förhinder:", "Förhinder", "Dagordning", "§ 1 Val av justerare",
     "1. Mötets öppnande", "Mötets öppnande", "\n"],
)  # fmt: skip
def test_attendance_section_ends_at_the_next_heading(municipalities, stop):
    text = f"Protokoll 2025-03-14\nNärvarande:\nAnna Svensson, Skövde\n{stop}\nPer Ek, Hjo\n"

    result = parse_minutes(text, municipalities)

    assert result.people_present == ("Anna Svensson",)
    assert result.municipalities_present == ("Skövde",)


def test_running_text_after_the_list_is_not_attendance(municipalities):
    text = (
        "Protokoll 2025-03-14\nNärvarande:\nAnna Svensson, Skövde\n\n"
        "Mötet inleddes med att gruppen från Vara berättade om sitt arbete med läsning.\n"
    )

    assert parse_minutes(text, municipalities).municipalities_present == ("Skövde",)


def test_minutes_without_attendance_list_report_a_problem(municipalities):
    result = parse_minutes("Minnesanteckningar SKIS 2025-03-14\n§ 1 Mötets öppnande\n", municipalities)

    assert result.meeting_date == date(2025, 3, 14)
    assert result.problems == (NO_ATTENDANCE,)
    assert result.people_present == ()
    assert result.municipalities_present == ()


def test_empty_text_reports_both_problems(municipalities):
    assert parse_minutes("", municipalities).problems == (NO_DATE, NO_ATTENDANCE)


# --- from real files ---------------------------------------------------------------------------


def test_word_minutes_with_headings_and_an_attendance_table(municipalities):
    document = Document()
    document.add_heading("Protokoll nätverksträff Introduktionsprogrammen", level=1)
    document.add_paragraph("Datum: 14/3 2025")
    document.add_heading("Närvarande", level=2)
    table = document.add_table(rows=4, cols=3)
    for r, row in enumerate(
        [
            ("Namn", "Kommun", "Roll"),
            ("Anna Svensson", "Skövde", "Ordförande"),
            ("Björn Ängström", "Töreboda", "Sekreterare"),
            ("Lisa Berg", "Vara", ""),
        ]
    ):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Frånvarande", level=2)
    document.add_paragraph("Per Ek, Hjo")
    document.add_heading("§ 1 Mötets öppnande", level=2)
    buffer = io.BytesIO()
    document.save(buffer)
    text, problem = extract_text(Attachment("Protokoll IM 14 mars.docx", "application/octet-stream", buffer.getvalue()))

    result = parse_minutes(text, municipalities)

    assert problem is None
    assert result.meeting_date == date(2025, 3, 14)
    assert result.people_present == ("Anna Svensson", "Björn Ängström", "Lisa Berg")
    assert result.municipalities_present == ("Skövde", "Töreboda", "Vara")


def test_pdf_minutes_made_in_word_and_saved_as_pdf(municipalities):
    pdf = FPDF()
    pdf.add_page()
    if FONT.exists():
        pdf.add_font("DejaVu", fname=str(FONT))
        pdf.set_font("DejaVu", size=11)
    else:
        pdf.set_font("Helvetica", size=11)  # latin-1 still has å/ä/ö
    for line in SKIS_MINUTES.splitlines():
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    text, problem = extract_text(Attachment("Minnesanteckningar SKIS.pdf", "application/pdf", bytes(pdf.output())))

    result = parse_minutes(text, municipalities)

    assert problem is None
    assert result.meeting_date == date(2025, 3, 14)
    assert result.municipalities_present == ("Hjo", "Skara", "Skövde", "Vara")
    assert "Lisa Berg" in result.people_present
