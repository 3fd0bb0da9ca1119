"""Turning a planned reminder, receipt or alert into an RFC 5322 message from the Jinja2 templates.

Never lets text from a mail or the configuration add a header: addresses are validated, the rest is one line.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailbot.remind import (
    MORE_MEETINGS,
    SENT_IN,
    Planned,
    PlannedAlert,
    PlannedReceipt,
    PlannedReminder,
    item_instruction,
    single_line,
)
from registry.config import Network
from registry.domain import MailKind, ObligationKind, State
from registry.facts import Finding
from registry.paths import templates_dir
from registry.swedish import day_month, join, long_date, plural

DEFAULT_TZ = ZoneInfo("Europe/Stockholm")
SHARED_MAILBOX = "utbildning@skaraborg.se"
_MESSAGE_ID = re.compile(r"^[^\s<>@\"()\[\],;:\\]+@[A-Za-z0-9.-]+$")
_REFERENCE_ID = re.compile(r"^[^\s<>]{1,500}@[^\s<>]{1,250}$")
# Many, many rows could not be read (a wrong file): list the first ones, count the rest.
MAX_REJECTED_ROWS = 20


class UnsafeHeader(ValueError):
    """An address that email-validator refuses, or a Message-ID that is not one."""


# --- headers --------------------------------------------------------------------------------------


def checked_address(value: str) -> Address:
    """'Name <a@b.se>' or 'a@b.se' as an Address, validated (no CR/LF, no SMTPUTF8 needed)."""
    if re.search(r"[\r\n\x00]", value):
        raise UnsafeHeader(f"address contains a line break: {value!r}")
    name, addr_spec = parseaddr(value)
    if not addr_spec:
        raise UnsafeHeader(f"not a mail address: {value!r}")
    try:
        valid = validate_email(addr_spec, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise UnsafeHeader(f"not a valid mail address: {addr_spec!r} ({error})") from None
    local, domain = valid.normalized.rsplit("@", 1)
    return Address(display_name=single_line(name), username=local, domain=domain)


def new_message_id(kind: str, domain: str) -> str:
    """'<kind>-<uuid4 hex>@<domain>', without angle brackets (as stored in the outbox)."""
    message_id = f"{kind.replace('_', '-')}-{uuid.uuid4().hex}@{domain}"
    if not _MESSAGE_ID.match(message_id):
        raise UnsafeHeader(f"cannot make a Message-ID in domain {domain!r}")
    return message_id


class _WirePolicy(EmailPolicy):
    """policy.SMTP, except that In-Reply-To and References are written as bare msg-ids (RFC 5322 3.6.4), folded
    only between two ids. The standard policy treats them as unstructured text and turns an id longer than a line
    (Outlook's are about 80 characters) into an RFC 2047 encoded-word, which no mail client matches to the
    original, so receipts would not thread."""

    _MSG_ID_FIELDS = frozenset({"in-reply-to", "references"})

    def _fold_ids(self, name: str, value: str) -> str:
        ids = value.split()
        lines, line = [], f"{name}:"
        for token in ids:
            if len(line) + 1 + len(token) > (self.max_line_length or 998) and line != f"{name}:":
                lines.append(line)
                line = ""
            line += " " + token
        lines.append(line)
        return self.linesep.join(lines) + self.linesep

    def fold(self, name: str, value: str) -> str:
        if name.lower() in self._MSG_ID_FIELDS:
            return self._fold_ids(name, str(value))
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in self._MSG_ID_FIELDS:
            return self._fold_ids(name, str(value)).encode("ascii")
        return super().fold_binary(name, value)


WIRE_POLICY = _WirePolicy(linesep="\r\n")  # = policy.SMTP with msg-id headers written as they are


def _angle(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def build_message(
    *,
    kind: str,
    sender: str,
    to: list[str] | tuple[str, ...],
    cc: list[str] | tuple[str, ...] = (),
    subject: str,
    text: str,
    html: str = "",
    message_id: str,
    reply_to: str,
    sent: datetime,
    in_reply_to: str | None = None,
) -> EmailMessage:
    """The message as it goes on the wire; the same inputs always give the same bytes (re-sends are identical)."""
    if not to:
        raise UnsafeHeader("a message needs at least one recipient")
    if not _MESSAGE_ID.match(message_id.strip("<>")):
        raise UnsafeHeader(f"not a Message-ID of ours: {message_id!r}")
    message = EmailMessage(policy=WIRE_POLICY)  # CRLF and folded header lines, as RFC 5322 wants
    message["From"] = checked_address(sender)
    message["To"] = [checked_address(address) for address in to]
    if cc:
        message["Cc"] = [checked_address(address) for address in cc]
    message["Reply-To"] = checked_address(reply_to)
    message["Subject"] = single_line(subject)  # non-ASCII becomes RFC 2047 encoded-words
    message["Date"] = format_datetime(sent)  # RFC 5322 3.6.1: when the mail was ready, i.e. queued
    message["Message-ID"] = _angle(message_id)
    original = single_line(in_reply_to or "").strip("<>")
    if original and _REFERENCE_ID.match(original):
        # RFC 5322 3.6.4: the reply names its parent, so the sender's client threads the receipt.
        message["In-Reply-To"] = _angle(original)
        message["References"] = _angle(original)
    # RFC 3834 section 5: a receipt answers a mail ("auto-replied"); reminders, summaries and alerts
    # are "auto-generated". Auto-responders (out-of-office) must not answer either.
    message["Auto-Submitted"] = "auto-replied" if kind == "receipt" else "auto-generated"
    # Exchange/Outlook ignore Auto-Submitted for their out-of-office replies; this header stops them.
    # No "Precedence: bulk": RFC 3834 section 3.1.8 advises against it.
    message["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable keeps å, ä and ö readable in the source and every line within 76 characters.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        # A boundary derived from the Message-ID instead of a random one, so that a re-send is the same
        # bytes. It starts with "==", which quoted-printable text can never contain (it writes "=3D").
        message.set_boundary("==mailbot-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32])
    # After the content: set_content() drops every Content-* header the message had (RFC 3282).
    message["Content-Language"] = "sv-SE"
    return message


# --- templates ------------------------------------------------------------------------------------


def _time(value: time | None) -> str:
    """'09.00' (the Swedish way of writing a time)."""
    return value.strftime("%H.%M") if value else ""


def _local(moment: datetime, tz: ZoneInfo) -> str:
    """'måndag 17 mars 2025 kl. 10.15' in the configured zone."""
    local = moment.astimezone(tz)
    return f"{long_date(local.date(), weekday=True)} kl. {local.strftime('%H.%M')}"


@lru_cache(maxsize=8)
def environment(directory: Path | None = None) -> Environment:
    """Jinja2 on templates/ (or `directory`): HTML templates autoescaped, a missing variable an error."""
    env = Environment(
        loader=FileSystemLoader(str(directory or templates_dir())),
        autoescape=lambda name: bool(name) and (name.endswith(".html.j2") or name.endswith(".html")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        long_date=long_date,
        weekday_date=lambda value: long_date(value, weekday=True),
        day_month=day_month,
        join=join,
        plural=plural,
        clock=_time,
        number_word=number_word,
    )
    return env


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str  # "" for text-only mails (summaries, alerts)


def item_title(finding: Finding, network: Network | None) -> str:
    """A heading for one item of a reminder: 'Minnesanteckningar från mötet fredag 14 mars 2025'."""
    year = finding.due.year if finding.due else ""
    kind = finding.obligation
    if kind is ObligationKind.MEMBER_LIST:
        return f"Medlemsförteckning för {year}"
    if kind is ObligationKind.MEETING_DATES:
        what = "Plats och tid" if network and network.list_and_dates_sent_by == "secretary" else "Datum"
        return f"{what} för nätverksträffarna {year}"
    if kind is ObligationKind.MEETING_COUNT:
        return f"Antal möten {year}"
    if kind is ObligationKind.MEETING_WEEKDAY and finding.meeting_date:
        return f"Mötet {long_date(finding.meeting_date, weekday=True)}"
    if kind is ObligationKind.MINUTES and finding.meeting_date:
        name = network.minutes_name if network else "protokoll"
        return f"{name.capitalize()} från mötet {long_date(finding.meeting_date, weekday=True)}"
    if kind is ObligationKind.REPRESENTATION:
        return f"Alla kommuner ska vara företrädda i nätverket ({year})"
    if kind is ObligationKind.COMMISSION_REVISION:
        return f"Reviderad uppdragsbeskrivning för {year}"
    if kind is ObligationKind.DELIVERABLE and network:
        key = finding.id.rsplit(":", 1)[-1]
        for deliverable in network.deliverables:
            if deliverable.key == key:
                return deliverable.title
    return "Redovisning"


# What is sent in by a date: its detail (from registry/rules.py) opens with "X has not come in
# (due ...)." — the title and the deadline line already say that, so only the sentences after it show.
_DEADLINE_KINDS = SENT_IN
_NUMBER_WORDS = ("noll", "en", "två", "tre", "fyra", "fem", "sex", "sju", "åtta", "nio", "tio", "elva", "tolv")


def number_word(count: int) -> str:
    """'två' for 2 (Swedish style writes small numbers in words), digits from 13."""
    return _NUMBER_WORDS[count] if 0 <= count < len(_NUMBER_WORDS) else str(count)


def _deadline(finding: Finding) -> str:
    """Only for what is sent in by a date; a meeting count or the representation has no sending deadline."""
    if finding.due is None or finding.obligation not in _DEADLINE_KINDS:
        return ""
    if finding.state is State.OVERDUE:
        return f"Skulle ha skickats in senast {long_date(finding.due)}."
    if finding.state is State.OPEN:
        return f"Ska skickas in senast {long_date(finding.due)}."
    return ""


def _detail(finding: Finding) -> str:
    detail = single_line(finding.detail)
    if finding.obligation is ObligationKind.MEETING_COUNT:
        return MORE_MEETINGS.sub("", detail).strip()  # the item's instruction says how many to plan
    if finding.obligation in _DEADLINE_KINDS and finding.state in (State.OVERDUE, State.OPEN):
        rest = re.split(r"(?<=\.)\s+(?=[A-ZÅÄÖ])", detail, maxsplit=1)
        return rest[1] if len(rest) == 2 else ""
    return detail


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _item(finding: Finding, network: Network | None, times_reminded: int = 0) -> dict[str, Any]:
    return {
        "title": item_title(finding, network),
        "deadline": _deadline(finding),
        "due": long_date(finding.due) if finding.due else "",
        "detail": _detail(finding),
        "instruction": item_instruction(finding, network),
        "quote": single_line(finding.quote),
        "state": finding.state.value,
        "times_reminded": times_reminded,
        "network": finding.network,
    }


def _reminder_context(planned: PlannedReminder, network: Network | None, shared_mailbox: str) -> dict[str, Any]:
    counts = planned.times_reminded or tuple(0 for _ in planned.findings)
    items = [_item(f, network, n) for f, n in zip(planned.findings, counts, strict=True)]
    return {
        "network_name": network.name if network else planned.network,
        "items": items,
        "missing": [i for i in items if i["state"] in ("overdue", "at_risk")],
        "coming": [i for i in items if i["state"] == "open"],
        "also_open": [_item(f, network) for f in planned.also_open],
        "escalated": planned.escalated,
        "times_reminded": max(counts, default=0),
        "escalated_titles": [_lower_first(i["title"]) for i in items if i["times_reminded"] == max(counts, default=0)],
        "school_chief_copied": planned.school_chief_copied,
        "recipients_source": planned.recipients_source,
        # one form of address in a mail: "ni" to a presidium (or the federation), "du" only to the one contact
        "you": "du" if planned.recipients_source == "fallback" else "ni",
        "skipped_bouncing": list(planned.skipped_bouncing),
        "shared_mailbox": shared_mailbox,
        "planned_on": planned.planned_on,
        "minutes_name": network.minutes_name if network else "protokoll",
    }


def _summary_context(planned: PlannedReminder, networks: dict[str, Network], shared_mailbox: str) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    waiting: dict[str, list[dict[str, Any]]] = {}  # minutes to publish, by network
    for finding in planned.findings:
        network = networks.get(finding.network)
        name = network.name if network else finding.network
        item = _item(finding, network)
        if finding.obligation is ObligationKind.PUBLICATION:
            item["minutes_id"] = finding.id.rsplit(":", 1)[-1]  # what `registry publish --approve` takes
            waiting.setdefault(name, []).append(item)
        else:
            groups.setdefault(name, []).append(item)
    return {"groups": groups, "waiting": waiting, "planned_on": planned.planned_on, "shared_mailbox": shared_mailbox}


def first_name(sender_name: str | None) -> str:
    """'Anna' from 'Anna Svensson' or from Outlook's 'Svensson, Anna'; '' when unknown or odd."""
    name = single_line(sender_name or "").strip("\"' ")
    if "," in name:
        name = name.split(",", 1)[1].strip()
    first = name.split(" ", 1)[0] if name else ""
    return first if re.fullmatch(r"[^\W\d_][\w\-]{0,40}", first) and "@" not in name else ""


def _meeting_line(meeting: Any) -> str:
    line = long_date(meeting.date, weekday=True)
    if meeting.start:
        line += f" kl. {_time(meeting.start)}" + (f"–{_time(meeting.end)}" if meeting.end else "")
    if meeting.place:
        line += f", {single_line(meeting.place)}"
    return line


def _receipt_context(planned: PlannedReceipt, network: Network | None, tz: ZoneInfo,
                     shared_mailbox: str) -> dict[str, Any]:  # fmt: skip
    request = planned.request
    kinds = set(request.kinds)
    rejected = [
        {"row": row.row_number, "text": single_line(row.text), "reason": single_line(row.reason)}
        for row in request.rejected_rows[:MAX_REJECTED_ROWS]
    ]
    minutes_name = network.minutes_name if network else "protokoll"
    return {
        "first_name": first_name(request.sender_name),
        "subject": single_line(request.subject) or "(utan ämne)",
        "received": _local(request.received, tz),
        "network_name": single_line(request.network_name or (network.name if network else "")),
        "has_members": MailKind.MEMBER_LIST in kinds and request.members_count is not None,
        "members_count": request.members_count or 0,
        "rejected": rejected,
        "rejected_total": len(request.rejected_rows),
        "rejected_more": max(0, len(request.rejected_rows) - MAX_REJECTED_ROWS),
        "meetings": [_meeting_line(m) for m in sorted(request.meetings, key=lambda m: (m.date, m.start or time()))],
        "cancelled": [long_date(d, weekday=True) for d in sorted(request.cancelled)],
        "has_minutes": MailKind.MINUTES in kinds,
        "minutes_name": minutes_name,
        "minutes_meeting": long_date(request.minutes_meeting_date, weekday=True)
        if request.minutes_meeting_date
        else "",
        "minutes_unannounced": request.minutes_unannounced,
        "deliverable_title": single_line(request.deliverable_title or ""),
        "has_deliverable": MailKind.DELIVERABLE in kinds,
        "shared_mailbox": shared_mailbox,
    }


def render(
    planned: Planned,
    network: Network | None,
    *,
    networks: dict[str, Network] | None = None,
    tz: ZoneInfo = DEFAULT_TZ,
    shared_mailbox: str = SHARED_MAILBOX,
    env: Environment | None = None,
) -> RenderedMail:
    """Subject, plain text and HTML of a planned mail (the admin's summary needs `networks` for names)."""
    env = env or environment()
    if isinstance(planned, PlannedReceipt):
        context = _receipt_context(planned, network, tz, shared_mailbox)
        names = ("receipt.txt.j2", "receipt.html.j2")
    elif isinstance(planned, PlannedAlert):
        context = {
            "reason": planned.reason,
            "details": [(single_line(k), single_line(v)) for k, v in planned.details],
            "shared_mailbox": shared_mailbox,
        }
        names = ("alert.txt.j2", None)
    elif planned.kind == "admin_summary":
        context = _summary_context(planned, networks or {}, shared_mailbox)
        names = ("admin_summary.txt.j2", None)
    else:
        context = _reminder_context(planned, network, shared_mailbox)
        names = ("reminder.txt.j2", "reminder.html.j2")
    text = env.get_template(names[0]).render(**context)
    html = env.get_template(names[1]).render(**context) if names[1] else ""
    return RenderedMail(subject=single_line(planned.subject), text=text, html=html)


def compose(
    planned: Planned,
    network: Network | None,
    sender: str,
    reply_to: str,
    message_id: str,
    *,
    now: datetime,
    networks: dict[str, Network] | None = None,
    tz: ZoneInfo = DEFAULT_TZ,
    env: Environment | None = None,
) -> EmailMessage:
    """The finished message for `planned` (the outbox stores its parts and rebuilds the same bytes)."""
    rendered = render(planned, network, networks=networks, tz=tz, shared_mailbox=reply_to_address(reply_to), env=env)
    in_reply_to = planned.in_reply_to if isinstance(planned, PlannedReceipt) else None
    return build_message(
        kind=planned.kind,
        sender=sender,
        to=planned.to,
        cc=planned.cc,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        reply_to=reply_to,
        sent=now.astimezone(tz),
        in_reply_to=in_reply_to,
    )


def reply_to_address(reply_to: str) -> str:
    """The bare address of the shared mailbox, as the texts name it."""
    return str(checked_address(reply_to).addr_spec)
