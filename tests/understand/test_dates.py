"""Swedish dates as secretaries write them: subjects, file names and Outlook bodies."""

from datetime import date, time

import pytest

from mailbot.understand.dates import parse_date, parse_meeting_dates

# A Thursday; 14 March 2025 is the Friday before it.
CONTEXT = date(2025, 3, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Protokoll SKIS 14/3", date(2025, 3, 14)),
        ("SV: Protokoll SKIS 14/3", date(2025, 3, 14)),
        ("Minnesanteckningar elevhälsonätverket 2025-03-14", date(2025, 3, 14)),
        ("protokoll_2025-03-14.pdf", date(2025, 3, 14)),
        ("Protokoll 2025/03/14", date(2025, 3, 14)),
        ("Minnesanteckningar 250314.docx", date(2025, 3, 14)),
        ("Protokoll_SKIS_20250314.pdf", date(2025, 3, 14)),
        ("fredag 14 mars 2025", date(2025, 3, 14)),
        ("Minnesanteckningar från fredagen den 14 mars", date(2025, 3, 14)),
        ("den 14:e mars", date(2025, 3, 14)),
        ("14 mars", date(2025, 3, 14)),
        ("VB: Minnesanteckningar 14 mars 2025.pdf", date(2025, 3, 14)),
        ("Protokoll_Vux_14_mars.docx", date(2025, 3, 14)),
        ("Protokoll 14 dec. 2024", date(2024, 12, 14)),
        ("14/3-25", date(2025, 3, 14)),
        ("Protokoll 14/3/2025", date(2025, 3, 14)),
        ("14.3.2025", date(2025, 3, 14)),
        ("20250314", date(2025, 3, 14)),
        ("Protokoll 14/3 kl. 9-12", date(2025, 3, 14)),
        ("Protokoll nätverksträff fredag v. 11", date(2025, 3, 14)),
        ("Protokoll v.11 fredag", date(2025, 3, 14)),
        # Without a year: the latest such date, allowing a week for mails sent early.
        ("Protokoll 24/3", date(2025, 3, 24)),
        ("Protokoll 30/3", date(2024, 3, 30)),
        ("Minnesanteckningar 1:a april", date(2024, 4, 1)),
        ("Protokoll 29/2", date(2024, 2, 29)),
        # The first date wins.
        ("Protokoll 14/3 (reviderat 18/3)", date(2025, 3, 14)),
    ],
)
def test_parse_date_reads_past_meeting_date(text: str, expected: date) -> None:
    assert parse_date(text, CONTEXT, "past") == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mötesdatum kl. 9-12",
        "Ring mig på 0500-49 80 00",
        "Tel 070-123 45 67",
        "Utvecklingsplan 2023-2026",
        "Utvecklingsplan 2023–2026",
        "Planering v. 12",
        "Planering vecka 12",
        "Protokoll 31/2",
        "Protokoll 14/13",
        "Påminnelse: protokoll senast 31/3",
        "Bilaga 3 av 12",
        "Förteckning medlemmar Vux-nätverket",
        "Minnesanteckningar 070123.docx",
        "",
    ],
)
def test_parse_date_finds_no_date(text: str) -> None:
    assert parse_date(text, CONTEXT, "past") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mötesdatum 14/3", date(2025, 3, 14)),
        ("Nätverksträff 10/1", date(2026, 1, 10)),
        ("Nätverksträff 25/1", date(2025, 1, 25)),
        ("Nätverksträff fredag v. 2", date(2026, 1, 9)),
        ("Nätverksträff 12 september 2024", date(2024, 9, 12)),
    ],
)
def test_parse_date_future_looks_back_sixty_days_at_most(text: str, expected: date) -> None:
    assert parse_date(text, CONTEXT, "future") == expected


