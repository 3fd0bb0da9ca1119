"""Data protection: everything held about a person (export), and erasing them (forget).

`forget` keeps the facts (meetings, minutes, member counts per municipality) and their provenance ids,
and removes the person: their Person row, the link from their memberships, their address in the outbox,
every stored mail or document that names them (raw bytes purged, text redacted), and the sent-mail files of
the directory transport that name them. It never logs the address or the name: counts only.
"""

from __future__ import annotations

import email
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from email import policy
from email.message import Message
from pathlib import Path

from sqlalchemy import Engine, func, or_, text
from sqlmodel import Session, col, select

from registry.models import (
    BouncingAddress,
    DeliverableReceipt,
    Document,
    InboundMail,
    MailboxState,
    MemberList,
    Membership,
    Minutes,
    OutboundMail,
    Person,
    RunLog,
)
from registry.publication import published_pages_naming
from registry.retention import mark_purged

log = logging.getLogger("registry.privacy")
REDACTED = "[borttagen]"
REDACTED_ADDRESS = "borttagen@invalid"


def normalise(address: str) -> str:
    return address.strip().lower()


def person_export(session: Session, address: str) -> dict[str, object]:
    """Everything the registry holds about the person with this address, JSON-ready."""
    address = normalise(address)
    person = session.exec(select(Person).where(func.lower(Person.email) == address)).first()
    memberships = []
    if person is not None:
        for membership in session.exec(
            select(Membership).where(Membership.person_id == person.id).order_by(col(Membership.valid_from))
        ).all():
            memberships.append(
                {
                    "network": membership.network_key,
                    "role": membership.role,
                    "municipality": membership.municipality,
                    "valid_from": membership.valid_from.isoformat(),
                    "valid_to": membership.valid_to.isoformat() if membership.valid_to else None,
                    "member_list_id": membership.member_list_id,
                    "source_mail_id": membership.source_mail_id,
                }
            )
    inbound = session.exec(
        select(InboundMail).where(func.lower(InboundMail.from_address) == address).order_by(col(InboundMail.id))
    ).all()
    outbound = [
        mail
        for mail in session.exec(select(OutboundMail).order_by(col(OutboundMail.id))).all()
        if address in _addresses(mail.recipients) or address in _addresses(mail.cc)
    ]
    bounces = session.exec(select(BouncingAddress).where(func.lower(BouncingAddress.email) == address)).all()
    # What forget would purge or redact beyond their own mails: the same predicates as forget's.
    redactor = person_redactor(address, _names_of(session, address))
    named_documents, sources = _documents_and_sources_naming(session, redactor, person)
    from_ids = {mail.id for mail in inbound}
    naming = [
        mail
        for mail in session.exec(select(InboundMail).order_by(col(InboundMail.id))).all()
        if mail.id not in from_ids and _mail_names_them(mail, redactor, sources)
    ]
    outbound_ids = {mail.id for mail in outbound}
    outbound_naming = [
        mail
        for mail in session.exec(select(OutboundMail).order_by(col(OutboundMail.id))).all()
        if mail.id not in outbound_ids
        and any(redactor.found_in_text(getattr(mail, a, None)) for a in ("subject", "body_text", "body_html"))
    ]
    return {
        "email": address,
        "person": {"id": person.id, "email": person.email, "name": person.name} if person else None,
        "memberships": memberships,
        "mails_from": [
            {
                "id": mail.id,
                "subject": mail.subject,
                "received": mail.received.isoformat(),
                "status": mail.status,
                "network": mail.network_key,
                "kinds": [k for k in mail.kinds.split(",") if k],
            }
            for mail in inbound
        ],
        "mails_to": [
            {
                "id": mail.id,
                "subject": mail.subject,
                "kind": mail.kind,
                "state": mail.state,
                "network": mail.network_key,
                "created": mail.created.isoformat(),
                "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
                "as": "to" if address in _addresses(mail.recipients) else "cc",
            }
            for mail in outbound
        ],
        "review_items": [
            {
                "id": mail.id,
                "subject": mail.subject,
                "reason": mail.reason,
                "received": mail.received.isoformat(),
                "resolved_at": mail.resolved_at.isoformat() if mail.resolved_at else None,
                "resolution": mail.resolution,
            }
            for mail in inbound
            if mail.status == "review"
        ],
        "mails_naming": [
            {
                "id": mail.id,
                "subject": mail.subject,
                "received": mail.received.isoformat(),
                "status": mail.status,
                "network": mail.network_key,
            }
            for mail in naming
        ],  # fmt: skip
        "documents_naming": [
            {"id": doc.id, "filename": doc.filename, "source_mail_id": doc.source_mail_id} for doc in named_documents
        ],
        "outbox_mails_naming": [
            {"id": mail.id, "subject": mail.subject, "kind": mail.kind, "created": mail.created.isoformat()}
            for mail in outbound_naming
        ],
        "bouncing": [
            {"first_bounce": b.first_bounce.isoformat(), "last_bounce": b.last_bounce.isoformat()} for b in bounces
        ],
        # The pages of the public site (`registry publish`) whose minutes name them.
        "published_pages": published_pages_naming(session, redactor.found_in_text),
    }


