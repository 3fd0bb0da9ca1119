"""Member lists from Excel sheets, CSV files, Word tables and plain lines in a mail body.

The files are built here with openpyxl and python-docx, the way secretaries' Office would write them.
"""

from __future__ import annotations

import io

import pytest
from docx import Document
from openpyxl import Workbook

from mailbot.understand.members import parse_member_lines, parse_member_list, parse_member_table, parse_role
from mailbot.understand.types import Attachment, MemberRow, RejectedRow
from registry.domain import Role


def xlsx_attachment(rows: list[list[object]], filename: str = "Medlemmar SKIS 2025.xlsx") -> Attachment:
    workbook = Workbook()
    sheet = workbook.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(r, c, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Attachment(filename, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", buffer.getvalue())


def docx_attachment(tables: list[list[list[str]]], filename: str = "Förteckning Vux.docx") -> Attachment:
    document = Document()
    document.add_paragraph("Förteckning över ledamöter i Vux-nätverket")
    for table in tables:
        word_table = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                word_table.cell(r, c).text = value
        document.add_paragraph("")
    buffer = io.BytesIO()
    document.save(buffer)
    return Attachment(
        filename, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", buffer.getvalue()
    )


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, role",
    [
        ("Ordförande", Role.CHAIR),
        ("ordf.", Role.CHAIR),
        ("Rektor, ordförande", Role.CHAIR),
        ("Nätverksordförande", Role.CHAIR),
        ("Sekreterare", Role.SECRETARY),
        ("sekr", Role.SECRETARY),
        ("Vice ordförande", Role.PRESIDIUM),
        ("vice-ordf", Role.PRESIDIUM),
        ("Presidiet", Role.PRESIDIUM),
        ("Ingår i presidium", Role.PRESIDIUM),
        ("Skolchef", Role.SCHOOL_CHIEF),
        ("Skol- och utbildningschef", Role.SCHOOL_CHIEF),
        ("Utbildningschef", Role.SCHOOL_CHIEF),
        ("Förvaltningschef", Role.SCHOOL_CHIEF),
        ("Ledamot", Role.MEMBER),
        ("Deltagare", Role.MEMBER),
        ("Representant", Role.MEMBER),
        ("Medlem", Role.MEMBER),
        ("Rektor", Role.MEMBER),
        ("Förskolechef", Role.MEMBER),
        ("", Role.MEMBER),
        (None, Role.MEMBER),
        ("Ordförande och skolchef", Role.CHAIR),
        ("Sekreterare, vice ordförande", Role.SECRETARY),
    ],
)
def test_role_is_read_from_swedish_words(text, role):
    assert parse_role(text) is role


# --- tables ------------------------------------------------------------------------------------

SKIS_SHEET: list[list[object]] = [
    ["Medlemmar SKIS 2025"],
    [],
    ["E-postadress", "Telefon", "Kommun", "Förnamn", "Efternamn", "Roll i nätverket"],
    ["Anna.Svensson@Skovde.se", "0500-49 80 00", "Skövde kommun", "Anna", "Svensson", "Rektor, ordförande"],
    ["per.ek@hjo.se", 50360000, "Hjo", "Per", "Ek", "Sekreterare"],
    ["karin.lund@falkoping.se", None, "Falkopings kommun", "Karin", "Lund", "Ledamot"],
    [],
    ["maria.nilsson@gotene", None, "Götene", "Maria", "Nilsson", "Ledamot"],
    ["jonas.holm@tidaholm.se", None, None, "Jonas", "Holm", None],
    ["eva.berg@skaraborg.se", None, "Skaraborgs kommunalförbund", "Eva", "Berg", "Utvecklingsledare"],
    ["lars.ek@mariestad.se", None, "Mariestad", "Lars", "Ek", "Skol- och utbildningschef"],
]


@pytest.fixture
def skis_list(municipalities):
    return parse_member_list([xlsx_attachment(SKIS_SHEET)], "Hej, här kommer listan.", municipalities)


def test_excel_sheet_with_title_row_and_odd_column_order_gives_members(skis_list):
    assert skis_list.source == "Medlemmar SKIS 2025.xlsx"
    assert skis_list.members == (
        MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.CHAIR),
        MemberRow("Per Ek", "per.ek@hjo.se", "Hjo", Role.SECRETARY),
        MemberRow("Karin Lund", "karin.lund@falkoping.se", "Falköping", Role.MEMBER),
        MemberRow("Jonas Holm", "jonas.holm@tidaholm.se", "Tidaholm", Role.MEMBER),
        MemberRow("Eva Berg", "eva.berg@skaraborg.se", None, Role.MEMBER),
        MemberRow("Lars Ek", "lars.ek@mariestad.se", "Mariestad", Role.SCHOOL_CHIEF),
    )


