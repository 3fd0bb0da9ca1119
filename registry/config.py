"""The networks and municipalities as configuration (config/networks.toml, municipalities.toml).

Validated on load; an error names the file, the key and what is wrong. Never any I/O but reading
the two files; the loaded values are frozen.
"""

import functools
import hashlib
import logging
import os
import pickle
import re
import tomllib
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.domain import Sender
from registry.errors import ExpectedError

log = logging.getLogger("registry.config")

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


class ConfigError(ExpectedError):
    """A configuration file is missing or invalid; the message says where and what."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Deliverable(_Frozen):
    key: str
    title: str  # Swedish, as in the commission
    due: date
    keywords: tuple[str, ...] = ()  # words in subject/file name that identify it
    quote: str  # the sentence of the commission it comes from


def month_day(value: str, year: int) -> date:
    """The date of a "MM-DD" setting in `year` (29 February falls back to the 28th)."""
    month, day = (int(part) for part in value.split("-"))
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28)


class Deadlines(_Frozen):
    member_list: MonthDay = "01-31"  # member list for a calendar year, by this day of that year
    meeting_dates: MonthDay = "01-31"
    minutes_days: int = Field(14, ge=0, le=365)  # minutes within N days of the meeting
    commission_revision: MonthDay = "12-31"
    # A list or dates sent from this day of the previous year count for the coming year.
    accept_from_previous_year: MonthDay = "11-01"
    # Until this day, the status also shows how the previous calendar year closed.
    previous_year_visible_until: MonthDay = "03-31"
    # Minutes of a network that publishes them are on the public site within N days of their arrival.
    publication_days: int = Field(7, ge=0, le=365)


class Publication(_Frozen):
    """How a network's minutes reach the public site (only for `minutes_published_on_web` networks)."""

    # required: each set of minutes waits until a person approves it (`registry publish --approve`);
    # auto: published with the next build.
    approval: Literal["required", "auto"] = "required"