def _addresses(field_value: str) -> list[str]:
    return [normalise(a) for a in field_value.split(",") if a.strip()]


@dataclass
class Redactor:
    """Finds and replaces a person's address and names in text and bytes (case-insensitive)."""

    address: str
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        needles = [self.address] + [n for n in self.names if n]
        needles = sorted({n.strip() for n in needles if len(n.strip()) >= 3}, key=len, reverse=True)
        self.needles = needles
        self._pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE) if needles else None
        # Names also as they may sit in headers or bodies: with flexible white space.
        self._loose = (
            re.compile("|".join(r"\s+".join(re.escape(p) for p in n.split()) for n in needles), re.IGNORECASE)
            if needles
            else None
        )

    def found_in_text(self, value: str | None) -> bool:
        return bool(value) and self._loose is not None and self._loose.search(value) is not None  # type: ignore[arg-type]

    def redact(self, value: str) -> str:
        if not value or self._loose is None:
            return value
        return self._loose.sub(REDACTED, value)

    def found_in_bytes(self, data: bytes | None) -> bool:
        if not data:
            return False
        lowered = data.lower()
        for needle in self.needles:
            for encoding in ("utf-8", "latin-1", "utf-16-le"):
                try:
                    if needle.lower().encode(encoding) in lowered:
                        return True
                except UnicodeEncodeError:
                    continue
        return self.found_in_text(_decoded_mail_text(data))


def _decoded_mail_text(raw: bytes) -> str:
    """The headers and text parts of a mail, decoded (encoded-words, base64, quoted-printable)."""
    try:
        message: Message = email.message_from_bytes(raw, policy=policy.default)
        pieces = [f"{k}: {v}" for k, v in message.items()]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                try:
                    pieces.append(part.get_content())  # type: ignore[attr-defined]
                except (LookupError, ValueError, AttributeError):
                    payload = part.get_payload(decode=True)
                    if isinstance(payload, bytes):
                        pieces.append(payload.decode("utf-8", "replace"))
            filename = part.get_filename()
            if filename:
                pieces.append(filename)
        return "\n".join(str(p) for p in pieces)
    except Exception:  # noqa: BLE001 - a mail that does not parse is only searched as bytes
        return ""


def _documents_and_sources_naming(
    session: Session, redactor: Redactor, person: Person | None
) -> tuple[list[Document], set[int]]:
    """The documents that name the person, and the mails whose original names them where a byte search cannot see
    it (a zipped .xlsx or .docx, a compressed PDF): the sources of their memberships and of those documents."""
    sources: set[int] = set()
    named_documents = [
        doc
        for doc in session.exec(select(Document)).all()
        if redactor.found_in_text(doc.text)
        or redactor.found_in_bytes(doc.content)
        or redactor.found_in_text(doc.filename)
    ]
    ids = [doc.id for doc in named_documents]
    sources.update(doc.source_mail_id for doc in named_documents)
    sources.update(session.exec(select(Minutes.source_mail_id).where(col(Minutes.document_id).in_(ids))).all())
    sources.update(
        session.exec(
            select(DeliverableReceipt.source_mail_id).where(col(DeliverableReceipt.document_id).in_(ids))
        ).all()
    )
    if person is not None:
        for membership in session.exec(select(Membership).where(Membership.person_id == person.id)).all():
            sources.add(membership.source_mail_id)
            member_list = session.get(MemberList, membership.member_list_id)
            if member_list is not None:
                sources.add(member_list.source_mail_id)
    return named_documents, sources


MAIL_TEXT_ATTRIBUTES = ("subject", "body_text", "from_name", "reason", "details", "resolution", "message_id")


def _raw_names_them(mail: InboundMail, redactor: Redactor, sources: set[int]) -> bool:
    return mail.raw is not None and (mail.id in sources or redactor.found_in_bytes(mail.raw))