# Read on 1 June 2025: without a year, dates from 2 April 2025 on.
BODY_CONTEXT = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("fredag 14 mars 2025", (date(2025, 3, 14), None, None, None)),
        ("Fredag 12 september", (date(2025, 9, 12), None, None, None)),
        ("den 12:e september kl. 13", (date(2025, 9, 12), time(13), None, None)),
        ("12 sept kl 13:00", (date(2025, 9, 12), time(13), None, None)),
        (
            "Nästa träff: fredag 12 september kl. 9–12, Stadshuset Skövde",
            (date(2025, 9, 12), time(9), time(12), "Stadshuset Skövde"),
        ),
        ("12/9 kl 9-12 på Kavelbro, Lidköping", (date(2025, 9, 12), time(9), time(12), "Kavelbro, Lidköping")),
        ("12/9-25 kl 9.00-12.00 i Skara", (date(2025, 9, 12), time(9), time(12), "Skara")),
        ("12/9 9-12", (date(2025, 9, 12), time(9), time(12), None)),
        ("2025-09-12 13:00", (date(2025, 9, 12), time(13), None, None)),
        ("2025-09-12 09.00–12.00 Stadshuset", (date(2025, 9, 12), time(9), time(12), "Stadshuset")),
        ("12.9.2025 13:00-15:30, Götene", (date(2025, 9, 12), time(13), time(15, 30), "Götene")),
        ("20250912 kl. 8.30–11", (date(2025, 9, 12), time(8, 30), time(11), None)),
        ("12 september kl 9-12, lokal Kärnsalen", (date(2025, 9, 12), time(9), time(12), "Kärnsalen")),
        (
            "12 september kl 9-12. Plats: Skara Folkhögskola",
            (date(2025, 9, 12), time(9), time(12), "Skara Folkhögskola"),
        ),
        ("12 september, Stadshuset kl. 9-12", (date(2025, 9, 12), time(9), time(12), "Stadshuset")),
        ("Kl. 9–12 den 12 september", (date(2025, 9, 12), time(9), time(12), None)),
        ("fredag 12 september kl. 9–12, vi ses där!", (date(2025, 9, 12), time(9), time(12), None)),
        ("12 september kl 9-12 då vi pratar om betyg", (date(2025, 9, 12), time(9), time(12), None)),
        ("fredag v. 38", (date(2025, 9, 19), None, None, None)),
        ("fredag vecka 38 kl 9-12", (date(2025, 9, 19), time(9), time(12), None)),
        ("v.38 fredag", (date(2025, 9, 19), None, None, None)),
        ("Vecka 38, fredag", (date(2025, 9, 19), None, None, None)),
        ("fredag v. 38 2026", (date(2026, 9, 18), None, None, None)),
        ("- 14/1", (date(2026, 1, 14), None, None, None)),
        ("• 10/4", (date(2025, 4, 10), None, None, None)),
        # A two-day meeting starts on its first day; without a separator the words after it are not a place.
        ("* 13–14 november internat i Hjo", (date(2025, 11, 13), None, None, None)),
        ("Träffen flyttas till 26/9", (date(2025, 9, 26), None, None, None)),
        ("Anmälan till träffen 26/9 görs i formuläret", (date(2025, 9, 26), None, None, None)),
        ("26/9 kl 9-12, svar senast 1/9", (date(2025, 9, 26), time(9), time(12), None)),
        ("Resultat 0/3 men träff 26/9", (date(2025, 9, 26), None, None, None)),
    ],
)
def test_meeting_date_on_one_line(line: str, expected: tuple[object, ...]) -> None:
    result = parse_meeting_dates(line, BODY_CONTEXT)

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == [expected]
    assert result.dates[0].source_text == line.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("VT: 6/2, 13/3, 15/5", [date(2026, 2, 6), date(2026, 3, 13), date(2026, 5, 15)]),
        (
            "HT 2025: 12/9, 10/10, 14/11, 12/12",
            [date(2025, 9, 12), date(2025, 10, 10), date(2025, 11, 14), date(2025, 12, 12)],
        ),
        ("HT25: 12/9, 16/1", [date(2025, 9, 12), date(2026, 1, 16)]),
        ("Våren 2027\n5/2\n12/3", [date(2027, 2, 5), date(2027, 3, 12)]),
        ("Höstterminen 2026:\n- 11/9\n- 9/10", [date(2026, 9, 11), date(2026, 10, 9)]),
        ("Mötesdatum 2027\n12/3\n17/9", [date(2027, 3, 12), date(2027, 9, 17)]),
        ("Läsåret 2025/2026\n12/9\n6/2", [date(2025, 9, 12), date(2026, 2, 6)]),
        (
            "HT 2025: 12/9, 10/10\nVT: 6/2, 13/3",
            [date(2025, 9, 12), date(2025, 10, 10), date(2026, 2, 6), date(2026, 3, 13)],
        ),
        ("Datum HT 2025\n12/9 och 10/10", [date(2025, 9, 12), date(2025, 10, 10)]),
        ("12/9, 10/10 och 14/11", [date(2025, 9, 12), date(2025, 10, 10), date(2025, 11, 14)]),
        ("12/9 Skövde\n12/9 Skövde", [date(2025, 9, 12)]),
        ("14/11\n12/9", [date(2025, 9, 12), date(2025, 11, 14)]),
        ("HT 2025\n14 mars 2026", [date(2026, 3, 14)]),
    ],
)
def test_meeting_dates_in_lists_take_the_heading_year(text: str, expected: list[date]) -> None:
    assert [found.date for found in parse_meeting_dates(text, BODY_CONTEXT).dates] == expected