class Network(_Frozen):
    key: str
    name: str
    seed: str  # the commission document (file in shared/seeds)
    aliases: tuple[str, ...]
    min_meetings_per_year: int = Field(ge=0, le=52)
    meeting_weekday: Weekday | None = None
    list_and_dates_sent_by: Sender
    minutes_name: str  # "protokoll" or "minnesanteckningar"
    minutes_published_on_web: bool = False
    publication: Publication = Publication()
    purpose: str = ""  # the commission's purpose in one Swedish sentence (shown on the public site)
    all_municipalities_represented: bool = False
    yearly_commission_revision: bool = False
    deliverables: tuple[Deliverable, ...] = ()
    deadlines: Deadlines = Deadlines()
    fallback_contact: str | None = None  # where reminders go when no member list is known
    school_chief: str | None = None  # address of the linked school chief, if known
    quotes: dict[str, str]  # obligation -> the sentence of the commission it comes from

    @field_validator("key")
    @classmethod
    def _key_is_slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
            raise ValueError("a network key is lower-case letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _every_obligation_quoted(self) -> "Network":
        needed = {"member_list", "meeting_dates", "meeting_count", "minutes"}
        if self.meeting_weekday:
            needed.add("meeting_weekday")
        if self.all_municipalities_represented:
            needed.add("representation")
        if self.yearly_commission_revision:
            needed.add("commission_revision")
        missing = sorted(needed - set(self.quotes))
        if missing:
            raise ValueError(f"quotes missing for obligations: {', '.join(missing)}")
        return self

    def quote(self, obligation: str) -> str:
        return self.quotes.get(obligation, "")


class Municipality(_Frozen):
    name: str
    domains: tuple[str, ...]
    variants: tuple[str, ...] = ()


class _CombiningMarks(dict[int, int | None]):
    """str.translate table that deletes combining marks (filled lazily: one unicodedata look-up per code point)."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        self[code] = value
        return value


_COMBINING = _CombiningMarks()
_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower case, å/ä/ö and accents folded, whitespace collapsed: for matching names people type.

    Cached: the understanding folds the same body, lines and names many times per mail."""
    text = text.casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(_COMBINING)
    return _SPACES.sub(" ", text).strip()


_MUNICIPALITY_SUFFIX = re.compile(r"\s+(kommuns?|stad|kommunforbund)$")  # "Mariestad" is not "Marie" + stad


class MunicipalityIndex:
    """Finds the canonical municipality for a name ("Skovde", "Falkopings kommun") or a mail domain."""

    def __init__(self, municipalities: tuple[Municipality, ...], federation_domains: tuple[str, ...] = ()):
        self.municipalities = municipalities
        self.names: tuple[str, ...] = tuple(m.name for m in municipalities)
        self.federation_domains = tuple(d.lower() for d in federation_domains)
        self._by_name: dict[str, str] = {}
        self._by_domain: dict[str, str] = {}
        for m in municipalities:
            for variant in (m.name, *m.variants):
                self._by_name[self._key(variant)] = m.name
            for domain in m.domains:
                self._by_domain[domain.lower()] = m.name
        # Every variant in one pattern: it tells at once whether a text names any municipality at all (the
        # understanding asks this of every word of a member list or an attendance line, and most name none).
        variants = sorted(self._by_name, key=len, reverse=True)
        self._any = re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, variants)) + r")(?![a-z])")
        self._answers: dict[str, str | None] = {}  # match_name's answers, the same words come back in list after list

    @staticmethod
    def _key(text: str) -> str:
        folded = fold(text).strip(" .,;:-")
        return _MUNICIPALITY_SUFFIX.sub("", folded)

    def match_name(self, text: str | None) -> str | None:
        """The canonical name for `text`, or None (also for an empty text)."""
        if not text or not text.strip():
            return None
        if text in self._answers:
            return self._answers[text]
        key = self._key(text)
        answer = self._by_name.get(key)
        if answer is None and self._any.search(folded := fold(text)):
            # "Barn- och utbildningsförvaltningen, Skövde kommun": a known name as a whole word (the first variant
            # in configuration order that occurs).
            answer = next(
                (name for variant_key, name in self._by_name.items()
                 if re.search(rf"(?<![a-z]){re.escape(variant_key)}(?![a-z])", folded)),
                None,
            )  # fmt: skip
        if len(self._answers) >= 4096:
            self._answers.clear()
        self._answers[text] = answer
        return answer

    def find_all(self, text: str) -> tuple[str, ...]:
        """Every municipality named anywhere in `text` (whole words), sorted, each once."""
        folded = fold(text)
        if not self._any.search(folded):
            return ()
        found = {
            name
            for variant_key, name in self._by_name.items()
            if re.search(rf"(?<![a-z]){re.escape(variant_key)}(?![a-z])", folded)
        }
        return tuple(sorted(found))

    def match_domain(self, email: str | None) -> str | None:
        """The municipality of a mail address by its domain (also sub-domains), or None."""
        if not email or "@" not in email:
            return None
        domain = email.rsplit("@", 1)[1].lower().strip(">")
        while domain:
            if domain in self._by_domain:
                return self._by_domain[domain]
            if "." not in domain:
                return None
            domain = domain.split(".", 1)[1]
        return None


class Registry(_Frozen):
    """Everything config/networks.toml and config/municipalities.toml say."""

    networks: tuple[Network, ...]
    municipalities: tuple[Municipality, ...]
    federation_domains: tuple[str, ...] = ("skaraborg.se",)

    def network(self, key: str) -> Network:
        for n in self.networks:
            if n.key == key:
                return n
        keys = [n.key for n in self.networks]
        known = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
        raise KeyError(f"unknown network {key!r} (known: {known})")

    def municipality_index(self) -> MunicipalityIndex:
        return MunicipalityIndex(self.municipalities, self.federation_domains)


def _parse_toml(path: Path, content: bytes) -> dict:
    try:
        return tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def _describe(path: Path, error: ValidationError, prefix: str = "") -> ConfigError:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        lines.append(f"{path}: {location}: {item['msg']}")
    return ConfigError("\n".join(lines))