def _mail_names_them(mail: InboundMail, redactor: Redactor, sources: set[int]) -> bool:
    """What forget purges or redacts in a mail: its original, one of its texts or its sender."""
    return (
        _raw_names_them(mail, redactor, sources)
        or any(redactor.found_in_text(getattr(mail, attribute)) for attribute in MAIL_TEXT_ATTRIBUTES)
        or redactor.found_in_text(mail.from_address)
    )


def forget(session: Session, address: str, today: date | None = None) -> Counter[str]:
    """Erase the person with this address in the caller's transaction; returns what was done (counts only).

    `today` dates the note left in each mail whose original was purged ("purged by forget on …")."""
    address = normalise(address)
    done: Counter[str] = Counter()
    person = session.exec(select(Person).where(func.lower(Person.email) == address)).first()
    from_them = session.exec(select(InboundMail).where(func.lower(InboundMail.from_address) == address)).all()
    redactor = person_redactor(address, _names_of(session, address))
    from_them_ids = {m.id for m in from_them}

    named_documents, sources_naming_them = _documents_and_sources_naming(session, redactor, person)

    # Memberships stay (counts per municipality and role), without the person.
    if person is not None:
        for membership in session.exec(select(Membership).where(Membership.person_id == person.id)).all():
            sources_naming_them.add(membership.source_mail_id)
            member_list = session.get(MemberList, membership.member_list_id)
            if member_list is not None:
                sources_naming_them.add(member_list.source_mail_id)
            membership.person_id = None
            done["memberships anonymised"] += 1
        session.flush()
        session.delete(person)
        done["person rows deleted"] += 1

    for bounce in session.exec(select(BouncingAddress).where(func.lower(BouncingAddress.email) == address)).all():
        session.delete(bounce)
        done["bouncing-address rows deleted"] += 1

    # Mails from them: the raw bytes go, the sender and the body are redacted; the row (and its facts) stays.
    for mail in from_them:
        if mail.raw is not None and today is not None:
            mail.details = mark_purged(mail.details, "forget", today)
        mail.raw = None
        mail.from_address = REDACTED
        mail.from_name = REDACTED
        mail.body_text = REDACTED
        done["mails from them purged"] += 1

    # Every other mail and document that names them.
    for mail in session.exec(select(InboundMail)).all():
        named = _raw_names_them(mail, redactor, sources_naming_them)
        if named:
            mail.raw = None
            if today is not None:
                mail.details = mark_purged(mail.details, "forget", today)
        touched = named
        for attribute in ("subject", "body_text", "from_name", "reason", "details", "resolution", "message_id"):
            value = getattr(mail, attribute)
            if isinstance(value, str) and redactor.found_in_text(value):
                setattr(mail, attribute, redactor.redact(value))
                touched = True
        if mail.from_address and redactor.found_in_text(mail.from_address):
            mail.from_address = REDACTED
            touched = True
        if touched and mail.id not in from_them_ids:
            done["mails naming them redacted"] += 1
    for doc in named_documents:  # the facts (minutes, deliverables) stay, their text redacted, the original gone
        doc.content = None
        doc.text = redactor.redact(doc.text)
        doc.filename = redactor.redact(doc.filename)
        done["documents redacted"] += 1
    for member_list in session.exec(select(MemberList)).all():
        if redactor.found_in_text(member_list.rejected_rows) or redactor.found_in_text(member_list.source):
            member_list.rejected_rows = redactor.redact(member_list.rejected_rows)
            member_list.source = redactor.redact(member_list.source)
            done["member lists redacted"] += 1

    # The outbox ledger: their address out of To and Cc, and out of every text. A mail addressed to them also
    # greets them by first name ("Hej Sofia!"), which the full-name search cannot see: that mail's texts are
    # redacted with the first names as well.
    greeted = person_redactor(address, [*redactor.names, *_first_names(redactor.names)])
    for out in session.exec(select(OutboundMail)).all():
        touched = False
        to_them = any(
            normalise(p) == address or redactor.found_in_text(p)
            for p in f"{out.recipients},{out.cc or ''}".split(",")
            if p.strip()
        )
        text_redactor = greeted if to_them else redactor
        for attribute in ("recipients", "cc"):
            value = getattr(out, attribute)
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if any(normalise(p) == address or redactor.found_in_text(p) for p in parts):
                setattr(
                    out,
                    attribute,
                    ",".join(REDACTED_ADDRESS if normalise(p) == address or redactor.found_in_text(p) else p
                             for p in parts),
                )  # fmt: skip
                touched = True
        for attribute in ("subject", "body_text", "body_html", "last_error", "in_reply_to"):
            value = getattr(out, attribute)
            if isinstance(value, str) and text_redactor.found_in_text(value):
                setattr(out, attribute, text_redactor.redact(value))
                touched = True
        # An attached file (the yearly report): a text one is redacted, any other kind dropped (its bytes may hold
        # the name in a form we cannot rewrite safely). getattr: the columns arrive with migration 0005.
        attachment = getattr(out, "attachment", None)
        if attachment is not None and text_redactor.found_in_bytes(attachment):
            redacted = None
            if str(getattr(out, "attachment_type", "") or "").startswith("text/"):
                redacted = text_redactor.redact(attachment.decode("utf-8", "replace")).encode("utf-8")
            out.attachment = None if redacted is None or text_redactor.found_in_bytes(redacted) else redacted
            touched = True
        if getattr(out, "attachment_name", None) and redactor.found_in_text(out.attachment_name):
            out.attachment_name = redactor.redact(out.attachment_name)
            touched = True
        if touched:
            done["outbox mails redacted"] += 1
    # Error texts of the passes may quote an address (a rejected recipient, say).
    for state in [*session.exec(select(MailboxState)).all(), *session.exec(select(RunLog)).all()]:
        if redactor.found_in_text(state.last_error):
            state.last_error = redactor.redact(state.last_error or "")
            done["error notes redacted"] += 1
    session.flush()
    return done