@pytest.mark.parametrize(
    "text",
    [
        "> fredag 14 mars 2025 kl. 9-12",
        "Skickat: den 10 mars 2025 14:32",
        "Svara senast 31/1 om du kommer.",
        "Anmälan senast den 1 september",
        "Sista dag för anmälan är 5/9.",
        "Skicka protokollet innan 31/1",
        "Planen gäller 2023–2026.",
        "Tel 0500-49 80 00",
        "Vi ses v. 38.",
        "Vecka 12 har vi sportlov",
        "Läsåret 2025/26 börjar snart",
        "Hej!\nHar ni några datum?",
        "",
    ],
)
def test_not_a_meeting_date(text: str) -> None:
    result = parse_meeting_dates(text, BODY_CONTEXT)

    assert result.dates == ()
    assert result.problems == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Nästa träff 31/2", "Kunde inte tolka datumet '31/2'"),
        ("Träff 31 april kl 9", "Kunde inte tolka datumet '31 april'"),
        ("2025-02-30", "Kunde inte tolka datumet '2025-02-30'"),
        ("29/2-25", "Datumet '29/2-25' finns inte år 2025"),
        ("torsdag 14 mars 2025", "Veckodagen stämmer inte i 'torsdag 14 mars 2025': 14 mars 2025 är en fredag"),
    ],
)
def test_impossible_dates_become_problems(text: str, problem: str) -> None:
    assert problem in parse_meeting_dates(text, BODY_CONTEXT).problems


def test_invalid_date_is_not_returned_beside_valid_ones() -> None:
    result = parse_meeting_dates("VT: 6/2, 31/2, 15/5", BODY_CONTEXT)

    assert [found.date for found in result.dates] == [date(2026, 2, 6), date(2026, 5, 15)]
    assert result.problems == ("Kunde inte tolka datumet '31/2'",)


def test_wrong_weekday_keeps_the_date() -> None:
    result = parse_meeting_dates("torsdag 14 mars 2025", BODY_CONTEXT)

    assert [found.date for found in result.dates] == [date(2025, 3, 14)]


SKIS_AUTUMN = """Hej!

Här kommer mötesdatumen för SKIS hösten 2025:

- fredag 12 september kl. 9–12, Stadshuset Skövde
- fredag 10 oktober kl 9.00-12.00 på Kavelbro, Lidköping
- fredag 14 november 09.00–12.00 i Skara
- fredag 12 december kl. 13, lokal Kärnsalen, Falköping

Anmäl förhinder senast 1/9 till mig.

Med vänliga hälsningar
Anna Svensson
Rektor, Skövde kommun
Tel 0500-49 80 00
Skickat från Outlook 2025-06-01
"""


