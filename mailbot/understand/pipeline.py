"""From a decoded mail and what the registry knows, what the mail says: network, kinds, and the facts.

Pure: the registry's knowledge comes in as a Context value; nothing is written, nothing is guessed.
When anything is unsure, the Understanding says `review` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import PurePath

from registry.config import Network
from registry.domain import MailKind, MailStatus, Role

from . import calendar as calendar_parser
from . import dates as date_parser
from .authentication import authenticate
from .changes import KnownMeeting, MeetingChange, find_changes
from .classify import (
    FORWARD_PREFIX,
    MINUTES_WORDS,
    REPLY_PREFIX,
    REVISION_WORDS,
    NetworkChoice,
    aliases_in,
    choose_network,
    has_any,
    is_auto_reply,
    is_bulk,
    is_reply_subject,
    kind_words,
    reply_to_own_mail,
)
from .context import Context, MinutesDocument, Understanding
from .documents import DAMAGED_PROBLEMS, extract_text, forget_opened_documents
from .members import parse_member_list
from .minutes import parse_minutes
from .periods import Period, find_period
from .types import Attachment, CalendarEvent, MeetingDate, MemberListResult, ParsedMail

# "jag hann inte avidentifiera punkt 1, kan ni kolla innan det läggs ut?": a person reads them first.
PUBLICATION_CHECK = re.compile(
    r"(?i)\b(avidentifi\w*|anonymiser\w*|innan\s+(?:det|de|den|ni)\s+(?:läggs\s+ut|publiceras|publicerar))"
)
UNRELATED_DOCUMENT = re.compile(
    r"(?i)\b(inbjudan|inbjudning|föreläsning|forelasning|presentation|bildspel|dagordning|agenda|program|affisch|"
    r"kallelse|anmälan|anmalan)\b"
)
# "Inga ändringar från förra året, listan gäller som den är": an answer to a reminder that changes nothing.
NOTHING_CHANGES = re.compile(
    r"(?i)\b(?:inga\s+(?:ändringar|förändringar)|inget\s+(?:har\s+)?(?:ändrats|förändrats)|oförändrad\w*|"
    r"(?:listan|förteckningen|datumen|den|de)\s+gäller\s+(?:som\s+(?:den|de)\s+är|fortfarande|än|oförändrad\w*)|"
    r"samma\s+(?:lista|förteckning|medlemmar|deltagare)\s+som)"
)
# ... unless the text also names a change ("inga ändringar utom att Lisa slutar").
SOME_CHANGE = re.compile(
    r"(?i)\b(?:utom|förutom|men|dock|undantag|ny|nya|nytt|slutar|slutat|tillkommer|tillkommit|byt\w*|ersätt\w*|"
    r"lägg\w*\s+till|ta\w*\s+bort|flytt\w*|inställ\w*|ändra\s)\b"
)
# "Jag ersätter Malin Larsson i nätverket. Stryk henne och lägg till mig": a change to the list asked for in words.
MEMBER_CHANGE_REQUEST = re.compile(
    r"(?i)\b(?:stryk\s+(?:mig|honom|henne|\w+\s+\w+)|ta\s+bort\s+(?:mig|honom|henne)|lägg\s+till\s+(?:mig|honom|henne)|"
    r"ersätter\s+[A-ZÅÄÖ]\w+|ny\s+(?:medlem|ledamot|representant|deltagare)\s+(?:i|för|från)|"
    r"(?:slutar|lämnar)\s+(?:i\s+)?(?:nätverket|gruppen))"
)
# "En ändring: träffen 20/3 blir på förmiddagen i stället": the time or place of a meeting on file changes.
CHANGE_WORDS = re.compile(
    r"(?i)\b(?:i\s*stället|istället|ändring|ändrad|ändrat|ändras|ny\s+tid|ny\s+plats|nytt\s+klockslag|ny\s+lokal|"
    r"byter\s+(?:tid|lokal|plats)|flyttar\s+(?:till|in))\b"
)
SHARED_LINK = re.compile(
    r"(?is)\b(?:har\s+delat|delade\s+en\s+fil|shared\s+(?:a\s+file|with\s+you)|vill\s+dela)\b.*\bhttps?://"
)
NEXT_MEETING = re.compile(r"\bnästa\s+(?:nätverks)?(?:träff|möte|mötet|träffen)\b", re.IGNORECASE)
CHANGING_KINDS = frozenset(
    {MailKind.MEMBER_LIST, MailKind.MEETING_DATES, MailKind.MEETING_INVITE, MailKind.MEETING_CANCEL, MailKind.MINUTES,
     MailKind.DELIVERABLE}
)  # fmt: skip
DOCUMENT_SUFFIXES = (".pdf", ".docx", ".doc", ".odt", ".rtf", ".txt")
TABLE_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".xls", ".ods")


def _suffix(name: str | None) -> str:
    return PurePath(name or "").suffix.lower()


def _is_admin(sender: str | None, ctx: Context) -> bool:
    if not sender:
        return False
    domain = sender.rsplit("@", 1)[-1]
    return sender in ctx.admin_addresses or any(domain == d or domain.endswith("." + d) for d in ctx.authorised_domains)


def _roles(sender: str | None, network: str, ctx: Context) -> set[Role]:
    return {r.role for r in ctx.memberships.get(sender or "", ()) if r.network == network}


def understand(mail: ParsedMail, ctx: Context, arrival: datetime) -> Understanding:
    """What `mail` says, decided with reasons; `arrival` is when it reached the mailbox (aware)."""
    try:
        return _understand(mail, ctx, arrival)
    finally:
        forget_opened_documents()  # what one mail's attachments opened is not kept for the next mail


def _understand(mail: ParsedMail, ctx: Context, arrival: datetime) -> Understanding:
    if not (mail.subject or mail.body_text.strip() or mail.attachments or mail.calendar_parts or mail.attached_mails):
        reason = "unreadable mail: " + ("; ".join(mail.defects) if mail.defects else "no subject, text or attachment")
        return Understanding(MailStatus.REVIEW, (MailKind.OTHER,), review_reason=reason, sender=mail.sender_email)
    if ctx.assigned_network is not None:
        return _understand_content(mail, ctx, arrival)
    # A delivery report first (it carries Auto-Submitted too), then a person's automatic reply, then bulk and
    # list mail, and last the weak automatic-reply signals newsletters also carry.
    if mail.is_delivery_report:
        return Understanding(
            MailStatus.IGNORED,
            (MailKind.BULK,),
            reasons=("delivery status report (RFC 3464)",),
            sender=mail.sender_email,
            bounced=mail.bounced_recipients,
        )
    if (why := is_auto_reply(mail, weak=False)) is not None:
        return Understanding(MailStatus.IGNORED, (MailKind.AUTO_REPLY,), reasons=(why,), sender=mail.sender_email)
    if (why := is_bulk(mail)) is not None:
        return Understanding(MailStatus.IGNORED, (MailKind.BULK,), reasons=(why,), sender=mail.sender_email)
    if (why := is_auto_reply(mail)) is not None:
        return Understanding(MailStatus.IGNORED, (MailKind.AUTO_REPLY,), reasons=(why,), sender=mail.sender_email)
    if mail.message_id and mail.message_id.lower().endswith("@" + ctx.own_domain.lower()):
        return Understanding(
            MailStatus.IGNORED, (MailKind.BULK,), reasons=("the product's own mail",), sender=mail.sender_email
        )
    return _understand_content(mail, ctx, arrival)


def _all_attachments(mail: ParsedMail) -> list[Attachment]:
    found = list(mail.attachments)
    for inner in mail.attached_mails:
        found.extend(inner.attachments)
    return found


def _understand_content(mail: ParsedMail, ctx: Context, arrival: datetime) -> Understanding:
    networks = ctx.registry.networks
    attachments = _all_attachments(mail)
    filenames = [a.filename for a in attachments if a.filename]
    sender = (
        mail.forwarded.sender_email if mail.forwarded and mail.forwarded.sender_email else None
    ) or mail.sender_email
    context_day = arrival.astimezone(ctx.tz).date()
    reasons: list[str] = []
    if sender != mail.sender_email:
        reasons.append(f"forwarded by {mail.sender_email}; the original sender {sender} counts")

    # Calendar invitations (RFC 5545 / 5546), also those inside attached mails.
    calendar_parts = list(mail.calendar_parts)
    for inner in mail.attached_mails:
        calendar_parts.extend(inner.calendar_parts)
    events: list[CalendarEvent] = []
    calendar_problems: list[str] = []
    for part in calendar_parts:
        result = calendar_parser.parse_calendar(part, ctx.tz)
        events.extend(result.events)
        calendar_problems.extend(result.problems)
    calendar_text = " ".join(f"{e.summary} {e.location or ''}" for e in events)

    is_reply, reply_network = reply_to_own_mail(mail, ctx.own_domain, ctx.own_networks)
    sender_networks = [r.network for r in ctx.memberships.get(sender or "", ())]
    if mail.sender_email != sender and not sender_networks:
        # A forward counts its original author's networks; the forwarder's only when the author is in none.
        sender_networks += [r.network for r in ctx.memberships.get(mail.sender_email or "", ())]
    if ctx.assigned_network is not None:
        choice = NetworkChoice(ctx.assigned_network, ("network assigned by a person in review",))
    elif ctx.section_network is not None:
        choice = NetworkChoice(
            ctx.section_network, (f"a headed section of the text names network {ctx.section_network}",)
        )
    else:
        choice = choose_network(mail, networks, filenames, calendar_text, reply_network, sender_networks)
    reasons.extend(choice.reasons)
    network = ctx.registry.network(choice.network) if choice.network else None
    if ctx.assigned_network is None and ctx.section_network is None and not events and not attachments:
        preamble, sections = network_sections(mail.body_text, networks, context_day)
        if len(sections) > 1:
            return _understand_sections(mail, ctx, arrival, preamble, sections, network.key if network else None)

    # `said`: what the subject and file names announce, which decides what to look for. `declared`: what the mail
    # itself claims to be, which makes a missing fact a problem. A reply's subject ("SV: Påminnelse: protokoll
    # saknas") names the mail it answers: it says where to look, but only the reply's file names declare anything.
    if ctx.assigned_kinds is not None:
        said = declared = set(ctx.assigned_kinds)
    else:
        said = kind_words(mail, filenames)
        declared = kind_words(mail, filenames, subject=False) if is_reply_subject(mail) else said
    kinds: set[MailKind] = set()
    problems: list[str] = []  # English review reasons
    # The period the mail names ("HT 2025" in the subject, "för 2026" in the text): it binds the list and dates.
    period_found = find_period("" if is_reply_subject(mail) else mail.subject or "", filenames, mail.body_text,
                               context_day)  # fmt: skip
    period = period_found.period
    period_heading = period.label if period is not None and period_found.where != "text" else None

    # 1. Invitations.
    if events:
        if any(e.cancelled for e in events):
            kinds.add(MailKind.MEETING_CANCEL)
        if any(not e.cancelled for e in events):
            kinds.add(MailKind.MEETING_INVITE)
    elif calendar_problems:
        problems.append("calendar invitation could not be read: " + "; ".join(calendar_problems))

    # 2. Deliverables and revised commissions (said in the subject or a file name).
    deliverable_key = deliverable_title = None
    deliverable_document = None
    said_text = f"{mail.subject} {' '.join(filenames)}"
    if network is not None:
        for deliverable in network.deliverables:
            if any(has_any(said_text, [word]) for word in deliverable.keywords) and has_any(
                said_text, ["rapport", "delrapport", "återrapport", "plan", deliverable.title]
            ):
                deliverable_key, deliverable_title = deliverable.key, deliverable.title
                break
        if deliverable_key is None and network.yearly_commission_revision and has_any(said_text, REVISION_WORDS):
            deliverable_key, deliverable_title = "commission_revision", "Reviderad uppdragsbeskrivning"
    if deliverable_key is not None:
        kinds.add(MailKind.DELIVERABLE)
        documents = [a for a in attachments if _suffix(a.filename) in DOCUMENT_SUFFIXES]
        deliverable_document = documents[0] if documents else None

    # 3. Member lists: tables in attachments always; lines in the body only when the mail says it is a list.
    member_list = None
    tabular = [a for a in attachments if _suffix(a.filename) in TABLE_SUFFIXES or _suffix(a.filename) == ".docx"]
    if MailKind.MEMBER_LIST in said or (tabular and MailKind.MINUTES not in said and deliverable_key is None):
        member_list = parse_member_list(
            tabular, mail.body_text if MailKind.MEMBER_LIST in said else "", ctx.municipalities
        )
        if member_list is not None and member_list.members:
            kinds.add(MailKind.MEMBER_LIST)
        elif MailKind.MEMBER_LIST in declared and not events and MailKind.MINUTES not in said:
            kinds.add(MailKind.MEMBER_LIST)
            if member_list is not None and member_list.rejected:
                problems.append(f"member list has no readable row ({len(member_list.rejected)} rows rejected)")
            else:
                problems.append(
                    "the mail says it is a member list but no list with names and e-mail addresses was found"
                )
            member_list = None

    # 4. Minutes: documents (or the body) when the mail says so, or a document that reads like minutes.
    minutes_documents: list[MinutesDocument] = []
    used = {id(a) for a in tabular} if MailKind.MEMBER_LIST in kinds else set()
    if deliverable_document is not None:
        used.add(id(deliverable_document))
    candidates = [a for a in attachments if id(a) not in used and _suffix(a.filename) in DOCUMENT_SUFFIXES]
    if MailKind.MINUTES in said or (candidates and not kinds and MailKind.MEETING_DATES not in said):
        minutes_documents, minutes_problems, has_document = _read_minutes(
            mail, candidates, ctx, context_day, said, MailKind.MINUTES in declared
        )
        # The kind is a fact too: minutes are what the mail holds only when a document (or the body) is there;
        # a subject saying "protokoll" over a damaged file or no file at all is a mail for a person ("other").
        if minutes_documents or (MailKind.MINUTES in declared and has_document):
            kinds.add(MailKind.MINUTES)
        if minutes_documents or MailKind.MINUTES in declared:
            problems.extend(minutes_problems)

    # 4b. Meetings moved or cancelled in the text ("flyttas till", "är inställt"); those sentences are not new dates.
    changes: tuple[MeetingChange, ...] = ()
    body_for_dates = mail.body_text
    if network is not None and not events and MailKind.MINUTES not in kinds:
        found_changes = find_changes(mail.body_text, context_day, ctx.meetings.get(network.key, ()), period_heading)
        changes = _with_stated_time_and_place(found_changes.changes, mail.body_text, context_day, period_heading)
        problems.extend(found_changes.problems)
        for line in found_changes.lines:
            body_for_dates = body_for_dates.replace(line, "")
        if any(c.action == "cancel" for c in changes):
            kinds.add(MailKind.MEETING_CANCEL)
        if any(c.action == "move" for c in changes) or (found_changes.problems and not changes):
            kinds.add(MailKind.MEETING_DATES if any(c.action == "move" for c in changes) else MailKind.MEETING_CANCEL)
        if len(changes) > 1 and not _is_admin(sender, ctx):
            described = ", ".join(
                f"{c.old_date.isoformat() if c.old_date else '?'} "
                + (f"moved to {c.new.date.isoformat()}" if c.new else "cancelled")
                for c in changes
            )
            problems.append(f"the mail would change {len(changes)} meetings at once ({described}); a person confirms")

    # 5. Meeting dates in the text (and in Word documents), when said, or when nothing else was found.
    meeting_dates: tuple[MeetingDate, ...] = ()
    date_problems: tuple[str, ...] = ()
    if MailKind.MEETING_DATES in said or (not kinds and has_any(mail.body_text, ("datum", "möte", "träff"))):
        texts = [body_for_dates]
        for attachment in candidates:
            if _suffix(attachment.filename) in (".docx", ".pdf", ".txt") and MailKind.MINUTES not in kinds:
                text, _problem = extract_text(attachment)
                if text:
                    texts.append(text)
        found: dict[date, MeetingDate] = {}
        collected_problems: list[str] = []
        for text in texts:
            result = date_parser.parse_meeting_dates(text, context_day, period_heading)
            for item in result.dates:
                found.setdefault(item.date, item)
            collected_problems.extend(result.problems)
        meeting_dates = tuple(sorted(found.values(), key=lambda m: m.date))
        date_problems = tuple(collected_problems)
        if meeting_dates:
            kinds.add(MailKind.MEETING_DATES)
        elif MailKind.MEETING_DATES in declared and not events and not kinds:
            kinds.add(MailKind.MEETING_DATES)
            problems.append("the mail says it has meeting dates but no date could be read")
    elif MailKind.MINUTES in kinds:
        # Minutes often announce the next meeting in the mail's own text ("Nästa träff: tisdag 21 oktober ...");
        # only those lines are read, and only dates after the mail (the minutes' own meeting is not announced here).
        lines = [line for line in mail.body_text.splitlines() if NEXT_MEETING.search(line)]
        if lines:
            result = date_parser.parse_meeting_dates("\n".join(lines), context_day)
            meeting_dates = tuple(item for item in result.dates if item.date > context_day)
            date_problems = tuple(result.problems)
            presidium = network is not None and (
                _is_admin(sender, ctx) or any(role.is_presidium for role in _roles(sender, network.key, ctx))
            )
            if meeting_dates and not presidium and ctx.assigned_network is None:
                # Minutes from a member are welcome; the next meeting they mention is the presidium's to announce.
                reasons.append(
                    "the next meeting the minutes mention is not recorded: the sender is not in the presidium"
                )
                meeting_dates, date_problems = (), ()
            if meeting_dates:
                kinds.add(MailKind.MEETING_DATES)
    replaces: tuple[date, ...] = ()
    if meeting_dates and network is not None and ctx.assigned_network is None:
        # A date on file stated again with another time or place: a change when the mail says so, else a doubt
        # (the registry would otherwise keep the old time beside a mail saying another).
        on_file = {m.date: m for m in ctx.meetings.get(network.key, ())}
        differing = [d for d in meeting_dates if d.date in on_file and _differs(d, on_file[d.date])]
        # "… på Campus Lidköping i stället för Rådhuset i Skövde": the old place named, the new one not read.
        unread_place = [
            d
            for d in differing
            if d.place is None
            and on_file[d.date].place
            and _place_words(on_file[d.date].place).split()[0] in _place_words(mail.body_text).split()
        ]
        if unread_place:
            problems.append(
                "the mail changes the place of a meeting on file ("
                + ", ".join(d.date.isoformat() for d in unread_place)
                + ") but its new place could not be read; a person decides"
            )
        elif differing and CHANGE_WORDS.search(mail.body_text):
            replaces = tuple(d.date for d in differing)
            reasons.append("the mail changes the time or place of " + ", ".join(d.isoformat() for d in replaces))
        elif differing:
            problems.append(
                "the mail gives another time or place for a meeting on file: "
                + "; ".join(
                    f"{d.date.isoformat()} {_said(d.start, d.place)} (on file {_said(known.start, known.place)})"
                    for d in differing[:3]
                    if (known := on_file[d.date])
                )
                + "; a person decides which holds"
            )
    if meeting_dates and period is not None and MailKind.MINUTES not in kinds:
        # "Mötesdatum för 2026" over lines that all say 2025: the year of the dates or of the period is a slip.
        outside = [d.date for d in meeting_dates if not _within(period, d.date)]
        if outside:
            problems.append(
                f"meeting dates outside the period the mail names ({period.label}): "
                + ", ".join(day.isoformat() for day in outside[:4])
                + (", …" if len(outside) > 4 else "")
            )
    if date_problems and (meeting_dates or MailKind.MEETING_DATES in declared):
        # A date the sender may have mistyped ("fredag 13 mars" is a Thursday) is not recorded as a fact.
        problems.append("meeting dates in doubt: " + "; ".join(date_problems))

    if network is not None and ctx.assigned_network is None:
        # An invitation's CANCEL whose meeting the registry never heard of (neither its UID's meeting nor any on that
        # day): the invitation went elsewhere (another network's calendar? a wrong date?), a person looks instead of a
        # cancelled meeting being put on file. A cancellation in words states the date itself and is recorded.
        known_days = {m.date for m in ctx.meetings.get(network.key, ())}
        unknown = sorted({e.start.astimezone(ctx.tz).date() for e in events if e.cancelled} - known_days)
        if unknown:
            problems.append(
                "the mail cancels a meeting the registry does not know ("
                + ", ".join(day.isoformat() for day in unknown)
                + f") for {network.key}; a person looks"
            )
    if MailKind.MINUTES in kinds and PUBLICATION_CHECK.search(mail.body_text):
        problems.append("the sender asks for the minutes to be checked before they are published")
    named = aliases_in(FORWARD_PREFIX.sub("", REPLY_PREFIX.sub("", mail.subject or "")), networks)
    if len(named) > 1 and ctx.assigned_network is None and ctx.section_network is None and kinds & CHANGING_KINDS:
        # Joint minutes or dates of two networks: whose facts they are is a person's call.
        problems.append(f"the subject names several networks ({', '.join(sorted(named))}); a person decides")
    if choice.also_named and ctx.assigned_network is None and kinds & {MailKind.MEETING_DATES, MailKind.MEMBER_LIST}:
        # "SKIS träffas 12/9, Elevhälsa 26/9" from a SKIS member: the sender's network is not where every date goes.
        problems.append(
            f"the text also names {', '.join(choice.also_named)}; which network each date or name belongs to is a "
            "person's call"
        )
    if MailKind.MEMBER_LIST in kinds and member_list is not None:
        # "Oskar Lind | Ödegårda kommun": someone of no municipality of the region (and not federation staff).
        federation = ctx.municipalities.federation_domains or ("skaraborg.se",)
        nowhere = [
            m.email
            for m in member_list.members
            if m.municipality is None
            and not any(m.email.endswith("@" + d) or m.email.endswith("." + d) for d in federation)
        ]
        if nowhere:
            problems.append(
                f"the municipality of {', '.join(nowhere[:3])} is none of the region's municipalities; a person checks"
            )
    if MailKind.MEMBER_LIST in kinds and member_list is not None and network is not None:
        problems.extend(_drastic_list_problems(member_list, network.key, sender, ctx))
    if MailKind.MEMBER_LIST in kinds and member_list is not None:
        if period_found.conflict:
            problems.append(f"the period of the member list is unclear: {period_found.conflict}")
        elif period is not None and period.end < context_day:
            problems.append(f"the member list is for the period {period.label}, which ended before the mail was sent")
    if not kinds and network is not None and (request := MEMBER_CHANGE_REQUEST.search(_own_text(mail.body_text))):
        # A member list changed in words is still a change to the list: its kind, and a person edits the list.
        kinds.add(MailKind.MEMBER_LIST)
        problems.append(f"the mail asks in words for a change to the member list ('{request.group(0)}'); "
                        "a person edits the list")  # fmt: skip
    if is_reply:
        kinds.add(MailKind.REPLY)
        reasons.append("reply to the product's own mail")
    if not kinds:
        kinds.add(MailKind.OTHER)

    base = dict(
        kinds=tuple(sorted(kinds, key=lambda k: k.value)),
        network=network.key if network else None,
        sender=sender,
        member_list=member_list,
        meeting_dates=meeting_dates,
        date_problems=date_problems,
        calendar_events=tuple(events),
        minutes=tuple(minutes_documents),
        deliverable_key=deliverable_key,
        deliverable_title=deliverable_title,
        deliverable_document=deliverable_document,
        period=period,
        meeting_changes=changes,
        replaces=replaces,
    )
    if kinds <= {MailKind.OTHER, MailKind.REPLY}:
        if is_reply and network is not None and not attachments and _says_nothing_changes(mail.body_text):
            # The answer to our reminder is "it stays as it is": nothing to record and nothing for a person to decide.
            reasons.append("a reply to our mail saying nothing changes: nothing to register")
        else:
            what = "a reply to our mail with nothing to register" if is_reply else "nothing recognised to register"
            problems.append(what)
    if network is None and not problems:
        problems.append("cannot tell which network the mail is about: " + "; ".join(choice.reasons))
    if network is not None and ctx.assigned_network is None:
        # A move written as text is an invitation changed, which members send too; new dates need the presidium.
        authorised_kinds = set(kinds)
        if changes and not meeting_dates and not member_list:
            authorised_kinds.discard(MailKind.MEETING_DATES)
            authorised_kinds.add(MailKind.MEETING_INVITE)
        problems.extend(_authorisation_problems(sender, network, authorised_kinds, member_list, ctx))
    if (kinds & CHANGING_KINDS or problems or MailKind.REPLY in kinds) and ctx.assigned_network is None:
        # Authorisation by the From header alone is not authorisation: what the receiving server found comes first.
        verdict = authenticate(mail, ctx.authentication)
        reasons.extend(verdict.reasons)
        problems[:0] = verdict.problems
    if problems:
        return Understanding(MailStatus.REVIEW, reasons=tuple(reasons), review_reason="; ".join(problems), **base)
    return Understanding(MailStatus.REGISTERED, reasons=tuple(reasons), **base)


_SECTION_HEADING_MAX_WORDS = 7


def network_sections(body: str, networks: Sequence[Network], context_day: date) -> tuple[str, list[tuple[str, str]]]:
    """A text with one headed section per network ("SKIS:" then its dates, "Elevhälsa HT 2025" then its dates): the
    text before the first heading (shared: "alla kl. 9–12", "HT 2025"), and each network's section. A heading is a
    short line naming exactly one network and no date; a section counts when it states a date. Fewer than two
    networks with dates, or a date before the first heading (whose network is that?), gives no sections."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in body.splitlines():
        stripped = line.strip()
        if date_parser.starts_quoted_part(stripped) or date_parser.is_signature_start(stripped):
            break
        words = stripped.rstrip(":").split()
        named = aliases_in(stripped, networks) if 0 < len(words) <= _SECTION_HEADING_MAX_WORDS else set()
        if len(named) == 1 and not stripped.endswith((".", "!", "?")) and not date_parser.has_date(stripped):
            current = next(iter(named))
            sections.setdefault(current, [])
            continue
        (sections[current] if current is not None else preamble).append(line)
    preamble_text = "\n".join(preamble)
    if len(sections) < 2:
        return preamble_text, []  # fewer than two headed sections can never give two with dates
    if date_parser.parse_meeting_dates(preamble_text, context_day).dates:
        return preamble_text, []
    with_dates = [
        (key, "\n".join(lines))
        for key, lines in sections.items()
        if date_parser.parse_meeting_dates("\n".join(lines), context_day).dates
    ]
    return preamble_text, with_dates if len(with_dates) > 1 else []