def test_excel_row_with_bad_address_is_rejected_with_its_sheet_row_number(skis_list):
    assert skis_list.rejected == (
        RejectedRow(
            8,
            "maria.nilsson@gotene |  | Götene | Maria | Nilsson | Ledamot",
            "ogiltig e-postadress 'maria.nilsson@gotene'",
        ),
    )


def test_municipality_comes_from_the_mail_domain_when_the_column_is_empty(skis_list):
    assert skis_list.members[3].municipality == "Tidaholm"


def test_federation_staff_belong_to_no_municipality(municipalities):
    rows = [["Namn", "E-post", "Kommun"], ["Eva Berg", "eva.berg@skaraborg.se", "Skövde"]]

    result = parse_member_table(rows, municipalities, "lista.xlsx")

    assert result.members[0].municipality is None


def test_municipality_column_wins_over_the_mail_domain(municipalities):
    rows = [["Namn", "Mejl", "Arbetsplats"], ["Eva Berg", "eva.berg@gmail.com", "Ekenässkolan, Lidköpings kommun"]]

    result = parse_member_table(rows, municipalities, "lista.xlsx")

    assert result.members[0].municipality == "Lidköping"


def test_table_without_name_and_email_headings_is_not_a_member_list(municipalities):
    rows = [["Datum", "Plats"], ["2025-03-14", "Skövde"], ["2025-05-16", "Hjo"]]

    assert parse_member_table(rows, municipalities, "datum.xlsx") is None


def test_heading_row_further_down_than_ten_rows_is_not_searched(municipalities):
    rows = [["Anteckning"]] * 10 + [["Namn", "E-post"], ["Per Ek", "per.ek@hjo.se"]]

    assert parse_member_table(rows, municipalities, "lista.xlsx") is None


@pytest.mark.parametrize(
    "headings",
    [
        ["Namn", "E-post"],
        ["NAMN", "EPOST"],
        ["Name", "E-mail"],
        ["Namn", "Mejladress"],
        ["Fullständigt namn", "Mail"],
        ["Ledamot", "E-post"],
    ],
)
def test_name_and_email_headings_are_recognised_in_any_spelling(municipalities, headings):
    result = parse_member_table([headings, ["Per Ek", "per.ek@hjo.se"]], municipalities, "lista.xlsx")

    assert result.members == (MemberRow("Per Ek", "per.ek@hjo.se", "Hjo", Role.MEMBER),)


@pytest.mark.parametrize(
    "row, reason",
    [
        (["", "per.ek@hjo.se", "Hjo"], "namn saknas"),
        (["Per Ek", "", "Hjo"], "e-postadress saknas"),
        (["", "", "Hjo"], "namn och e-postadress saknas"),
        (["Per Ek", "per.ek(at)hjo.se", "Hjo"], "ogiltig e-postadress 'per.ek(at)hjo.se'"),
    ],
)
def test_incomplete_table_rows_are_rejected_with_a_swedish_reason(municipalities, row, reason):
    result = parse_member_table([["Namn", "E-post", "Kommun"], row], municipalities, "lista.xlsx")

    assert result.members == ()
    assert result.rejected == (RejectedRow(2, " | ".join(row), reason),)


def test_blank_rows_are_skipped_silently(municipalities):
    rows = [["Namn", "E-post"], ["", ""], [], ["Per Ek", "per.ek@hjo.se"]]

    result = parse_member_table(rows, municipalities, "lista.xlsx")

    assert len(result.members) == 1
    assert result.rejected == ()


def test_duplicate_address_keeps_the_first_row_and_rejects_the_later(municipalities):
    rows = [["Namn", "E-post"], ["Per Ek", "per.ek@hjo.se"], ["Per Ek", "Per.Ek@hjo.se"]]

    result = parse_member_table(rows, municipalities, "lista.xlsx")

    assert [m.name for m in result.members] == ["Per Ek"]
    assert result.rejected == (
        RejectedRow(3, "Per Ek | Per.Ek@hjo.se", "e-postadressen per.ek@hjo.se finns redan på rad 2"),
    )


