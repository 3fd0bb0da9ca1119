"""config/networks.toml and config/municipalities.toml: the shipped files load, bad files say where and what."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from registry.config import ConfigError, Registry, load_registry
from registry.domain import Sender
from registry.paths import config_dir


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture
def tmp_config(tmp_path: Path) -> Path:
    """A copy of the shipped config/ to edit."""
    target = tmp_path / "config"
    target.mkdir()
    for name in ("networks.toml", "municipalities.toml"):
        shutil.copy(config_dir() / name, target / name)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- the shipped configuration --------------------------------------------------------------------


def test_the_shipped_config_has_the_five_networks(registry: Registry) -> None:
    assert [n.key for n in registry.networks] == ["skis", "grundskola", "elevhalsa", "introduktion", "vux"]
    assert [n.min_meetings_per_year for n in registry.networks] == [4, 4, 4, 6, 6]
    assert {n.key: n.meeting_weekday for n in registry.networks} == {
        "skis": "friday", "grundskola": None, "elevhalsa": "friday", "introduktion": None, "vux": None,
    }  # fmt: skip


def test_every_network_names_its_seed_and_quotes_its_obligations(registry: Registry) -> None:
    seeds = [n.seed for n in registry.networks]
    assert all(re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", seed) for seed in seeds), seeds
    assert len(set(seeds)) == 5
    for network in registry.networks:
        assert network.name and network.aliases
        for obligation in ("member_list", "meeting_dates", "meeting_count", "minutes"):
            assert network.quote(obligation), (network.key, obligation)
        for deliverable in network.deliverables:
            assert deliverable.quote and deliverable.title


def test_the_shipped_obligations(registry: Registry) -> None:
    skis = registry.network("skis")
    assert skis.all_municipalities_represented and skis.yearly_commission_revision
    assert skis.list_and_dates_sent_by is Sender.PRESIDIUM
    assert registry.network("grundskola").list_and_dates_sent_by is Sender.SECRETARY
    assert registry.network("grundskola").minutes_name == "protokoll"
    assert skis.minutes_name == "minnesanteckningar"
    assert [n.key for n in registry.networks if n.all_municipalities_represented] == ["skis"]
    assert [n.key for n in registry.networks if n.yearly_commission_revision] == ["skis", "elevhalsa"]
    assert len(registry.network("vux").deliverables) == 6
    assert registry.network("introduktion").deliverables[0].due == date(2023, 12, 31)
    for network in registry.networks:  # the federation's default deadlines
        assert network.deadlines.member_list == "01-31"
        assert network.deadlines.meeting_dates == "01-31"
        assert network.deadlines.minutes_days == 14
        assert network.deadlines.accept_from_previous_year == "11-01"


def test_aliases_people_use(registry: Registry) -> None:
    aliases = {alias.casefold() for n in registry.networks for alias in n.aliases}
    for alias in ("SKIS", "skolutvecklingsnätverket", "rektorsnätverket", "elevhälsonätverket", "IM-nätverket",
                  "Vux-nätverket"):  # fmt: skip
        assert alias.casefold() in aliases


def test_unknown_network_key(registry: Registry) -> None:
    with pytest.raises(KeyError, match="unknown network 'nope'.*skis"):
        registry.network("nope")


def test_fifteen_municipalities(registry: Registry) -> None:
    assert len(registry.municipalities) == 15
    assert {"Skövde", "Falköping", "Götene", "Lidköping", "Mariestad", "Hjo"} <= set(
        registry.municipality_index().names
    )
    assert all(m.domains for m in registry.municipalities)


# --- a sixth network is a config edit ----------------------------------------------------------------

SIXTH = """
[networks.gymnasie]
name = "Gymnasieskolan"
seed = "005_0123456789abcdef.txt"
aliases = ["gymnasienätverket"]
min_meetings_per_year = 5
meeting_weekday = "tuesday"
list_and_dates_sent_by = "secretary"
minutes_name = "protokoll"

[networks.gymnasie.deadlines]
minutes_days = 21