def _understand_sections(
    mail: ParsedMail,
    ctx: Context,
    arrival: datetime,
    preamble: str,
    sections: list[tuple[str, str]],
    chosen: str | None,
) -> Understanding:
    """Each network's headed section understood as a mail of its own (its authorisation and authentication as
    usual); registered only when every section is, each for its own network, else the whole mail goes to review."""
    parts = [
        _understand_content(replace(mail, body_text=f"{preamble}\n{text}"), replace(ctx, section_network=key), arrival)
        for key, text in sections
    ]
    keys = ", ".join(key for key, _ in sections)
    why = f"the text gives the dates of several networks in headed sections ({keys})"
    kinds = {kind for part in parts for kind in part.kinds}
    only_dates = {MailKind.MEETING_DATES, MailKind.REPLY}
    doubts = [
        f"{key}: {part.review_reason or 'not only meeting dates'}"
        for (key, _), part in zip(sections, parts, strict=True)
        if part.status is not MailStatus.REGISTERED or not part.meeting_dates or not set(part.kinds) <= only_dates
    ]
    if not doubts:
        first, *others = parts
        return replace(first, reasons=(why + "; each is registered for its own network", *first.reasons),
                       sections=tuple(others))  # fmt: skip
    return Understanding(
        MailStatus.REVIEW,
        tuple(sorted(kinds, key=lambda k: k.value)),
        network=chosen,
        reasons=(why,),
        review_reason=f"{why}; a person decides: " + "; ".join(doubts),
        sender=parts[0].sender,
    )