# A configuration this large (hundreds of networks) is cached, validated, as a pickle keyed by the files' content
# and this module's source: parsing 1.5 MB of TOML for 1,000 networks takes 0.3-0.5 s of every command's start.
CACHE_THRESHOLD_BYTES = 100_000


def cache_dir() -> Path:
    """$MAILBOT_CACHE_DIR, else $XDG_CACHE_HOME/mailbot, else ~/.cache/mailbot."""
    if explicit := os.environ.get("MAILBOT_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mailbot"


def _cache_path(contents: list[bytes]) -> Path:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for content in contents:
        digest.update(len(content).to_bytes(8, "big") + content)
    return cache_dir() / f"registry-{digest.hexdigest()[:32]}.pickle"


def load_registry(config_dir: Path) -> Registry:
    """Load and validate networks.toml and municipalities.toml from `config_dir` (cached when large)."""
    networks_path = config_dir / "networks.toml"
    municipalities_path = config_dir / "municipalities.toml"
    contents = [_read_bytes(networks_path), _read_bytes(municipalities_path)]
    if len(contents[0]) < CACHE_THRESHOLD_BYTES:
        return _parse_registry(networks_path, municipalities_path, contents)
    cached = _cache_path(contents)
    try:
        loaded = pickle.loads(cached.read_bytes())
        if isinstance(loaded, Registry):
            return loaded
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass  # no cache yet, or an unreadable one: parse
    registry = _parse_registry(networks_path, municipalities_path, contents)
    try:  # a cache that cannot be written (a read-only home under systemd) only costs time
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(registry, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(cached)
    except OSError as error:
        log.debug("configuration cache not written: %s", error)
    return registry


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None


def _parse_registry(networks_path: Path, municipalities_path: Path, contents: list[bytes]) -> Registry:
    raw_networks = _parse_toml(networks_path, contents[0])
    raw_municipalities = _parse_toml(municipalities_path, contents[1])

    defaults = raw_networks.get("defaults", {})
    try:
        default_deadlines = Deadlines(**defaults.get("deadlines", {}))
    except ValidationError as error:
        raise _describe(networks_path, error, "defaults.deadlines") from None
    networks = []
    for key, table in raw_networks.get("networks", {}).items():
        table = dict(table)
        try:
            deadlines = Deadlines(**{**default_deadlines.model_dump(), **table.pop("deadlines", {})})
        except ValidationError as error:
            raise _describe(networks_path, error, f"networks.{key}.deadlines") from None
        except TypeError as error:
            raise ConfigError(f"{networks_path}: networks.{key}.deadlines: {error}") from None
        try:
            publication = Publication(**{**defaults.get("publication", {}), **table.pop("publication", {})})
        except ValidationError as error:
            raise _describe(networks_path, error, f"networks.{key}.publication") from None
        except TypeError as error:
            raise ConfigError(f"{networks_path}: networks.{key}.publication: {error}") from None
        try:
            networks.append(Network(key=key, deadlines=deadlines, publication=publication, **table))
        except ValidationError as error:
            raise _describe(networks_path, error, f"networks.{key}") from None
        except TypeError as error:
            raise ConfigError(f"{networks_path}: networks.{key}: {error}") from None
    if not networks:
        raise ConfigError(f"{networks_path}: no [networks.<key>] tables")

    municipalities = []
    for index, table in enumerate(raw_municipalities.get("municipality", [])):
        try:
            municipalities.append(Municipality(**table))
        except ValidationError as error:
            raise _describe(municipalities_path, error, f"municipality[{index}]") from None
    if not municipalities:
        raise ConfigError(f"{municipalities_path}: no [[municipality]] entries")
    federation = tuple(raw_municipalities.get("federation_domains", ["skaraborg.se"]))
    return Registry(networks=tuple(networks), municipalities=tuple(municipalities), federation_domains=federation)