[networks.gymnasie.quotes]
member_list = "Sekreteraren skickar förteckningen."
meeting_dates = "Sekreteraren skickar datum."
meeting_count = "Minst 5 möten per år."
meeting_weekday = "Möten på tisdagar."
minutes = "Protokoll skickas in."
"""


def test_a_sixth_network_loads_with_no_code_change(tmp_config: Path) -> None:
    with (tmp_config / "networks.toml").open("a", encoding="utf-8") as handle:
        handle.write(SIXTH)
    registry = load_registry(tmp_config)
    assert len(registry.networks) == 6
    sixth = registry.network("gymnasie")
    assert (sixth.min_meetings_per_year, sixth.meeting_weekday) == (5, "tuesday")
    assert sixth.deadlines.minutes_days == 21
    assert sixth.deadlines.member_list == "01-31"  # the defaults still apply

    from registry.facts import NetworkFacts
    from registry.rules import evaluate

    findings = evaluate(sixth, NetworkFacts(), date(2025, 2, 15), registry.municipality_index().names)
    assert {f.network for f in findings} == {"gymnasie"}
    assert [f.obligation.value for f in findings] == ["member_list", "meeting_dates", "meeting_count",
                                                      "meeting_weekday"]  # fmt: skip


# --- invalid configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "what"),
    [
        ('min_meetings_per_year = 4\nmeeting_weekday = "friday"', 'min_meetings_per_year = 4\nmeeting_weekday = "fredag"',
         "networks.skis.meeting_weekday", "friday"),
        ("min_meetings_per_year = 4\n", "min_meetings_per_year = -1\n", "networks.skis.min_meetings_per_year",
         "greater than or equal to 0"),
        ('minutes_name = "minnesanteckningar"\n', 'minutes_name = "minnesanteckningar"\ncolour = "blue"\n',
         "networks.skis.colour", "Extra inputs are not permitted"),
        ('meeting_weekday = "Minst 4 möten per år på fredagar."\n', "", "networks.skis",
         "quotes missing for obligations: meeting_weekday"),
        ('member_list = "01-31"', 'member_list = "13-01"', "defaults.deadlines.member_list", "pattern"),
        ('list_and_dates_sent_by = "presidium"', 'list_and_dates_sent_by = "ordförande"',
         "networks.skis.list_and_dates_sent_by", "presidium"),
        ("[networks.skis]\n", "[networks.Skis]\n", "networks.Skis.key", "lower-case"),
        ('name = "Skolutveckling i Skaraborg (SKIS)"\n', "", "networks.skis.name", "Field required"),
    ],
)  # fmt: skip
def test_invalid_networks_name_the_file_and_the_key(tmp_config: Path, old: str, new: str, key: str, what: str) -> None:
    path = tmp_config / "networks.toml"
    edit(path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_config)
    message = str(caught.value)
    assert str(path) in message
    assert f"{key}:" in message, message
    assert what in message, message


def test_a_bad_month_day_in_a_networks_own_deadlines(tmp_config: Path) -> None:
    path = tmp_config / "networks.toml"
    edit(path, "[networks.grundskola.quotes]\n",
         '[networks.grundskola.deadlines]\nmember_list = "13-01"\n\n[networks.grundskola.quotes]\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_config)
    message = str(caught.value)
    assert str(path) in message
    assert "networks.grundskola.deadlines.member_list:" in message, message


def test_a_negative_minutes_deadline(tmp_config: Path) -> None:
    edit(tmp_config / "networks.toml", "minutes_days = 14", "minutes_days = -3")
    with pytest.raises(ConfigError, match=r"defaults\.deadlines\.minutes_days: .*greater than or equal to 0"):
        load_registry(tmp_config)


def test_invalid_toml(tmp_config: Path) -> None:
    path = tmp_config / "networks.toml"
    edit(path, "[networks.skis]\n", "[networks.skis\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid TOML"):
        load_registry(tmp_config)


def test_a_missing_file(tmp_config: Path) -> None:
    (tmp_config / "municipalities.toml").unlink()
    with pytest.raises(ConfigError, match=r"municipalities\.toml: file not found"):
        load_registry(tmp_config)


def test_no_networks(tmp_config: Path) -> None:
    (tmp_config / "networks.toml").write_text("[defaults.deadlines]\nminutes_days = 14\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"networks\.toml: no \[networks\.<key>\] tables"):
        load_registry(tmp_config)


def test_an_invalid_municipality(tmp_config: Path) -> None:
    path = tmp_config / "municipalities.toml"
    edit(path, 'domains = ["essunga.se"]\n', "")
    with pytest.raises(ConfigError) as caught:
        load_registry(tmp_config)
    assert f"{path}: municipality[0].domains: Field required" in str(caught.value)


# --- municipality matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Skövde", "Skövde"),
        ("Skovde", "Skövde"),
        ("SKÖVDE KOMMUN", "Skövde"),
        ("Falkopings kommun", "Falköping"),
        ("Falköpings kommun", "Falköping"),
        ("Götene kommun", "Götene"),
        ("Gotene", "Götene"),
        ("  Lidköping. ", "Lidköping"),
        ("Barn- och utbildningsförvaltningen, Skövde kommun", "Skövde"),
        ("Stockholm", None),
        ("Skövdeborg", None),
        ("", None),
        (None, None),
    ],
)
def test_match_name(registry: Registry, text: str | None, expected: str | None) -> None:
    assert registry.municipality_index().match_name(text) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("anna.svensson@skovde.se", "Skövde"),
        ("Anna.Svensson@SKOVDE.SE", "Skövde"),
        ("bo@bou.skovde.se", "Skövde"),
        ("bo@a.b.falkoping.se>", "Falköping"),
        ("cecilia@gotene.se", "Götene"),
        ("utbildning@skaraborg.se", None),  # the federation is no municipality
        ("someone@gmail.com", None),
        ("someone@notskovde.se", None),
        ("not-an-address", None),
        (None, None),
    ],
)
def test_match_domain(registry: Registry, email: str | None, expected: str | None) -> None:
    assert registry.municipality_index().match_domain(email) == expected


def test_find_all(registry: Registry) -> None:
    index = registry.municipality_index()
    assert index.find_all("Närvarande: Hjo, Skovde och Falköpings kommun") == ("Falköping", "Hjo", "Skövde")
    assert index.find_all("ingen kommun här") == ()
    assert index.federation_domains == ("skaraborg.se",)


def test_a_first_name_is_not_a_municipality() -> None:
    from registry.config import load_registry
    from registry.paths import config_dir

    index = load_registry(config_dir()).municipality_index()
    # "Mariestad" less a "stad" suffix is "Marie": a person named Marie is not from Mariestad.
    assert index.match_name("Marie") is None
    assert index.match_name("Mariestad") == "Mariestad" and index.match_name("Skövde stad") == "Skövde"