def _place_words(place: object) -> str:
    return re.sub(r"[\W_]+", " ", str(place or "")).casefold().strip()


def _differs(stated: MeetingDate, known: KnownMeeting) -> bool:
    """Whether a date stated again gives another start or another place than the meeting on file (either missing
    on one side is no difference: it fills in)."""
    other_start = stated.start is not None and known.start is not None and stated.start != known.start
    other_place = bool(stated.place and known.place) and _place_words(stated.place) != _place_words(known.place)
    return other_start or other_place


def _said(start: object, place: str | None) -> str:
    return " ".join(str(part) for part in (start.strftime("%H:%M") if start else None, place) if part) or "-"


def _within(period: Period, day: date) -> bool:
    """Whether a meeting `day` falls in `period`; the autumn term's last meeting may be in January."""
    end = date(period.end.year + 1, 1, 31) if period.label.startswith("HT") else period.end
    return period.start <= day <= end


def _own_text(body: str) -> str:
    """A reply's own text: the lines above the quoted or forwarded mail, joined."""
    own: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or date_parser.starts_quoted_part(stripped):
            break
        own.append(stripped)
    return " ".join(own)


def _says_nothing_changes(body: str) -> bool:
    """Whether the reply's own text (above the quoted mail) says that nothing changes, and names no change."""
    text = _own_text(body)
    return bool(NOTHING_CHANGES.search(text)) and not SOME_CHANGE.search(NOTHING_CHANGES.sub(" ", text))