def _first_names(names: list[str]) -> list[str]:
    """The first word of each full name ("Sofia" of "Sofia Andersson"), as a greeting uses it."""
    return [name.split()[0] for name in names if len(name.split()) > 1]


def person_redactor(address: str, names: list[str]) -> Redactor:
    return Redactor(normalise(address), names)


def forget_in_outbox_directory(directory: Path, redactor: Redactor, dry_run: bool = False) -> int:
    """Delete the sent-mail files (.eml, and a half-written .tmp) in the directory transport's folder that name the
    person; returns how many. Deleted, not redacted: their name may sit base64-, QP- or RFC 2047-encoded anywhere in
    the bytes, and the outbox ledger (redacted) keeps the record of what was sent."""
    if not directory.is_dir():
        return 0
    deleted = 0
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix not in (".eml", ".tmp"):
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # sent and renamed, or removed, meanwhile
            continue
        if redactor.found_in_bytes(data):
            if not dry_run:
                path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def _names_of(session: Session, address: str) -> list[str]:
    """The names the person goes by in the registry (before forget removes them)."""
    names: set[str] = set()
    person = session.exec(select(Person).where(func.lower(Person.email) == address)).first()
    if person is not None and person.name:
        names.add(person.name)
    names.update(
        name
        for name in session.exec(
            select(InboundMail.from_name).where(func.lower(InboundMail.from_address) == address)
        ).all()
        if name
    )
    return sorted(names)


def _remaining(session: Session, address: str) -> int:
    """How many rows still mention the address (for the log; 0 after forget)."""
    pattern = f"%{address}%"
    return len(
        session.exec(
            select(InboundMail.id).where(
                or_(col(InboundMail.from_address).ilike(pattern), col(InboundMail.body_text).ilike(pattern))
            )
        ).all()
    )


def compact(engine: Engine) -> None:
    """After erasing or purging: rebuild the search index and the SQLite file so no freed page keeps the bytes.

    PostgreSQL: a plain VACUUM, so the old row versions are removed (their space is reused, not zeroed; WAL and
    backups keep them until they rotate)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM"))
        return
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        connection.execute("INSERT INTO search_index(search_index) VALUES ('optimize')")
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    engine.dispose()


def forget_person(
    engine: Engine,
    address: str,
    today: date | None = None,
    outbox_directory: Path | None = None,
    dry_run: bool = False,
) -> Counter[str]:
    """Forget in one transaction, then the sent-mail files in `outbox_directory` (the directory transport's, if
    any), then compact; logs counts only, never the address or the name. `dry_run` does the same work in a
    transaction it rolls back, so what it counts is exactly what forget would do."""
    with Session(engine) as session:
        names = _names_of(session, normalise(address))
        done = forget(session, address, today)
        left = _remaining(session, normalise(address))
        if dry_run:
            session.rollback()
        else:
            session.commit()
    if outbox_directory is not None:
        redactor = person_redactor(address, names)
        deleted = forget_in_outbox_directory(outbox_directory, redactor, dry_run=dry_run)
        if deleted:
            done["outbox files deleted"] += deleted
    if dry_run:
        return done
    compact(engine)
    for what, count in sorted(done.items()):
        log.info("forget: %s: %d", what, count)
    if left:
        log.warning("forget: %d mail rows still mention the address", left)
    return done
