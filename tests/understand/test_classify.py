"""Tests for mailbot.understand.classify's text matching."""

from __future__ import annotations

import pytest

from mailbot.understand.classify import _contains_word, aliases_in
from registry.config import fold, load_registry
from registry.paths import config_dir

NETWORKS = load_registry(config_dir()).networks


def _every_alias_searched(text: str) -> set[str]:
    """aliases_in as it was: every alias of every network searched on its own."""
    folded = fold(text)
    return {
        n.key for n in NETWORKS if any(_contains_word(folded, fold(alias)) for alias in (n.key, n.name, *n.aliases))
    }


def _lines() -> list[str]:
    lines = ["", "Hej!", "Datum för hösten", "SKIS:", "skiss", "Elevhälsa HT 2025", "elevhalsans datum", "2025-03-14"]
    for network in NETWORKS:
        for alias in (network.key, network.name, *network.aliases):
            lines += [
                alias,
                alias.upper(),
                f"{alias}s träff",
                f"Möte i {alias}:",
                f"x{alias}",
                f"{alias}2",
                f"({alias})",
            ]
    return lines


@pytest.mark.parametrize("text", _lines())
def test_aliases_in_finds_what_searching_every_alias_finds(text: str) -> None:
    assert aliases_in(text, NETWORKS) == _every_alias_searched(text)


def test_aliases_in_finds_a_network_by_its_name() -> None:
    network = NETWORKS[0]
    assert network.key in aliases_in(f"Möte i {network.name} på fredag", NETWORKS)