def _drastic_list_problems(member_list: MemberListResult, network: str, sender: str | None, ctx: Context) -> list[str]:
    """A new list that drops most of the list in force needs a person (unless an admin sent it)."""
    if _is_admin(sender, ctx) or ctx.assigned_network is not None:
        return []
    in_force = {email for email, roles in ctx.memberships.items() if any(r.network == network for r in roles)}
    dropped = in_force - {m.email for m in member_list.members}
    municipalities = {m.municipality for m in member_list.members}
    in_force_domains = {email.rsplit("@", 1)[-1] for email in in_force}
    if len(municipalities) == 1 and None not in municipalities and len(in_force_domains) >= 3 and dropped:
        # "Från Vara deltar följande i SKIS": one municipality's part of a regional list, not the whole list.
        return [
            f"the list names only members from {municipalities.pop()} while the list in force of {network} spans "
            f"{len(in_force_domains)} municipalities; a person merges it with the list in force"
        ]
    if len(in_force) >= 4 and len(dropped) * 2 >= len(in_force):
        return [
            f"the new list would drop {len(dropped)} of the {len(in_force)} members in force of {network} "
            f"({', '.join(sorted(dropped)[:5])}{', …' if len(dropped) > 5 else ''}); a person confirms"
        ]
    return []


def _with_stated_time_and_place(
    changes: tuple[MeetingChange, ...], text: str, context_day: date, period_heading: str | None
) -> tuple[MeetingChange, ...]:
    """A move whose new date the mail also states with its time and place elsewhere (a table row) takes them."""
    if not any(c.new is not None and (c.new.start is None or c.new.place is None) for c in changes):
        return changes
    stated = {d.date: d for d in date_parser.parse_meeting_dates(text, context_day, period_heading).dates}
    out = []
    for change in changes:
        new, row = change.new, stated.get(change.new.date) if change.new else None
        if new is not None and row is not None:
            new = MeetingDate(new.date, new.start or row.start, new.end or row.end, new.place or row.place,
                              new.source_text)  # fmt: skip
            change = MeetingChange(change.action, change.old_date, new, change.known, change.source_text)
        out.append(change)
    return tuple(out)


