"""The public site of the networks' minutes (`registry publish`): from plain values to the files of a static site.

Pure: no database, no clock, no file system (the templates are read through Jinja2's loader). The pages are
Swedish HTML with inline CSS, no scripts and no external assets; the feeds are Atom (RFC 4287). Every address
depends only on the network key and the meeting date, so a rebuild never moves a page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from registry.paths import templates_dir
from registry.swedish import long_date, plural

# What a document's media type is called on the download link, and the extension of its stable file name.
DOCUMENT_KINDS = {
    "application/pdf": ("PDF", ".pdf"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("Word", ".docx"),
    "application/msword": ("Word", ".doc"),
    "application/vnd.oasis.opendocument.text": ("OpenDocument", ".odt"),
    "application/rtf": ("RTF", ".rtf"),
    "text/plain": ("text", ".txt"),
}
MARKER = ".mailbot-site"  # in every build: `registry publish` only ever replaces a directory that holds one


@dataclass(frozen=True)
class PublishedMinutes:
    """One set of minutes on the site."""

    minutes_id: int
    meeting_date: date
    filename: str  # the original file name (shown, never used as an address)
    media_type: str
    text: str  # the document's text (redacted by `registry forget` where it named a person)
    document: bytes | None  # the original; None when only the text may be published
    published_at: datetime  # the first build that put it on the site (UTC)


@dataclass(frozen=True)
class SiteMeeting:
    date: date
    start: time | None
    place: str | None
    cancelled: bool
    held: bool
    minutes: PublishedMinutes | None = None
    minutes_received: bool = False  # minutes are on file (published or not)


@dataclass(frozen=True)
class SiteNetwork:
    key: str
    name: str
    purpose: str
    minutes_name: str  # "minnesanteckningar" or "protokoll"
    meetings: tuple[SiteMeeting, ...]

    @property
    def published(self) -> tuple[SiteMeeting, ...]:
        return tuple(m for m in self.meetings if m.minutes is not None)


@dataclass(frozen=True)
class SiteContent:
    networks: tuple[SiteNetwork, ...]
    base_url: str  # absolute address of the site's root, ending in "/" (for the feeds)
    tag_authority: str  # "utbildningskaraborg.se,2026": the Atom ids are tag: URIs (RFC 4151) under it
    built_at: datetime  # UTC; the feeds' <updated> when they hold no entry
    tz: ZoneInfo


def page_path(network_key: str, meeting_date: date) -> str:
    return f"{network_key}/{meeting_date.isoformat()}.html"


def document_path(network_key: str, minutes: PublishedMinutes) -> str:
    extension = DOCUMENT_KINDS.get(minutes.media_type, ("", PurePosixPath(minutes.filename).suffix.lower()))[1]
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", extension or ""):
        extension = ".bin"
    return f"{network_key}/{minutes.meeting_date.isoformat()}{extension}"


# --- the minutes' text as structured HTML -------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "list" or "paragraph"
    lines: tuple[str, ...]


_BULLET = re.compile(r"^\s*(?:[•·▪●◦*]|[-–—](?=\s))\s*")
_SECTION = re.compile(r"^(?:§\s*\d+|\d{1,2}[.)]\s+\S)")
_LIST_HEADINGS = {"närvarande", "frånvarande", "deltagare", "dagordning", "närvarande kommuner", "anmält förhinder"}


def minutes_blocks(text: str) -> tuple[Block, ...]:
    """The text of a set of minutes as headings, lists and paragraphs: "§ 1 Inledning" and "Närvarande" become
    headings, bulleted lines (and the lines under "Närvarande") a list, the rest paragraphs. The first line
    (the document's own title) is left out: the page's heading says the same."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if lines:
        lines = lines[1:]
    blocks: list[Block] = []
    items: list[str] = []
    in_list_section = False

    def close_list() -> None:
        if items:
            blocks.append(Block("list", tuple(items)))
            items.clear()

    for line in lines:
        bare = line.rstrip(":").casefold()
        if bare in _LIST_HEADINGS or (_SECTION.match(line) and len(line) <= 80):
            close_list()
            blocks.append(Block("heading", (line.rstrip(":"),)))
            in_list_section = bare in _LIST_HEADINGS
            continue
        if _BULLET.match(line):
            items.append(_BULLET.sub("", line))
            continue
        if in_list_section and len(line) <= 80 and not line.endswith("."):
            items.append(line)
            continue
        close_list()
        in_list_section = False
        blocks.append(Block("paragraph", (line,)))
    close_list()
    return tuple(blocks)


# --- rendering -----------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def environment(directory: str | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(directory or str(templates_dir())),
        autoescape=True,  # HTML and Atom alike
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["long_date"] = long_date
    env.globals["plural"] = plural
    return env


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} byte"
    if count < 1024 * 1024:
        return f"{round(count / 1024)} kB"
    return f"{count / (1024 * 1024):.1f} MB".replace(".", ",")