def test_outlook_body_with_bullet_list_and_signature() -> None:
    result = parse_meeting_dates(SKIS_AUTUMN, date(2025, 6, 2))

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == [
        (date(2025, 9, 12), time(9), time(12), "Stadshuset Skövde"),
        (date(2025, 10, 10), time(9), time(12), "Kavelbro, Lidköping"),
        (date(2025, 11, 14), time(9), time(12), "Skara"),
        (date(2025, 12, 12), time(13), None, "Kärnsalen, Falköping"),
    ]
    assert result.problems == ()
    assert result.dates[0].source_text == "- fredag 12 september kl. 9–12, Stadshuset Skövde"


def test_year_heading_and_terms_across_a_school_year() -> None:
    body = (
        "Hej,\n\nMötesdatum för Elevhälsa läsåret 2025/2026\n\n"
        "HT: 12/9, 10/10, 14/11, 12/12\n"
        "VT: 6/2, 13/3, 15/5\n\n"
        "Alla träffar är fredagar kl. 9–12.\n\nHälsningar\nErik"
    )
    result = parse_meeting_dates(body, date(2025, 8, 20))

    assert [found.date for found in result.dates] == [
        date(2025, 9, 12),
        date(2025, 10, 10),
        date(2025, 11, 14),
        date(2025, 12, 12),
        date(2026, 2, 6),
        date(2026, 3, 13),
        date(2026, 5, 15),
    ]


def test_several_dates_per_line_with_separate_places() -> None:
    body = "Träffar VT 2026: 6/2 i Skövde, 13/3 i Lidköping och 15/5 kl. 13-16 i Mariestad"
    result = parse_meeting_dates(body, date(2025, 12, 1))

    assert [(found.date, found.start, found.place) for found in result.dates] == [
        (date(2026, 2, 6), None, "Skövde"),
        (date(2026, 3, 13), None, "Lidköping"),
        (date(2026, 5, 15), time(13), "Mariestad"),
    ]


def test_place_and_time_lines_under_a_single_date() -> None:
    body = "Nästa nätverksträff:\nFredag 14 mars 2025\nTid: 9.00–12.00\nPlats: Skara Folkhögskola\n\nVälkomna!"
    result = parse_meeting_dates(body, date(2025, 2, 1))

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == [
        (date(2025, 3, 14), time(9), time(12), "Skara Folkhögskola"),
    ]


def test_place_line_far_below_a_date_is_not_its_place() -> None:
    body = "Fredag 14 mars 2025\nVi ska prata om betyg.\nTa med underlag.\nOch fika.\nPlats: Skara"
    result = parse_meeting_dates(body, date(2025, 2, 1))

    assert result.dates[0].place is None


def test_outlook_table_as_text_uses_the_place_column() -> None:
    body = (
        "Datum | Tid | Tema | Plats\n"
        "fredag 12 september 2025 | 09.00–12.00 | Uppstart | Stadshuset, Skövde\n"
        "fredag 10 oktober 2025 | 13:00-16:00 | Betyg | Kavelbro, Lidköping\n"
        "fredag 14 november 2025 | 9-12 | Digitalisering | \n"
    )
    result = parse_meeting_dates(body, date(2025, 6, 1))

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == [
        (date(2025, 9, 12), time(9), time(12), "Stadshuset, Skövde"),
        (date(2025, 10, 10), time(13), time(16), "Kavelbro, Lidköping"),
        (date(2025, 11, 14), time(9), time(12), None),  # "9-12" alone in the "Tid" column
    ]


def test_outlook_table_without_heading_row_takes_a_single_left_over_cell_as_place() -> None:
    body = "12/9\t09.00–12.00\tStadshuset\n10/10 | 13:00-16:00 | Betyg | Kavelbro\n"
    result = parse_meeting_dates(body, date(2025, 6, 1))

    assert [found.place for found in result.dates] == ["Stadshuset", None]


