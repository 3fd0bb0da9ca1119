"""One mail, several networks: headed sections give each network its own dates; other mixtures are unclear."""

from datetime import date

import pytest

from mailbot.understand.pipeline import network_sections
from registry.config import load_registry
from registry.paths import config_dir

NETWORKS = load_registry(config_dir()).networks
DAY = date(2025, 6, 10)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Hej!\nHöstens träffar:\nSKIS-nätverket:\n12/9 kl. 9–12, Skövde\nElevhälsonätverket:\n26/9 kl. 13, Tibro",
            {"skis": ["12/9"], "elevhalsa": ["26/9"]},
        ),
        # Headings without a colon, a term in the heading, a section written twice, a signature naming a network.
        (
            "Vux HT 2025\n- 12/9 Lidköping\nIM-nätverket HT 2025\n- 19/9 Skara\nVux\n- 7/11 Mariestad\n"
            "Med vänliga hälsningar\nStefan\nOrdförande Vux-nätverket",
            {"vux": ["12/9", "7/11"], "introduktion": ["19/9"]},
        ),
        # One network's section only, or a second heading without dates: no sections (the mail is read as usual).
        ("SKIS:\n12/9 Skövde\n14/11 Hjo", {}),
        ("SKIS:\n12/9 Skövde\nElevhälsa:\nDatum kommer senare", {}),
        # A date before the first heading: whose is it? Not split (choose_network and review decide).
        ("Vi ses 5/9 i Skara.\nSKIS:\n12/9 Skövde\nElevhälsa:\n26/9 Tibro", {}),
        # Network names in sentences are not headings.
        ("SKIS träffas 12/9 i Skövde.\nElevhälsa träffas 26/9 i Tibro.", {}),
        # Quoted mail below the reply is not read.
        ("SKIS:\n12/9 Skövde\nFrån: Anna Svensson\nElevhälsa:\n26/9 Tibro", {}),
    ],
)
def test_network_sections(body: str, expected: dict[str, list[str]]) -> None:
    _preamble, sections = network_sections(body, NETWORKS, DAY)

    found = {key: [line.strip("- ").split()[0] for line in text.splitlines() if line.strip()] for key, text in sections}
    assert found == expected


def test_a_sender_in_one_of_the_named_networks_settles_it_but_the_others_are_kept() -> None:
    from mailbot.understand.classify import choose_network
    from mailbot.understand.types import ParsedMail

    mail = ParsedMail(None, None, (), "Höstens datum", None, "anna.svensson@skovde.se", (), None, (),
                      "SKIS träffas 12/9 i Skövde.\nElevhälsa träffas 26/9 i Tibro.")  # fmt: skip
    choice = choose_network(mail, NETWORKS, [], "", None, ["skis"])

    assert (choice.network, choice.also_named) == ("skis", ("elevhalsa",))