def _atom_time(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(meeting: SiteMeeting) -> str:
    text = long_date(meeting.date, weekday=True)
    return f"{text} kl. {meeting.start:%H.%M}" if meeting.start else text


def _entries(content: SiteContent, networks: Iterable[SiteNetwork]) -> list[dict[str, object]]:
    entries = []
    for network in networks:
        for meeting in network.published:
            minutes = meeting.minutes
            assert minutes is not None
            path = page_path(network.key, meeting.date)
            where = f", {meeting.place}" if meeting.place else ""
            entries.append(
                {
                    "id": f"tag:{content.tag_authority}:{path.removesuffix('.html')}",
                    "title": f"{network.minutes_name.capitalize()} från {network.name}, {long_date(meeting.date)}",
                    "summary": f"{network.minutes_name.capitalize()} från nätverksträffen "
                    f"{long_date(meeting.date, weekday=True)}{where}.",
                    "url": content.base_url + path,
                    "document_url": content.base_url + document_path(network.key, minutes)
                    if minutes.document
                    else None,
                    "document_type": minutes.media_type,
                    "document_size": len(minutes.document) if minutes.document else 0,
                    "updated": _atom_time(minutes.published_at),
                    "sort": (minutes.published_at, network.key, meeting.date),
                    "network": network.name,
                }
            )
    entries.sort(key=lambda entry: entry["sort"], reverse=True)  # type: ignore[arg-type,return-value]
    return entries


def _feed(env: Environment, content: SiteContent, path: str, title: str, networks: Iterable[SiteNetwork],
          page: str) -> bytes:  # fmt: skip
    entries = _entries(content, networks)
    updated = entries[0]["updated"] if entries else _atom_time(content.built_at)
    text = env.get_template("site/feed.xml.j2").render(
        feed_id=f"tag:{content.tag_authority}:{path.removesuffix('.xml')}",
        title=title,
        self_url=content.base_url + path,
        page_url=content.base_url + page,
        updated=updated,
        entries=entries,
    )
    return text.encode("utf-8")


def render_site(content: SiteContent, directory: str | None = None) -> dict[str, bytes]:
    """Every file of the site, by its path relative to the site's root."""
    env = environment(directory)
    files: dict[str, bytes] = {}

    def page(path: str, template: str, **context: object) -> None:
        depth = path.count("/")
        files[path] = env.get_template(template).render(root="../" * depth, **context).encode("utf-8")

    page("index.html", "site/index.html.j2", networks=content.networks)
    files["feed.xml"] = _feed(env, content, "feed.xml", "Nätverkens minnesanteckningar – Utbildning Skaraborg",
                              content.networks, "index.html")  # fmt: skip
    for network in content.networks:
        years: dict[int, list[SiteMeeting]] = {}
        for meeting in sorted(network.meetings, key=lambda m: m.date, reverse=True):
            years.setdefault(meeting.date.year, []).append(meeting)
        page(f"{network.key}/index.html", "site/network.html.j2", network=network, years=years, when=_when,
             page_path=lambda day, key=network.key: page_path(key, day).split("/", 1)[1])  # fmt: skip
        files[f"{network.key}/feed.xml"] = _feed(env, content, f"{network.key}/feed.xml",
                                                 f"{network.minutes_name.capitalize()} – {network.name}", [network],
                                                 f"{network.key}/index.html")  # fmt: skip
        for meeting in network.published:
            minutes = meeting.minutes
            assert minutes is not None
            download = None
            if minutes.document is not None:
                path = document_path(network.key, minutes)
                files[path] = minutes.document
                kind = DOCUMENT_KINDS.get(minutes.media_type, ("fil", ""))[0]
                download = {"href": path.split("/", 1)[1], "kind": kind, "size": _size(len(minutes.document)),
                            "filename": minutes.filename}  # fmt: skip
            page(page_path(network.key, meeting.date), "site/minutes.html.j2", network=network, meeting=meeting,
                 minutes=minutes, blocks=minutes_blocks(minutes.text), download=download, when=_when(meeting),
                 published=minutes.published_at.astimezone(content.tz).date())  # fmt: skip
    files[MARKER] = b"Built by `registry publish` (mailbot). The whole directory is replaced by the next build.\n"
    return files
