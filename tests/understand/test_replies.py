"""A reply to one of our reminders that says nothing changes is registered as a reply, not put in review."""

import pytest

from mailbot.understand.pipeline import MEMBER_CHANGE_REQUEST, SHARED_LINK, _own_text, _says_nothing_changes


@pytest.mark.parametrize(
    ("body", "nothing_changes"),
    [
        ("Hej! Inga ändringar från förra året, listan gäller som den är.\nKarin", True),
        ("Hej, förteckningen gäller fortfarande. /Maria", True),
        ("Listan är oförändrad sedan i fjol.", True),
        ("Samma lista som förra året gäller.", True),
        ("Inget har ändrats hos oss.\n\nFrån: utbildning@skaraborg.se\nÄmne: Påminnelse", True),
        # A change named beside it, or nothing said about changes at all: a person looks.
        ("Inga ändringar utom att Lisa Berg slutar i juni.", False),
        ("Listan gäller som den är, men Per Ek är ny från Tibro.", False),
        ("Inga ändringar, förutom att mötet i maj flyttas.", False),
        ("Tack, vi återkommer med listan.", False),
        ("Hej!\n\nDen 10 jan. 2025 skrev utbildning@skaraborg.se:\n> Inga ändringar?", False),
        ("> listan gäller som den är", False),
    ],
)
def test_a_reply_says_nothing_changes(body: str, nothing_changes: bool) -> None:
    assert _says_nothing_changes(body) is nothing_changes


@pytest.mark.parametrize(
    ("body", "asks"),
    [
        ("Hej! Jag ersätter Malin Larsson i rektorsnätverket. Stryk henne och lägg till mig, josefin.ek@hjo.se.", True),
        ("Kan ni ta bort mig från listan? Jag har bytt tjänst.", True),
        ("Per Ek är ny ledamot för Tibro från januari.", True),
        ("Jag slutar i nätverket efter sommaren.", True),
        ("Tack för en bra träff!", False),
        ("Hej!\n\nFrån: lisa@hjo.se\nStryk henne och lägg till mig", False),
    ],
)
def test_a_change_to_the_member_list_asked_for_in_words(body: str, asks: bool) -> None:
    assert bool(MEMBER_CHANGE_REQUEST.search(_own_text(body))) is asks


@pytest.mark.parametrize(
    ("body", "is_link"),
    [
        ('Johan Lindberg har delat en fil med dig\n"Minnesanteckningar SKIS.pdf"\nÖppna: https://x.example/s/1', True),
        ("Anna shared a file with you: https://contoso.sharepoint.com/x", True),
        ("Minnesanteckningar SKIS 14/3\nNärvarande: Anna (Skövde)\n1. Inledning", False),
    ],
)
def test_a_shared_document_link_is_not_minutes(body: str, is_link: bool) -> None:
    assert bool(SHARED_LINK.search(body)) is is_link