def test_quoted_reply_signature_and_forward_headers_are_not_meetings() -> None:
    body = (
        "Hej, här är våra datum.\n"
        "Fredag 12 september 2025 kl. 9-12\n"
        "\n"
        "Mvh\n"
        "Anna Svensson\n"
        "Rektor, Skövde kommun, möte 1/10 bokat\n"
        "\n"
        "Från: Utbildning Skaraborg <utbildning@skaraborg.se>\n"
        "Skickat: den 10 mars 2025 14:32\n"
        "Till: Anna Svensson <anna.svensson@skovde.se>\n"
        "Ämne: Påminnelse: mötesdatum HT 2025\n"
        "\n"
        "Hej! Skicka era datum senast 31/3.\n"
        "> Vi ses 14 mars\n"
    )
    result = parse_meeting_dates(body, date(2025, 3, 20))

    assert [found.date for found in result.dates] == [date(2025, 9, 12)]


def test_forwarded_mail_with_dates_after_the_forwarders_signature() -> None:
    body = (
        "Vidarebefordrar datumen från Tibro.\n\n"
        "Hälsningar\nLena\n\n"
        "-----Ursprungligt meddelande-----\n"
        "Från: Per Persson <per.persson@tibro.se>\n"
        "Skickat: den 3 juni 2025 09:12\n"
        "Ämne: Mötesdatum Vux HT 2025\n"
        "\n"
        "Datum: 11/9 och 16/10 kl 13-16 i Tibro\n"
    )
    result = parse_meeting_dates(body, date(2025, 6, 4))

    assert [(found.date, found.start, found.place) for found in result.dates] == [
        (date(2025, 9, 11), time(13), "Tibro"),
        (date(2025, 10, 16), time(13), "Tibro"),
    ]


def test_duplicates_merge_and_keep_the_details_of_either_mention() -> None:
    body = "Vi ses 12/9!\n\nDatum: fredag 12 september 2025 kl. 9-12 i Skara\nPåminnelse: 12/9."
    result = parse_meeting_dates(body, date(2025, 6, 1))

    assert len(result.dates) == 1
    assert (result.dates[0].start, result.dates[0].place) == (time(9), "Skara")


def test_dates_come_out_sorted() -> None:
    result = parse_meeting_dates("15/5\n6/2\n13/3", date(2025, 12, 1))

    assert [found.date for found in result.dates] == [date(2026, 2, 6), date(2026, 3, 13), date(2026, 5, 15)]


# --- a time or place stated once for every date ------------------------------------------------------


def _described(text: str) -> list[tuple[date, time | None, time | None, str | None]]:
    return [
        (found.date, found.start, found.end, found.place) for found in parse_meeting_dates(text, BODY_CONTEXT).dates
    ]


def test_time_and_place_lines_apply_to_every_date() -> None:
    text = "Våra träffar HT 2025:\n12/9\n10/10\n14/11\nTid: 13.00–16.00\nPlats: Stadshuset, Skövde"

    assert _described(text) == [
        (date(2025, 9, 12), time(13), time(16), "Stadshuset, Skövde"),
        (date(2025, 10, 10), time(13), time(16), "Stadshuset, Skövde"),
        (date(2025, 11, 14), time(13), time(16), "Stadshuset, Skövde"),
    ]


def test_a_sentence_for_all_meetings_gives_their_time_and_place() -> None:
    text = "Datum HT 2025: 12/9, 10/10 och 14/11.\nAlla träffar är kl. 9–12 på Kunskapens hus i Lidköping."

    described = _described(text)

    assert [row[0] for row in described] == [date(2025, 9, 12), date(2025, 10, 10), date(2025, 11, 14)]
    assert {(row[1], row[2]) for row in described} == {(time(9), time(12))}
    assert {row[3] for row in described} == {"Kunskapens hus i Lidköping"}