def _read_minutes(
    mail: ParsedMail,
    candidates: Sequence[Attachment],
    ctx: Context,
    context_day: date,
    said: set[MailKind],
    body_may_be_minutes: bool,
) -> tuple[list[MinutesDocument], list[str], bool]:
    """Every minutes document in the mail with its meeting date, the problems that stop it, and whether the mail
    holds a document at all (a damaged file whose bytes cannot be opened is not one)."""
    subject_date = date_parser.parse_date(mail.subject or "", context_day, "past")
    if subject_date is None and mail.forwarded and mail.forwarded.subject:
        subject_date = date_parser.parse_date(mail.forwarded.subject, context_day, "past")
    if is_reply_subject(mail):
        subject_date = None  # "SV: Påminnelse: minnesanteckningar 5 juni" names the mail answered, not these minutes
    # An invitation, a presentation or an agenda sent along with the minutes is left aside, not read as minutes.
    beside = [
        a
        for a in candidates
        if UNRELATED_DOCUMENT.search(stem := PurePath(a.filename or "").stem) and not has_any(stem, MINUTES_WORDS)
    ]
    if beside and len(beside) < len(candidates):
        candidates = [a for a in candidates if a not in beside]
    sources: list[tuple[str, str, bytes, str | None, str | None]] = []
    for attachment in candidates:
        text, problem = extract_text(attachment)
        sources.append((attachment.filename or "bilaga", attachment.content_type, attachment.payload, text, problem))
    shared_link = not sources and body_may_be_minutes and SHARED_LINK.search(mail.body_text)
    if shared_link:
        pass  # "Johan Lindberg har delat 'Minnesanteckningar …' med dig. Öppna: https://…": a link, not the minutes.
    elif not sources and body_may_be_minutes and mail.body_text.strip():
        body = mail.body_text
        sources.append(("meddelandetext.txt", "text/plain", body.encode("utf-8"), body, None))
    documents: list[MinutesDocument] = []
    problems: list[str] = []
    if shared_link:
        problems.append("the mail links to a shared document instead of attaching the minutes; a person fetches them")
    # The body read as minutes is not a document: "Johan har delat 'Minnesanteckningar' med dig" is a mail for a person.
    has_document = any(problem not in DAMAGED_PROBLEMS for *_rest, problem in sources[: len(candidates)])
    for filename, media_type, payload, text, problem in sources:
        if text is None or not text.strip():
            problems.append(f"unreadable document {filename!r}: {problem or 'no text'}")
            continue
        result = parse_minutes(text, ctx.municipalities)
        if result.meeting_date is None and len(sources) > 1 and MailKind.MINUTES not in said:
            continue  # an extra attachment (an agenda, a presentation) that is not minutes
        file_date = date_parser.parse_date(PurePath(filename).stem.replace("_", " "), context_day, "past")
        heard = {"heading": result.meeting_date, "file name": file_date, "subject": subject_date}
        known = {where: day for where, day in heard.items() if day is not None}
        distinct = set(known.values())
        if not distinct:
            problems.append(f"minutes date not found in {filename!r} (subject, file name or heading)")
            continue
        if len(distinct) > 1 and known.get("heading") is not None and known.get("heading") == known.get("file name"):
            # The document itself (its heading and its file name) agrees; the subject names another meeting.
            distinct = {known["heading"]}
        if len(distinct) > 1:
            described = ", ".join(f"{where} {day.isoformat()}" for where, day in known.items())
            problems.append(f"minutes date unclear in {filename!r}: {described}")
            continue
        meeting_date = distinct.pop()
        if meeting_date > context_day:
            problems.append(f"minutes date {meeting_date.isoformat()} is after the mail was sent")
            continue
        documents.append(MinutesDocument(filename, media_type, payload, text, meeting_date, result))
    if not documents and not problems and body_may_be_minutes:
        problems.append("the mail says it has minutes but no minutes document was found")
    return documents, problems, has_document


def _authorisation_problems(
    sender: str | None, network: Network, kinds: set[MailKind], member_list: MemberListResult | None, ctx: Context
) -> list[str]:
    """Who may change what: the presidium and admins replace lists and dates; members send minutes and invitations."""
    if _is_admin(sender, ctx):
        return []
    roles = _roles(sender, network.key, ctx)
    problems = []
    if kinds & {MailKind.MEMBER_LIST, MailKind.MEETING_DATES}:
        presidium = any(role.is_presidium for role in roles)
        first_list_by_its_presidium = (
            network.key not in ctx.networks_with_list
            and member_list is not None
            and any(m.email == sender and m.role.is_presidium for m in member_list.members)
        )
        if not (presidium or first_list_by_its_presidium):
            problems.append(
                f"sender {sender} is not in the presidium of {network.key} and may not replace its member list or dates"
            )
    elif kinds & {MailKind.MINUTES, MailKind.MEETING_INVITE, MailKind.MEETING_CANCEL, MailKind.DELIVERABLE}:
        if not roles:
            problems.append(f"sender {sender} is not a member of {network.key}")
    return problems