@pytest.mark.parametrize(
    "role_cell, presidium_cell, role",
    [
        ("Rektor", "x", Role.PRESIDIUM),
        ("Ledamot", "Ja", Role.PRESIDIUM),
        ("Ordförande", "x", Role.CHAIR),
        ("Sekreterare", "X", Role.SECRETARY),
        ("Skolchef", "x", Role.PRESIDIUM),
        ("Rektor", "", Role.MEMBER),
        ("Rektor", "nej", Role.MEMBER),
    ],
)
def test_presidium_column_marks_presidium_unless_a_stronger_role_is_given(
    municipalities, role_cell, presidium_cell, role
):
    rows = [["Namn", "E-post", "Befattning", "Presidium"], ["Per Ek", "per.ek@hjo.se", role_cell, presidium_cell]]

    assert parse_member_table(rows, municipalities, "lista.xlsx").members[0].role is role


def test_address_pasted_with_display_name_into_the_email_cell_is_read(municipalities):
    rows = [["Namn", "E-post"], ["Per Ek", "Per Ek <per.ek@hjo.se>"]]

    assert parse_member_table(rows, municipalities, "lista.xlsx").members[0].email == "per.ek@hjo.se"


def test_role_in_parentheses_after_the_name_is_read_and_removed(municipalities):
    rows = [["Namn", "E-post"], ["Per Ek (ordf.)", "per.ek@hjo.se"]]

    assert parse_member_table(rows, municipalities, "lista.xlsx").members == (
        MemberRow("Per Ek", "per.ek@hjo.se", "Hjo", Role.CHAIR),
    )


def test_csv_in_windows_1252_with_semicolons_gives_members(municipalities):
    text = (
        "Namn;Kommun;E-post;Funktion\r\n"
        "Åsa Öberg;Götene;asa.oberg@gotene.se;Ordförande\r\n"
        "Björn Ängström;Töreboda;bjorn.angstrom@toreboda.se;Sekreterare\r\n"
    )
    attachment = Attachment("förteckning.csv", "text/csv", text.encode("cp1252"))

    result = parse_member_list([attachment], "", municipalities)

    assert result.source == "förteckning.csv"
    assert result.members == (
        MemberRow("Åsa Öberg", "asa.oberg@gotene.se", "Götene", Role.CHAIR),
        MemberRow("Björn Ängström", "bjorn.angstrom@toreboda.se", "Töreboda", Role.SECRETARY),
    )


def test_csv_in_utf8_with_bom_and_commas_gives_members(municipalities):
    text = 'E-post,Namn,Uppdrag\nlinnea.ek@grastorp.se,Linnéa Ek,"Rektor, vice ordförande"\nolle.dahl@essunga.se,Olle Dahl,\n'
    attachment = Attachment("lista.csv", "text/csv", text.encode("utf-8-sig"))

    result = parse_member_list([attachment], "", municipalities)

    assert result.members == (
        MemberRow("Linnéa Ek", "linnea.ek@grastorp.se", "Grästorp", Role.PRESIDIUM),
        MemberRow("Olle Dahl", "olle.dahl@essunga.se", "Essunga", Role.MEMBER),
    )


def test_word_document_with_presidium_and_member_tables_gives_one_list(municipalities):
    presidium = [["Namn", "Roll", "E-post"], ["Sara Lind", "Ordförande", "sara.lind@lidkoping.se"]]
    members = [
        ["Namn", "Kommun", "E-post"],
        ["Johan Ström", "Karlsborg", "johan.strom@karlsborg.se"],
        ["Sara Lind", "Lidköping", "sara.lind@lidkoping.se"],
    ]

    result = parse_member_list([docx_attachment([presidium, members])], "", municipalities)

    assert result.source == "Förteckning Vux.docx"
    assert result.members == (
        MemberRow("Sara Lind", "sara.lind@lidkoping.se", "Lidköping", Role.CHAIR),
        MemberRow("Johan Ström", "johan.strom@karlsborg.se", "Karlsborg", Role.MEMBER),
    )
    assert [r.reason for r in result.rejected] == ["e-postadressen sara.lind@lidkoping.se finns redan på rad 2"]


# --- plain lines in a body ---------------------------------------------------------------------