def test_a_time_line_belongs_to_the_date_just_above_it_and_keeps_a_dates_own_time() -> None:
    text = "12/9 kl. 8.30–11\n10/10\nTid: 13.00–16.00"

    assert _described(text) == [
        (date(2025, 9, 12), time(8, 30), time(11), None),
        (date(2025, 10, 10), time(13), time(16), None),
    ]


def test_two_different_general_times_fill_in_nothing() -> None:
    # Contradicting statements for all meetings: no time is guessed.
    text = "Datum HT 2025: 12/9 och 10/10.\nAlla träffar börjar kl. 9.\nSamtliga träffar börjar kl. 13."

    described = _described(text)

    assert [row[0] for row in described] == [date(2025, 9, 12), date(2025, 10, 10)]
    assert {(row[1], row[2]) for row in described} == {(None, None)}


def test_a_general_place_does_not_replace_a_dates_own_place() -> None:
    text = "Datum HT 2025: 12/9 i Falköping och 10/10.\nAlla träffar är kl. 9–12 på Stadshuset i Skövde."

    described = _described(text)

    assert [row[3] for row in described] == ["Falköping", None]
    assert {(row[1], row[2]) for row in described} == {(time(9), time(12))}


def test_a_statement_far_from_the_dates_is_not_applied_to_them() -> None:
    text = (
        "Datum HT 2025: 12/9 och 10/10.\nVälkomna!\nMer information kommer.\nVi bjuder på fika.\n"
        "Alla träffar på skolan börjar kl. 8."
    )

    assert {(row[1], row[2]) for row in _described(text)} == {(None, None)}


# --- a pasted table's week, weekday and date; meetings held online --------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "problem"),
    [
        # b1_037: an HTML table (vecka | dag | tid | plats) pasted as text with runs of spaces.
        ("VT 2026:\nv. 7  fredag 13/2  kl. 9–12  Falköping", (date(2026, 2, 13), time(9), time(12), "Falköping"), None),
        ("v. 7 | torsdag | 13/2 | 9.00–12.00 | Skara", (date(2025, 2, 13), time(9), time(12), "Skara"), None),
        ("vecka 38 fredag 19 september kl 13, Hjo", (date(2025, 9, 19), time(13), None, "Hjo"), None),
        # The week and the date disagree: the date stands, as written, but the doubt is a problem for a person.
        ("v. 8  fredag 13/2 2026  kl. 9–12  Falköping", (date(2026, 2, 13), time(9), time(12), "Falköping"), "vecka 7"),
        # b1_010: a lower-case online place after a bare week (the weekday is stated once for all).
        (
            "Alla fredagar kl 13-15.30:\nv. 50 digitalt (Teams)",
            (date(2025, 12, 12), time(13), time(15, 30), "digitalt (Teams)"),
            None,
        ),  # fmt: skip
        ("12/9 kl 9-12 via Teams", (date(2025, 9, 12), time(9), time(12), "via Teams"), None),
        ("12/9 kl 9-12 digitalt", (date(2025, 9, 12), time(9), time(12), "digitalt"), None),
        ("12/9 kl 9-12 zoom", (date(2025, 9, 12), time(9), time(12), "zoom"), None),
        # Lower-case words that are not an online place stay unread.
        ("12/9 kl 9-12 digitalt om vi inte hittar en lokal", (date(2025, 9, 12), time(9), time(12), None), None),
        ("12/9 kl 9-12 teamsmöte om ekonomi", (date(2025, 9, 12), time(9), time(12), None), None),
    ],
)
def test_table_rows_and_online_places(text: str, expected: tuple[object, ...], problem: str | None) -> None:
    result = parse_meeting_dates(text, BODY_CONTEXT if "2026" in text or "v. 50" in text else date(2025, 2, 1))

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == [expected]
    if problem is None:
        assert not result.problems
    else:
        assert any(problem in p for p in result.problems), result.problems


