"""Publication of minutes on the public site: the approval queue, the atomic build of the site, the upload.

The site is built from the registry alone (registry/site.py renders it), so a rebuild after `registry forget`
leaves nothing that names the person. A build never changes the tree the web server reads: it writes a new tree
beside it and swaps a symlink (`rename(2)` is atomic), so a reader sees the old site or the new one, never half.

    var/publish                  -> .publish.builds/20251121T080000000000Z-1a2b3c   (the symlink to serve)
    var/.publish.builds/<build>/ index.html, feed.xml, <network>/index.html, <network>/<date>.html, ...
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from registry.config import Network, Registry
from registry.db import row_of
from registry.domain import MeetingStatus, PublicationDecision
from registry.errors import ExpectedError
from registry.models import Document, Meeting, Minutes, MinutesPublication
from registry.models_ops import SiteState
from registry.site import MARKER, PublishedMinutes, SiteContent, SiteMeeting, SiteNetwork, page_path, render_site

if TYPE_CHECKING:
    from collections.abc import Callable

    from mailbot.settings import PublicationSettings
    from registry.runtime import Runtime

log = logging.getLogger("registry.publication")
SITE = "site"  # the one SiteState row


class PublicationError(ExpectedError):
    """A minutes ID that cannot be decided on, or a directory that cannot be published into."""


class UploadError(ExpectedError):
    """The upload command failed, timed out or was not found; the message says which (never the command line)."""


def publishing_networks(registry: Registry) -> dict[str, Network]:
    return {n.key: n for n in registry.networks if n.minutes_published_on_web}


# --- the approval queue -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingMinutes:
    id: int
    network: str
    meeting_date: date
    filename: str
    received: datetime

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "network": self.network, "meeting_date": self.meeting_date.isoformat(),
                "filename": self.filename, "received": self.received.isoformat()}  # fmt: skip


def pending(session: Session, registry: Registry) -> list[PendingMinutes]:
    """Minutes of networks with `publication.approval = "required"` that no person has decided on yet."""
    required = [k for k, n in publishing_networks(registry).items() if n.publication.approval == "required"]
    if not required:
        return []
    rows = session.exec(
        select(Minutes.id, Minutes.network_key, Minutes.meeting_date, Document.filename, Minutes.received,
               MinutesPublication.decision)
        .join(Document, col(Document.id) == col(Minutes.document_id))
        .join(MinutesPublication, col(MinutesPublication.minutes_id) == col(Minutes.id), isouter=True)
        .where(col(Minutes.network_key).in_(required))
        .order_by(col(Minutes.meeting_date), col(Minutes.id))
    ).all()  # fmt: skip
    return [
        PendingMinutes(id=minutes_id, network=key, meeting_date=day, filename=filename, received=received)
        for minutes_id, key, day, filename, received, decision in rows
        if decision in (None, PublicationDecision.PENDING.value)
    ]


def decide(session: Session, registry: Registry, ids: list[int], decision: PublicationDecision, now: datetime,
           note: str | None = None) -> list[int]:  # fmt: skip
    """Record a person's decision (approved or withheld) on each minutes ID, in the caller's transaction."""
    publishing = publishing_networks(registry)
    for minutes_id in ids:
        minutes = session.get(Minutes, minutes_id)
        if minutes is None:
            raise PublicationError(f"no minutes with id {minutes_id} (see `registry publish --pending`)")
        if minutes.network_key not in publishing:
            raise PublicationError(
                f"minutes {minutes_id} belong to {minutes.network_key}, whose commission does not ask for publication"
            )
        row = row_of(
            session, MinutesPublication, minutes_id=minutes_id, network_key=minutes.network_key, decision=decision.value
        )
        row.decision = decision.value
        row.decided_at = now
        row.note = note
        session.add(row)
    session.flush()
    return ids


def has_unpublished(session: Session, registry: Registry) -> bool:
    """Whether a build would publish something new: minutes approved (or of an `auto` network) not yet built."""
    for key, network in publishing_networks(registry).items():
        rows = session.exec(
            select(Minutes.id, MinutesPublication.decision, MinutesPublication.published_at)
            .join(MinutesPublication, col(MinutesPublication.minutes_id) == col(Minutes.id), isouter=True)
            .where(Minutes.network_key == key)
        ).all()
        if any(published is None and _eligible(network, decision) for _, decision, published in rows):
            return True
    return False


def _eligible(network: Network, decision: str | None) -> bool:
    if decision == PublicationDecision.WITHHELD.value:
        return False
    if decision in (PublicationDecision.APPROVED.value, PublicationDecision.AUTO.value):
        return True
    return network.publication.approval == "auto"


# --- what goes on the site -----------------------------------------------------------------------------------


def gather(session: Session, registry: Registry, settings: PublicationSettings, now: datetime,
           tz: ZoneInfo) -> tuple[SiteContent, list[int]]:  # fmt: skip
    """The site's content from the registry, and the minutes IDs this build publishes for the first time
    (newer minutes of the same meeting replace older ones on its page; both count as published)."""
    today = now.astimezone(tz).date()
    networks = []
    first_time: list[int] = []
    for key, network in publishing_networks(registry).items():
        meetings = session.exec(select(Meeting).where(Meeting.network_key == key).order_by(col(Meeting.date))).all()
        rows = session.exec(
            select(Minutes, Document, MinutesPublication)
            .join(Document, col(Document.id) == col(Minutes.document_id))
            .join(MinutesPublication, col(MinutesPublication.minutes_id) == col(Minutes.id), isouter=True)
            .where(Minutes.network_key == key)
            .order_by(col(Minutes.received), col(Minutes.id))
        ).all()
        chosen: dict[int, PublishedMinutes] = {}  # meeting id -> the newest eligible minutes
        received = {minutes.meeting_id for minutes, _, _ in rows}
        for minutes, document, publication in rows:
            if not _eligible(network, publication.decision if publication else None):
                continue
            published_at = publication.published_at if publication and publication.published_at else now
            if publication is None or publication.published_at is None:
                first_time.append(minutes.id or 0)
            chosen[minutes.meeting_id] = PublishedMinutes(
                minutes_id=minutes.id or 0, meeting_date=minutes.meeting_date, filename=document.filename,
                media_type=document.media_type, text=document.text, document=document.content,
                published_at=published_at,
            )  # fmt: skip
        site_meetings = []
        for meeting in meetings:
            cancelled = meeting.status == MeetingStatus.CANCELLED.value
            published = chosen.get(meeting.id or 0)
            if cancelled and published is None and not meeting.announced:
                continue
            site_meetings.append(
                SiteMeeting(
                    date=meeting.date,
                    start=meeting.start,
                    place=meeting.place,
                    cancelled=cancelled,
                    held=not cancelled and meeting.date < today,
                    minutes=published,
                    minutes_received=meeting.id in received,
                )
            )
        networks.append(SiteNetwork(key=key, name=network.name, purpose=network.purpose,
                                    minutes_name=network.minutes_name, meetings=tuple(site_meetings)))  # fmt: skip
    content = SiteContent(networks=tuple(networks), base_url=settings.base_url, tag_authority=settings.tag_authority,
                          built_at=now, tz=tz)  # fmt: skip
    return content, first_time


@dataclass
class BuildReport:
    directory: Path
    build: Path  # the tree now in place
    files: int
    pages: list[str]
    published: dict[str, int]  # network -> minutes on the site
    first_time: list[int]  # minutes IDs published by this build for the first time
    upload_error: str | None = None
    uploaded: bool = False
    pending: int = 0
    removed_builds: int = field(default=0, repr=False)

    def as_json(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "build": str(self.build),
            "files": self.files,
            "pages": self.pages,
            "published": self.published,
            "first_time": self.first_time,
            "pending": self.pending,
            "uploaded": self.uploaded,
            "upload_error": self.upload_error,
        }


def build(engine: Engine, registry: Registry, settings: PublicationSettings, now: datetime, tz: ZoneInfo,
          out: Path | None = None, keep: int | None = None) -> BuildReport:  # fmt: skip
    """Build the site into `out` (default `publication.directory`) and swap it in; then note what it published.
    `keep`: how many earlier builds to keep beside it (default `publication.keep_builds`; 0 after a forget)."""
    directory = out or settings.directory
    with Session(engine) as session:
        content, first_time = gather(session, registry, settings, now, tz)
        waiting = len(pending(session, registry))
    files = render_site(content)
    target, removed = write_site(files, directory, now, settings.keep_builds if keep is None else keep)
    with Session(engine) as session:
        for minutes_id in first_time:
            minutes = session.get(Minutes, minutes_id)
            if minutes is None:
                continue
            row = row_of(session, MinutesPublication, minutes_id=minutes_id, network_key=minutes.network_key,
                         decision=PublicationDecision.AUTO.value)  # fmt: skip
            row.published_at = now
            session.add(row)
        state = row_of(session, SiteState, name=SITE)
        state.last_build = now
        state.build_id = target.name
        state.upload_pending = True
        session.add(state)
        session.commit()
    pages = sorted(path for path in files if path.endswith(".html"))
    report = BuildReport(
        directory=directory, build=target, files=len(files), pages=pages,
        published={n.key: len(n.published) for n in content.networks}, first_time=first_time, pending=waiting,
        removed_builds=removed,
    )  # fmt: skip
    log.info("publish: %d files -> %s (%d minutes published for the first time, %d waiting for approval)",
             report.files, target, len(first_time), waiting)  # fmt: skip
    return report


# --- the atomic swap -------------------------------------------------------------------------------------------


def builds_dir(directory: Path) -> Path:
    return directory.parent / f".{directory.name}.builds"


def write_site(files: dict[str, bytes], directory: Path, now: datetime, keep: int) -> tuple[Path, int]:
    """Write `files` as a new tree beside `directory` and make `directory` (a symlink) point at it atomically.

    A real directory in the way is replaced only if an earlier build left its marker in it (or it is empty):
    then it is moved aside first, the one moment a reader could find nothing there."""
    directory = directory.absolute()
    builds = builds_dir(directory)
    builds.mkdir(parents=True, exist_ok=True)
    name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(3)}"
    partial = builds / f"{name}.partial"
    for relative, data in sorted(files.items()):
        path = partial / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    target = builds / name
    partial.rename(target)
    link = builds / f"{name}.link"
    link.symlink_to(os.path.relpath(target, directory.parent))
    if directory.exists() and not directory.is_symlink():
        if not directory.is_dir() or (any(directory.iterdir()) and not (directory / MARKER).is_file()):
            shutil.rmtree(target)
            link.unlink()
            raise PublicationError(
                f"{directory} exists and was not built by `registry publish`; remove it or choose another --out"
            )
        directory.rename(builds / f"{name}.replaced")
    os.replace(link, directory)  # rename(2): the web server sees the old tree or the new one
    return target, _prune(builds, target, keep)


def _prune(builds: Path, current: Path, keep: int) -> int:
    """Delete all but the `keep` newest earlier builds (and leftovers of interrupted ones)."""
    earlier = sorted((p for p in builds.iterdir() if p != current), key=lambda p: p.name, reverse=True)
    complete = [p for p in earlier if p.is_dir() and not p.is_symlink() and "." not in p.name]
    doomed = complete[keep:] + [p for p in earlier if p not in complete]
    for path in doomed:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
    return len(doomed)


# --- the upload ------------------------------------------------------------------------------------------------


def upload_command(command: str, directory: Path) -> list[str]:
    """The upload's argument vector: `command` split like a shell would, "{dir}" replaced by the build's real
    directory (no shell ever runs it, so nothing in a path can become a second command)."""
    real = str(directory.resolve())
    return [word.replace("{dir}", real) for word in shlex.split(command)]


def upload(command: str, directory: Path, timeout: float) -> None:
    argv = upload_command(command, directory)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    except FileNotFoundError:
        raise UploadError(f"upload command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise UploadError(f"{argv[0]} did not finish the upload within {timeout:g} s") from None
    except OSError as error:
        raise UploadError(f"{argv[0]} could not be started: {error.strerror}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise UploadError(f"{argv[0]} failed (exit {done.returncode}): {last[:300]}")


@dataclass(frozen=True)
class UploadOutcome:
    ok: bool
    error: str | None
    failures: int  # failed uploads in a row (0 after a good one)
    alert_sent: bool  # the admin was already told about this streak
    streak_started: datetime | None  # the last good upload before the streak (the alert's key)


def upload_site(engine: Engine, settings: PublicationSettings, now: datetime,
                directory: Path | None = None) -> UploadOutcome | None:  # fmt: skip
    """Run the upload command on the site in place and record the outcome; None when none is configured."""
    if settings.upload_command is None:
        return None
    error = None
    try:
        upload(settings.upload_command, directory or settings.directory, settings.upload_timeout)
    except UploadError as failure:
        error = str(failure)
        log.error("publish: upload failed: %s", error)
    with Session(engine) as session:
        state = row_of(session, SiteState, name=SITE)
        before = state.last_upload
        if error is None:
            outcome = UploadOutcome(True, None, state.consecutive_failures, state.alert_sent, before)
            state.last_upload, state.upload_pending, state.consecutive_failures = now, False, 0
            state.last_error, state.alert_sent = None, False
        else:
            state.consecutive_failures += 1
            state.last_failure, state.last_error = now, error
            outcome = UploadOutcome(False, error, state.consecutive_failures, state.alert_sent, before)
        session.add(state)
        session.commit()
    return outcome


def mark_alert_sent(session: Session) -> None:
    state = session.get(SiteState, SITE)
    if state is not None:
        state.alert_sent = True
        session.add(state)


def site_state(session: Session) -> SiteState | None:
    return session.get(SiteState, SITE)


# --- data protection ------------------------------------------------------------------------------------------


def published_pages_naming(session: Session, names_them: Callable[[str], bool]) -> list[dict[str, object]]:
    """The published pages (and their downloads) whose text or file name names a person (`registry
    export-person`): `names_them` says whether a text does."""
    rows = session.exec(
        select(Minutes, Document, MinutesPublication)
        .join(Document, col(Document.id) == col(Minutes.document_id))
        .join(MinutesPublication, col(MinutesPublication.minutes_id) == col(Minutes.id))
        .where(col(MinutesPublication.published_at).is_not(None))
        .where(MinutesPublication.decision != PublicationDecision.WITHHELD.value)
        .order_by(col(Minutes.meeting_date), col(Minutes.id))
    ).all()
    return [
        {
            "minutes_id": minutes.id,
            "network": minutes.network_key,
            "meeting_date": minutes.meeting_date.isoformat(),
            "page": page_path(minutes.network_key, minutes.meeting_date),
            "document_published": document.content is not None,
            "published_at": publication.published_at.isoformat() if publication.published_at else None,
        }
        for minutes, document, publication in rows
        if names_them(document.text) or names_them(document.filename)
    ]


def site_exists(settings: PublicationSettings) -> bool:
    return settings.directory.is_symlink() or settings.directory.is_dir()


def publish_site(rt: Runtime, now: datetime, out: Path | None = None, do_upload: bool = True,
                 keep: int | None = None) -> BuildReport:  # fmt: skip
    """What `registry publish` (and `registry forget`) does: build, swap, then upload when configured (not for a
    build elsewhere with --out)."""
    settings = rt.settings.publication
    engine = rt.engine()
    report = build(engine, rt.registry, settings, now, rt.tz, out, keep)
    if do_upload and out is None:
        outcome = upload_site(engine, settings, now)
        if outcome is not None:
            report.uploaded, report.upload_error = outcome.ok, outcome.error
    return report