OTHER_MEMBER = "Olle Dahl, olle.dahl@essunga.se, Essunga"


@pytest.mark.parametrize(
    "line, member",
    [
        (
            "Anna Svensson, anna.svensson@skovde.se, Skövde, ordförande",
            MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.CHAIR),
        ),
        (
            "Anna Svensson <anna.svensson@skovde.se> – Skövde (ordförande)",
            MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.CHAIR),
        ),
        (
            "Anna Svensson, Skövde kommun, anna.svensson@skovde.se",
            MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.MEMBER),
        ),
        (
            "Anna Svensson\tanna.svensson@skovde.se\tSkövde\tSekreterare",
            MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.SECRETARY),
        ),
        (
            "Ordförande: Anna Svensson, anna.svensson@skovde.se",
            MemberRow("Anna Svensson", "anna.svensson@skovde.se", "Skövde", Role.CHAIR),
        ),
        (
            "- Anna-Karin af Klint, Falkopings kommun, Anna-Karin.af.Klint@falkoping.se",
            MemberRow("Anna-Karin af Klint", "anna-karin.af.klint@falkoping.se", "Falköping", Role.MEMBER),
        ),
        (
            "Anna Svensson anna.svensson@gmail.com Gullspång skolchef",
            MemberRow("Anna Svensson", "anna.svensson@gmail.com", "Gullspång", Role.SCHOOL_CHIEF),
        ),
    ],
)
def test_member_line_forms_in_a_body_are_read(municipalities, line, member):
    result = parse_member_lines(f"Hej!\n\n{line}\n{OTHER_MEMBER}\n", municipalities)

    assert result.members[0] == member
    assert result.rejected == ()


@pytest.mark.parametrize(
    "line, reason",
    [
        ("Per Olsson, per.olsson@", "ogiltig e-postadress 'per.olsson@'"),
        ("Lisa Berg lisa.berg(at)hjo.se", "ogiltig e-postadress 'lisa.berg(at)hjo.se'"),
        ("karin.lund@falkoping.se", "namn saknas"),
    ],
)
def test_line_that_looks_like_a_member_but_fails_is_rejected(municipalities, line, reason):
    body = f"Anna Svensson, anna.svensson@skovde.se\n{line}\n{OTHER_MEMBER}"

    result = parse_member_lines(body, municipalities)

    assert result.rejected == (RejectedRow(2, line, reason),)


def test_sender_signature_and_forward_headers_are_not_members(municipalities):
    body = """Hej!

Här kommer förteckningen för elevhälsonätverket.

Anna Svensson, anna.svensson@skovde.se, Skövde, ordförande
Per Ek, per.ek@hjo.se, Hjo, sekreterare

Frågor skickas till utbildning@skaraborg.se så snart som möjligt.

Med vänliga hälsningar
Kalle Karlsson, Utbildning Skaraborg
kalle.karlsson@skaraborg.se
E-post: kalle.karlsson@skaraborg.se

Från: Maria Nilsson <maria.nilsson@vara.se>
Skickat: den 3 februari 2025 10:14
Till: utbildning@skaraborg.se
Ämne: Medlemmar

Maria Nilsson, maria.nilsson@vara.se, Vara
"""

    result = parse_member_lines(body, municipalities)

    assert [m.email for m in result.members] == ["anna.svensson@skovde.se", "per.ek@hjo.se", "maria.nilsson@vara.se"]
    assert result.rejected == ()


def test_recipient_line_pasted_from_outlook_gives_one_member_each(municipalities):
    body = "Anna Svensson <anna.svensson@skovde.se>; Per Ek <per.ek@hjo.se>; Eva Holm <eva.holm@tibro.se>"

    result = parse_member_lines(body, municipalities)

    assert [(m.name, m.municipality) for m in result.members] == [
        ("Anna Svensson", "Skövde"),
        ("Per Ek", "Hjo"),
        ("Eva Holm", "Tibro"),
    ]


def test_role_heading_gives_its_role_to_the_lines_below(municipalities):
    body = "Presidium:\nAnna Svensson, anna.svensson@skovde.se\n\nÖvriga ledamöter:\nPer Ek, per.ek@hjo.se\n"

    result = parse_member_lines(body, municipalities)

    assert [m.role for m in result.members] == [Role.PRESIDIUM, Role.MEMBER]