def test_a_table_rows_week_cell_that_disagrees_with_its_date_is_a_problem() -> None:
    result = parse_meeting_dates("v. 8 | fredag | 13/2 | 9.00–12.00 | Skara", date(2025, 2, 1))

    assert [found.date for found in result.dates] == [date(2025, 2, 13)]
    assert any("vecka 7" in problem for problem in result.problems), result.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # b3_036: an Excel week table pasted as text; the week and the weekday in cells of their own, "9–12" alone.
        ("Vecka | Dag | Tid | Plats\nv. 5 | fredag | 9–12 | Lärcentrum Mariestad",
         [(date(2026, 1, 30), time(9), time(12), "Lärcentrum Mariestad")]),
        # b3_011: a Word table under a "Vecka" heading whose week cells are bare numbers.
        ("Vecka | Dag | Tid | Plats\n6 | torsdag | 8.30–11.45 | Stadshuset Mariestad\n12 | torsdag | kl 13–15.30 | Teams",
         [(date(2026, 2, 5), time(8, 30), time(11, 45), "Stadshuset Mariestad"),
          (date(2026, 3, 19), time(13), time(15, 30), "Teams")]),
        # Without a "Vecka" heading a bare number is not a week.
        ("Nr | Dag | Tid | Plats\n6 | torsdag | 8.30–11.45 | Stadshuset Mariestad", []),
    ],
)  # fmt: skip
def test_week_tables(text: str, expected: list[tuple[object, ...]]) -> None:
    result = parse_meeting_dates(text, date(2025, 12, 1))

    assert [(found.date, found.start, found.end, found.place) for found in result.dates] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # b4_026: "fredagar kl. 9-12" above the dates states the time for all of them.
        ("Datum VT 26, fredagar kl. 9-12:\nfre 16/1\nfre 13/2\nPlats: Teams",
         [(date(2026, 1, 16), time(9), time(12), "Teams"), (date(2026, 2, 13), time(9), time(12), "Teams")]),
        # b4_011: "Plats för alla träffarna:" with the place on the line below.
        ("fredag 23/1 kl. 13-16\nfredag 6/3 kl. 13-16\nPlats för alla träffarna:\nKommunalförbundet, Skövde",
         [(date(2026, 1, 23), time(13), time(16), "Kommunalförbundet, Skövde"),
          (date(2026, 3, 6), time(13), time(16), "Kommunalförbundet, Skövde")]),
    ],
)  # fmt: skip
def test_a_time_or_place_stated_for_all_in_other_words(text: str, expected: list[tuple[object, ...]]) -> None:
    assert [
        (found.date, found.start, found.end, found.place)
        for found in parse_meeting_dates(text, date(2025, 12, 1)).dates
    ] == expected


def test_the_look_ahead_in_front_of_each_date_form_changes_no_match() -> None:
    """dates._form puts a look-ahead for its first characters in front of each form (speed only): over the text of
    every mail under tests/ and some odd cases, each form finds exactly what it finds without it."""
    import re
    from pathlib import Path

    from mailbot.understand import dates as dates_module
    from mailbot.understand.decode import parse_mail

    texts = ["ſöndag 14 mars", "FREDAG v. 12", "Tors 3/4", "den 14:e    september 2025", "KVecka 12 fredag",
             "\u0661\u0664/3 2025", "Lördagen den 5.4.25", "ONS 2025-04-09", "vecka 7, på fredagen"]  # fmt: skip
    for path in sorted(Path(__file__).resolve().parent.parent.rglob("*.eml")):
        mail = parse_mail(path.read_bytes())
        texts += [mail.subject, mail.body_text, mail.quoted_text]
    compared = 0
    for kind, pattern in dates_module._DATE_PATTERNS:
        guard = re.match(r"\(\?=\[[^\]]+\]\)\(\?:(.*)\)\Z", pattern.pattern, re.S)
        if guard is None:
            continue
        bare = re.compile(guard.group(1), pattern.flags)
        compared += 1
        for text in texts:
            with_guard = [(m.span(), m.groupdict()) for m in pattern.finditer(text)]
            assert with_guard == [(m.span(), m.groupdict()) for m in bare.finditer(text)], (kind, text[:200])
    assert compared == 7
    assert len(texts) > 600
