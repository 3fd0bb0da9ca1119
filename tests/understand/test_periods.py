"""The period a mail names for its list or dates: terms, school years, "för 2026", in subject, file name or text."""

from __future__ import annotations

from datetime import date

import pytest

from mailbot.understand.periods import find_period, periods_in

SEPT = date(2025, 9, 15)
NOV = date(2025, 11, 20)


@pytest.mark.parametrize(
    ("text", "sent", "label", "start", "end"),
    [
        ("Medlemslista SKIS HT 2025", SEPT, "HT 2025", date(2025, 7, 1), date(2025, 12, 31)),
        ("Förteckning VT 2026", NOV, "VT 2026", date(2026, 1, 1), date(2026, 6, 30)),
        ("Mötesdatum VT-26", NOV, "VT 2026", date(2026, 1, 1), date(2026, 6, 30)),
        ("Listan gäller vårterminen", NOV, "VT 2026", date(2026, 1, 1), date(2026, 6, 30)),
        ("Listan gäller vårterminen", date(2025, 2, 1), "VT 2025", date(2025, 1, 1), date(2025, 6, 30)),
        ("deltagare under hösten 2025", SEPT, "HT 2025", date(2025, 7, 1), date(2025, 12, 31)),
        ("Medlemmar läsåret 2025/26", SEPT, "läsåret 2025/26", date(2025, 7, 1), date(2026, 6, 30)),
        ("läsår 2025-2026", SEPT, "läsåret 2025/26", date(2025, 7, 1), date(2026, 6, 30)),
        ("Medlemslista för 2026", NOV, "2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026 års medlemsförteckning", NOV, "2026", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_period_forms(text: str, sent: date, label: str, start: date, end: date):
    (period,) = periods_in(text, sent)
    assert (period.label, period.start, period.end) == (label, start, end)


def test_bare_year_counts_in_a_subject_but_not_in_running_text():
    assert [p.label for p in periods_in("Medlemslista SKIS 2026", NOV, bare_year=True)] == ["2026"]
    assert periods_in("Vi ses 2026 igen", NOV) == []


def test_a_date_is_not_a_period():
    assert periods_in("Medlemslista 2025-11-20", NOV, bare_year=True) == []


def test_subject_wins_over_the_text_that_mentions_next_year():
    found = find_period("Medlemslista SKIS HT 2025", ["SKIS medlemmar HT 2025.xlsx"],
                        "Listan för 2026 skickar vi i januari.", date(2025, 12, 3))  # fmt: skip
    assert found.period is not None and found.period.label == "HT 2025" and found.where == "subject"


def test_subject_and_file_name_that_disagree_are_a_conflict():
    found = find_period("Medlemslista HT 2025", ["medlemmar 2026.xlsx"], "", NOV)
    assert found.period is None
    assert found.conflict == "the subject names HT 2025 but the file name 2026"


def test_two_periods_in_the_text_alone_are_a_conflict():
    found = find_period("Medlemslista", [], "Listan gäller HT 2025. För VT 2026 kommer en ny.", NOV)
    assert found.period is None and "several periods" in (found.conflict or "")


def test_no_period_is_none():
    assert find_period("Medlemslista SKIS", ["lista.xlsx"], "Hej! Här är listan.", NOV).period is None


def test_a_text_the_quick_search_passes_over_names_no_period() -> None:
    """periods_in answers [] at once when _MAYBE_PERIOD finds nothing: then no pattern may match either."""
    import random

    from mailbot.understand.periods import _BARE_YEAR, _MAYBE_PERIOD, _TERMS

    generator = random.Random(5)
    pieces = ["HT", "ht", "Vt", "h", "t", "v", "-", " ", "/", "2025", "25", "20", "٢٠٢٥", "Hösten", "HÖSTEN", "hosten",
              "våren", "VÅREN", "vara", "svar", "termin", "höstterminen", "läsåret", "för", "års", "ſ", "K", "\n", "."]  # fmt: skip
    for _ in range(5000):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 8)))
        if _MAYBE_PERIOD.search(text) is None:
            assert not any(pattern.search(text) for _, pattern in _TERMS) and not _BARE_YEAR.search(text), text