def test_body_with_a_single_address_is_not_a_member_list(municipalities):
    body = "Hej! Listan kommer senare.\nAnna Svensson, anna.svensson@skovde.se\n\nMvh Anna"

    assert parse_member_lines(body, municipalities) is None


def test_attachment_wins_over_the_body(municipalities):
    body = "Anna Svensson, anna.svensson@skovde.se\nPer Ek, per.ek@hjo.se"

    result = parse_member_list([xlsx_attachment(SKIS_SHEET)], body, municipalities)

    assert result.source == "Medlemmar SKIS 2025.xlsx"


def test_body_is_read_when_no_attachment_holds_a_list(municipalities):
    not_a_list = xlsx_attachment([["Datum", "Plats"], ["2025-03-14", "Skövde"]], "datum.xlsx")
    body = "Anna Svensson, anna.svensson@skovde.se\nPer Ek, per.ek@hjo.se"

    result = parse_member_list([not_a_list, Attachment("logo.png", "image/png", b"\x89PNG")], body, municipalities)

    assert result.source == "body"
    assert len(result.members) == 2


def test_text_attachment_with_member_lines_gives_members(municipalities):
    text = "Anna Svensson, anna.svensson@skovde.se\nPer Ek, per.ek@hjo.se\n"
    attachment = Attachment("medlemmar.txt", "text/plain", text.encode("cp1252"))

    result = parse_member_list([attachment], "Se bifogad fil.", municipalities)

    assert result.source == "medlemmar.txt"
    assert len(result.members) == 2


def test_mail_without_any_list_gives_none(municipalities):
    assert parse_member_list([], "Hej! Vi återkommer med listan.\n\nMvh\nAnna\nanna@skovde.se", municipalities) is None


@pytest.mark.parametrize(
    ("headings", "cells", "role"),
    [
        # b4_027: a "Roll i nätverket" column beside a "Befattning" column: the job title is not the role.
        (
            ["Namn", "Roll i nätverket", "Befattning", "E-post"],
            ["Per Ek", "Ledamot", "Skolchef", "per.ek@hjo.se"],
            Role.MEMBER,
        ),
        (
            ["Namn", "Roll", "Titel", "E-post"],
            ["Per Ek", "", "Skol- och utbildningschef", "per.ek@hjo.se"],
            Role.MEMBER,
        ),
        (["Namn", "Befattning", "Roll", "E-post"], ["Per Ek", "Rektor", "Ordförande", "per.ek@hjo.se"], Role.CHAIR),
        # Without a role column the job title is all there is.
        (["Namn", "Befattning", "E-post"], ["Per Ek", "Sekreterare", "per.ek@hjo.se"], Role.SECRETARY),
    ],
)
def test_a_job_title_column_is_not_the_role_beside_a_role_column(municipalities, headings, cells, role):
    assert parse_member_table([headings, cells], municipalities, "lista.xlsx").members[0].role is role


@pytest.mark.parametrize(
    "text",
    [
        "Skövde", "Skovde", "SKÖVDE KOMMUN", "Falkopings kommun", "Götene kommun", "  Lidköping. ", "Mariestad",
        "Marie", "Skövde stad", "Barn- och utbildningsförvaltningen, Skövde kommun", "Stockholm", "Skövdeborg",
        "Anna", "Andersson", "rektor", "Tibro-Hjo", "Hjo", "Vara", "Varaborg", "i Vara kommun", "", " ", None,
    ],
)  # fmt: skip
def test_match_name_with_its_combined_pattern_answers_what_the_search_variant_by_variant_answers(  # type: ignore[no-untyped-def]
    municipalities, text: str | None
) -> None:
    """MunicipalityIndex.match_name asks one combined pattern first and remembers its answers; the answer is the
    one the plain search gives: the exact name, else the first variant found as a whole word."""
    import re

    from registry.config import fold

    def variant_by_variant(text: str | None) -> str | None:
        if not text or not text.strip():
            return None
        key = municipalities._key(text)
        if key in municipalities._by_name:
            return municipalities._by_name[key]
        for variant_key, name in municipalities._by_name.items():
            if re.search(rf"(?<![a-z]){re.escape(variant_key)}(?![a-z])", fold(text)):
                return name
        return None

    assert municipalities.match_name(text) == variant_by_variant(text)
    assert municipalities.match_name(text) == variant_by_variant(text)  # remembered
