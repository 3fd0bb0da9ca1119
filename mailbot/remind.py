"""Pure planning of what the product sends: reminders to presidia, the admin's summary, receipts, alerts.

Never any I/O, clock or database session: dates, the ledger and the settings come in as parameters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from mailbot.settings import ReceiptSettings, ReminderSettings
from mailbot.understand.types import MeetingDate, RejectedRow
from mailbot.working_days import is_working_day
from registry.config import Network, month_day
from registry.domain import MailKind, ObligationKind, State
from registry.facts import Finding
from registry.swedish import WEEKDAY_PLURAL, join, long_date

ReminderKind = Literal["reminder", "admin_summary"]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
AlertReason = Literal["mailbox_failing", "mailbox_recovered", "delivery_failed", "upload_failing", "upload_recovered"]

# --- reminders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """One obligation named in one reminder or summary that was queued (and has not failed)."""

    network: str
    obligation_id: str
    sent_on: date  # the planning date
    escalated: bool
    kind: str = "reminder"  # the outbound mail's kind: "reminder" or "admin_summary"


@dataclass(frozen=True)
class PlannedReminder:
    """One mail to send: a network's reminder (a digest of its items) or the admin's summary."""

    network: str | None  # None for the admin's summary
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    findings: tuple[Finding, ...]  # the items this mail reminds about (each gets a ledger row)
    escalated: bool
    dedup_key: str
    kind: ReminderKind
    planned_on: date
    # How many reminders each item of `findings` already had (same order): the text says so.
    times_reminded: tuple[int, ...] = ()
    # Other items of the network still open but reminded less than repeat_days ago: listed so the
    # mail gives the whole picture, but not recorded (their own repeat comes on its own day).
    also_open: tuple[Finding, ...] = ()
    recipients_source: Literal["presidium", "fallback", "admin"] = "presidium"
    skipped_bouncing: tuple[str, ...] = ()  # presidium addresses left out because they bounce
    school_chief_copied: bool = False


def _address_key(address: str) -> str:
    return address.strip().lower()


def _unique(addresses: Sequence[str], exclude: set[str] | frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Lower-cased, each once, in order, without `exclude` (already lower case) and without blanks."""
    seen = set(exclude)
    result = []
    for address in addresses:
        key = _address_key(address)
        if key and key not in seen:
            seen.add(key)
            result.append(key)
    return tuple(result)


def _items_key(ids: Sequence[str]) -> str:
    """A short, stable hash of the item ids: the dedup key is per (network, items, day)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()[:12]


def _is_item(finding: Finding, network: Network, today: date, settings: ReminderSettings) -> bool:
    """Whether a finding is something the presidium should hear about today."""
    if finding.obligation is ObligationKind.PUBLICATION:
        return False  # publishing is the federation's work, not the network's: the admin's summary lists it
    if finding.state is State.OVERDUE:
        return True
    if finding.state is State.AT_RISK:
        if finding.obligation is ObligationKind.MEETING_COUNT:
            # Too few meetings planned is only worth a reminder once the dates were due: in January
            # no dates are registered yet and the dates obligation itself is still open.
            return today > month_day(network.deadlines.meeting_dates, today.year)
        return True  # a planned meeting on the wrong weekday: it can still be moved
    if finding.state is State.OPEN and settings.heads_up_days > 0 and finding.due is not None:
        return 0 <= (finding.due - today).days <= settings.heads_up_days
    return False


def _previous(finding: Finding, entries: Sequence[LedgerEntry], settings: ReminderSettings) -> list[date]:
    """The earlier reminders that count for this finding in its current state, oldest first.

    A heads-up (sent on or before the due date) is not a reminder: the first reminder still goes the
    first working day after the deadline, and only reminders count towards escalation.
    """
    days = sorted(entry.sent_on for entry in entries)
    if finding.state is State.OVERDUE and finding.due is not None:
        return [day for day in days if day > finding.due]
    if finding.state is State.OPEN and finding.due is not None:
        return [day for day in days if finding.due - timedelta(days=settings.heads_up_days) <= day <= finding.due]
    return days


def _needs_reminder(finding: Finding, previous: list[date], today: date, settings: ReminderSettings) -> bool:
    if not previous:
        return True
    if finding.state is State.OPEN:
        return False  # one heads-up per deadline
    return (today - previous[-1]).days >= settings.repeat_days


# What a network sends in by a date ("X saknas"); the other obligations are states of the network.
SENT_IN = frozenset(
    {
        ObligationKind.MEMBER_LIST,
        ObligationKind.MEETING_DATES,
        ObligationKind.MINUTES,
        ObligationKind.COMMISSION_REVISION,
        ObligationKind.DELIVERABLE,
    }
)


def item_label(finding: Finding, network: Network) -> str:
    """The short Swedish noun for a finding, as used in a subject line."""
    labels = {
        ObligationKind.MEMBER_LIST: "medlemsförteckning",
        ObligationKind.MEETING_DATES: "plats och tid för träffarna"
        if network.list_and_dates_sent_by == "secretary"
        else "mötesdatum",
        ObligationKind.MEETING_COUNT: "för få möten planerade",
        ObligationKind.MEETING_WEEKDAY: "möte på fel veckodag",
        ObligationKind.MINUTES: network.minutes_name,
        ObligationKind.REPRESENTATION: "alla kommuner inte företrädda",
        ObligationKind.COMMISSION_REVISION: "reviderad uppdragsbeskrivning",
        ObligationKind.DELIVERABLE: "redovisning",
    }
    return labels[finding.obligation]


SUBJECT_LIMIT = 78  # RFC 5322's recommended line length: a subject a mail client shows whole

# The order in which a reminder's subject names what is missing: the most important first.
_SUBJECT_ORDER = (
    ObligationKind.MEMBER_LIST,
    ObligationKind.MEETING_DATES,
    ObligationKind.MINUTES,
    ObligationKind.DELIVERABLE,
    ObligationKind.COMMISSION_REVISION,
    ObligationKind.MEETING_COUNT,
    ObligationKind.REPRESENTATION,
    ObligationKind.MEETING_WEEKDAY,
)
MORE_MEETINGS = re.compile(r"Planera in (\d+) möten? till\.")


def short_name(network: Network) -> str:
    """'SKIS' for 'Skolutveckling i Skaraborg (SKIS)': the abbreviation a name ends with, else the name."""
    found = re.fullmatch(r".+\(([^()]{2,12})\)\s*", network.name)
    return found.group(1) if found else network.name


def meetings_to_plan(finding: Finding) -> int | None:
    """How many more meetings a too-few-meetings finding asks for (from its detail, registry/rules.py)."""
    found = MORE_MEETINGS.search(finding.detail)
    return int(found.group(1)) if found else None


def _subject_phrase(kind: ObligationKind, findings: Sequence[Finding], network: Network) -> str:
    """The words for the items of one kind in a subject: '2 protokoll', 'medlemsförteckning', ..."""
    count = len(findings)
    if kind is ObligationKind.MINUTES:
        if network.minutes_name == "protokoll":
            return "protokoll" if count == 1 else f"{count} protokoll"
        return network.minutes_name if count == 1 else f"{network.minutes_name} ({count} möten)"
    if kind is ObligationKind.DELIVERABLE:
        return "redovisning" if count == 1 else f"{count} redovisningar"
    if kind is ObligationKind.MEETING_COUNT:
        more = meetings_to_plan(findings[0])
        return f"{more} {'möte' if more == 1 else 'möten'} till behöver planeras" if more else "för få möten planerade"
    if kind is ObligationKind.MEETING_WEEKDAY:
        return "möte på fel veckodag" if count == 1 else f"{count} möten på fel veckodag"
    return item_label(findings[0], network) if kind is not ObligationKind.MEETING_DATES else "mötesdatum"


def _fit(prefix: str, text: str) -> str:
    subject = f"{prefix}{text}"
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 1].rstrip(" ,;–") + "…"


def reminder_subject(network: Network, findings: Sequence[Finding]) -> str:
    """'Påminnelse: SKIS – medlemsförteckning och 2 protokoll saknas': the network and what matters most, in at
    most SUBJECT_LIMIT characters (what does not fit is 'm.m.'; the mail itself lists everything)."""
    by_kind: dict[ObligationKind, list[Finding]] = {}
    for finding in findings:
        by_kind.setdefault(finding.obligation, []).append(finding)
    order = [kind for kind in _SUBJECT_ORDER if kind in by_kind] + [k for k in by_kind if k not in _SUBJECT_ORDER]
    missing = [(k, [f for f in by_kind[k] if f.state is not State.OPEN]) for k in order]
    missing = [(k, items) for k, items in missing if items]
    coming = [(k, [f for f in by_kind[k] if f.state is State.OPEN]) for k in order]
    coming = [(k, items) for k, items in coming if items]
    name = short_name(network)
    if not missing:
        phrases = [_subject_phrase(k, items, network) for k, items in coming]
        return _fit(f"Snart dags: {name} – ", join(phrases))
    prefix = f"Påminnelse: {name} – "
    soon = f"; snart dags för {join([_subject_phrase(k, items, network) for k, items in coming])}" if coming else ""
    text = ""
    for taken in range(len(missing), 0, -1):  # all items if they fit, else the most important ones and 'm.m.'
        sent_in = [_subject_phrase(k, items, network) for k, items in missing[:taken] if k in SENT_IN]
        states = [_subject_phrase(k, items, network) for k, items in missing[:taken] if k not in SENT_IN]
        parts = [f"{join(sent_in)} saknas"] if sent_in else []
        text = "; ".join([*parts, *states])
        if taken == len(missing) and len(prefix + text + soon) <= SUBJECT_LIMIT:
            return prefix + text + soon
        if len(prefix + text) + len(" m.m.") <= SUBJECT_LIMIT:
            return f"{prefix}{text} m.m."  # something was left out: this one has more or coming items
    return _fit(prefix, text)  # the most important item alone, without 'm.m.' (or cut) when that is all that fits


def item_instruction(finding: Finding, network: Network | None) -> str:
    """What to do about one reminder item, fitting its kind: send a document, send dates, plan meetings, or (a
    breach) nothing to catch up, only what it means for the year. Imperative, so it fits 'ni' and 'du' alike."""
    kind, state = finding.obligation, finding.state
    minutes_name = network.minutes_name if network else "protokoll"
    weekday = WEEKDAY_PLURAL.get(network.meeting_weekday or "", "") if network else ""
    secretary = network is not None and network.list_and_dates_sent_by == "secretary"
    if state is State.BREACH:
        if kind is ObligationKind.MEETING_WEEKDAY:
            return (f"Det går inte att ta igen: mötet är redan hållet. Det noteras som en avvikelse i årsrapporten, "
                    f"och kommande möten ska ligga på {weekday or 'rätt veckodag'}.")  # fmt: skip
        return "Det går inte att ta igen i efterhand. Det noteras som en avvikelse i årsrapporten."
    if kind is ObligationKind.MEMBER_LIST:
        return "Svara med medlemsförteckningen som bilaga (Excel, Word eller PDF)."
    if kind is ObligationKind.MEETING_DATES:
        what = "datum, tid och plats" if secretary else "datumen"
        return f"Svara med {what} för årets träffar, direkt i mejlet. Någon bilaga behövs inte."
    if kind is ObligationKind.MEETING_COUNT:
        more = meetings_to_plan(finding)
        count = f"{_neuter_number(more)} {'möte' if more == 1 else 'möten'} till" if more else "fler möten"
        return f"Planera in {count} och svara med datum, tid och plats för {'det' if more == 1 else 'dem'}."
    if kind is ObligationKind.MEETING_WEEKDAY:
        day = weekday.removesuffix("ar") or "annan dag"  # 'fredagar' -> 'fredag'
        return f"Flytta mötet till en {day} och svara med det nya datumet."
    if kind is ObligationKind.MINUTES:
        definite = {"protokoll": "protokollet", "minnesanteckningar": "minnesanteckningarna"}
        return f"Svara med {definite.get(minutes_name, minutes_name)} som bilaga."
    if kind is ObligationKind.DELIVERABLE:
        return "Svara med redovisningen som bilaga."
    if kind is ObligationKind.COMMISSION_REVISION:
        return "Svara med den reviderade uppdragsbeskrivningen som bilaga."
    if kind is ObligationKind.REPRESENTATION:
        return "Se till att varje kommun har en företrädare i nätverket och svara med en uppdaterad medlemsförteckning."
    return "Svara på mejlet med det som saknas."


def _neuter_number(count: int) -> str:
    """'ett', 'två', ... as in 'ett möte', 'två möten' (small numbers in words), digits from 13."""
    words = ("noll", "ett", "två", "tre", "fyra", "fem", "sex", "sju", "åtta", "nio", "tio", "elva", "tolv")
    return words[count] if 0 <= count < len(words) else str(count)


_REVIEW_KIND_OBLIGATIONS = {"member_list": ObligationKind.MEMBER_LIST, "meeting_dates": ObligationKind.MEETING_DATES}


def without_answers_in_review(findings: Sequence[Finding], in_review: Mapping[str, set[str]]) -> list[Finding]:
    """The findings to remind of: a network whose member list or dates mail waits in review (`in_review`: network ->
    kinds of its unresolved review mails) is not reminded of that obligation, a person has it on the desk."""
    waiting = {
        (network, _REVIEW_KIND_OBLIGATIONS[kind])
        for network, kinds in in_review.items()
        for kind in kinds
        if kind in _REVIEW_KIND_OBLIGATIONS
    }
    return [f for f in findings if (f.network, f.obligation) not in waiting or f.state is State.BREACH]


def plan_reminders(
    networks: Sequence[Network],
    findings: Sequence[Finding],
    presidium: Mapping[str, Sequence[str]],
    school_chiefs: Mapping[str, Sequence[str]],
    ledger: Sequence[LedgerEntry],
    today: date,
    settings: ReminderSettings,
    admin: Sequence[str],
    bouncing: set[str],
) -> list[PlannedReminder]:
    """The reminders and the admin's summary to queue today (nothing on a non-working day).

    One mail per network at most per day, listing the items that need a reminder: never reminded,
    or last reminded at least `repeat_days` ago. An item already reminded `escalate_after` times
    makes the mail escalated (the school chief and the admin in copy). `breach` findings go only
    into the admin's summary, each once. An item met is no longer a finding, so reminders stop.
    """
    if not is_working_day(today):
        return []
    bouncing_keys = {_address_key(address) for address in bouncing}
    admin_addresses = _unique(admin, frozenset(bouncing_keys)) or _unique(admin)
    by_obligation: dict[tuple[str, str], list[LedgerEntry]] = {}
    for entry in ledger:
        by_obligation.setdefault((entry.kind, entry.obligation_id), []).append(entry)
    reminded_today = {entry.network for entry in ledger if entry.kind == "reminder" and entry.sent_on == today}
    summarised_today = any(entry.kind == "admin_summary" and entry.sent_on == today for entry in ledger)
    of_network: dict[str, list[Finding]] = {}  # in order; one pass, not one per network
    for finding in findings:
        of_network.setdefault(finding.network, []).append(finding)

    planned: list[PlannedReminder] = []
    for network in networks:
        if network.key in reminded_today:
            continue  # one reminder per network per day, also when a later run finds a new item
        items = [f for f in of_network.get(network.key, ()) if _is_item(f, network, today, settings)]
        due: list[Finding] = []
        counts: list[int] = []
        waiting: list[Finding] = []
        for finding in items:
            previous = _previous(finding, by_obligation.get(("reminder", finding.id), []), settings)
            if _needs_reminder(finding, previous, today, settings):
                due.append(finding)
                counts.append(len(previous) if finding.state is not State.OPEN else 0)
            else:
                waiting.append(finding)
        if not due:
            continue
        escalated = any(count >= settings.escalate_after for count in counts)

        skipped = tuple(a for a in _unique(presidium.get(network.key, ())) if a in bouncing_keys)
        to = _unique(presidium.get(network.key, ()), frozenset(bouncing_keys))
        source: Literal["presidium", "fallback", "admin"] = "presidium"
        if not to and network.fallback_contact and _address_key(network.fallback_contact) not in bouncing_keys:
            to, source = (_address_key(network.fallback_contact),), "fallback"
        if not to:
            to, source = admin_addresses, "admin"
        cc: tuple[str, ...] = ()
        chiefs: tuple[str, ...] = ()
        if escalated:
            configured = [network.school_chief] if network.school_chief else []
            chiefs = _unique([*school_chiefs.get(network.key, ()), *configured], frozenset(bouncing_keys))
            cc = _unique([*chiefs, *admin_addresses], frozenset(bouncing_keys | set(to)))

        ids = [f.id for f in due]
        planned.append(
            PlannedReminder(
                network=network.key,
                to=to,
                cc=cc,
                subject=reminder_subject(network, due),
                findings=tuple(due),
                escalated=escalated,
                dedup_key=f"reminder:{network.key}:{today.isoformat()}:{_items_key(ids)}",
                kind="reminder",
                planned_on=today,
                times_reminded=tuple(counts),
                also_open=tuple(waiting),
                recipients_source=source,
                skipped_bouncing=skipped,
                school_chief_copied=bool(chiefs),
            )
        )

    known = {network.key for network in networks}
    breaches = [
        f
        for f in findings
        if f.state is State.BREACH and f.network in known and ("admin_summary", f.id) not in by_obligation
    ]
    # Minutes waiting to be published (for a person's approval, or a build): listed every working day they wait.
    waiting = [
        f
        for f in findings
        if f.obligation is ObligationKind.PUBLICATION and f.state in (State.OPEN, State.OVERDUE) and f.network in known
    ]
    if (breaches or waiting) and not summarised_today:
        ids = [f.id for f in breaches + waiting]
        parts = []
        if breaches:
            parts.append(f"{len(breaches)} {'avvikelse' if len(breaches) == 1 else 'avvikelser'} i nätverkens uppdrag")
        if waiting:
            parts.append(f"{len(waiting)} att publicera på utbildningskaraborg.se")
        planned.append(
            PlannedReminder(
                network=None,
                to=admin_addresses,
                cc=(),
                subject=f"Sammanställning: {join(parts)}",
                findings=tuple(breaches + waiting),
                escalated=False,
                dedup_key=f"admin_summary:{today.isoformat()}:{_items_key(ids)}",
                kind="admin_summary",
                planned_on=today,
                times_reminded=tuple(0 for _ in breaches + waiting),
            )
        )
    return planned


# --- receipts -------------------------------------------------------------------------------------

# What a receipt can confirm; a mail registered only as a reply or "other" gets no receipt.
RECEIPT_KINDS = frozenset(
    {
        MailKind.MEMBER_LIST,
        MailKind.MEETING_DATES,
        MailKind.MEETING_INVITE,
        MailKind.MEETING_CANCEL,
        MailKind.MINUTES,
        MailKind.DELIVERABLE,
    }
)
# RFC 3834 section 2: never respond to MAILER-DAEMON, "owner-*" or "*-request" addresses; the rest
# are the usual names of robots and of Exchange's system mailboxes that nobody reads.
_ROBOT_LOCAL_PART = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|noreply-.*|bounces?([-+].*)?|owner-.*|.*-request"
    r"|microsoftexchange[0-9a-f]*|root|nobody)$",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*((sv|vb|re|fw|fwd|vs|aw|wg|svar|kvittens)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
SUBJECT_MAX = 150


@dataclass(frozen=True)
class ReceiptRequest:
    """What the intake registered from one mail: everything a receipt says."""

    mail_id: int
    message_id: str | None
    sender_email: str
    sender_name: str | None
    subject: str
    received: datetime  # aware
    network_key: str | None
    network_name: str | None
    kinds: tuple[str, ...]
    members_count: int | None = None
    rejected_rows: tuple[RejectedRow, ...] = ()
    meetings: tuple[MeetingDate, ...] = ()
    cancelled: tuple[date, ...] = ()
    minutes_meeting_date: date | None = None
    minutes_unannounced: bool = False
    deliverable_title: str | None = None
    status: str = "registered"


@dataclass(frozen=True)
class PlannedReceipt:
    request: ReceiptRequest
    to: tuple[str, ...]
    subject: str
    in_reply_to: str | None  # the original Message-ID, without angle brackets
    dedup_key: str
    kind: Literal["receipt"] = "receipt"
    cc: tuple[str, ...] = ()

    @property
    def network(self) -> str | None:
        return self.request.network_key


def single_line(text: str) -> str:
    """Control characters (CR, LF, tab, NUL...) become one space: no text from a mail can add a header."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", text)).strip()


def receipt_subject(original: str) -> str:
    """'Kvittens: <original subject>', without SV:/VB: prefixes, on one line, at most 150 characters."""
    subject = _REPLY_PREFIX.sub("", single_line(original)) or "ditt mejl"
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1].rstrip() + "…"
    return f"Kvittens: {subject}"


def _domain_of(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip(" <>").lower()


def _is_own(address: str, message_id: str | None, own: Sequence[str]) -> bool:
    """The product's own mail: its sender address, or a sender or Message-ID in one of its domains."""
    domain = _domain_of(address)
    mid_domain = _domain_of(message_id) if message_id and "@" in message_id else None
    for item in own:
        item = item.strip().lower()
        if not item:
            continue
        if "@" in item:
            if address == item:
                return True
            continue
        for candidate in (domain, mid_domain):
            if candidate and (candidate == item or candidate.endswith("." + item)):
                return True
    return False


def receipt_refusal(
    request: ReceiptRequest,
    now: datetime,
    settings: ReceiptSettings,
    recent_receipts_to_sender: int,
    own_domains: Sequence[str],
    bouncing: set[str],
) -> str | None:
    """Why `request` gets no receipt (English, for the log and the audit trail), or None if it gets one."""
    if not settings.enabled:
        return "receipts are disabled"
    if request.status != "registered":
        return f"mail status is {request.status}"
    kinds = set(request.kinds)
    if kinds & {MailKind.AUTO_REPLY, MailKind.BULK}:
        return "auto-reply or bulk mail (RFC 3834)"
    if not kinds & RECEIPT_KINDS:
        return "nothing registered that a receipt could confirm"
    if now - request.received > timedelta(days=settings.max_age_days):
        return f"mail older than {settings.max_age_days} days"
    raw = request.sender_email or ""
    if not raw.strip() or _CONTROL.search(raw.strip()):
        return "no valid sender address"
    # Imported for receipts only: `mailbot check` and `remind` start without it.
    from email_validator import EmailNotValidError, validate_email

    try:
        address = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False).normalized.lower()
    except EmailNotValidError:
        return "no valid sender address"
    if _ROBOT_LOCAL_PART.match(address.split("@", 1)[0]):
        return "sender is a robot address (mailer-daemon, postmaster, noreply...)"
    if _is_own(address, request.message_id, own_domains):
        return "the product's own mail"
    if address in {_address_key(a) for a in bouncing}:
        return "sender address bounces"
    if recent_receipts_to_sender >= settings.per_sender_per_hour:
        return f"per-sender limit reached ({settings.per_sender_per_hour} receipts per hour)"
    return None


def plan_receipt(
    request: ReceiptRequest,
    now: datetime,
    settings: ReceiptSettings,
    recent_receipts_to_sender: int,
    own_domains: Sequence[str],
    bouncing: set[str],
) -> PlannedReceipt | None:
    """The receipt for a registered mail, or None (see `receipt_refusal` for the reasons)."""
    if receipt_refusal(request, now, settings, recent_receipts_to_sender, own_domains, bouncing) is not None:
        return None
    from email_validator import validate_email

    address = validate_email(request.sender_email.strip(), check_deliverability=False, allow_smtputf8=False)
    original = request.message_id.strip().strip("<>").strip() if request.message_id else None
    return PlannedReceipt(
        request=request,
        to=(address.normalized.lower(),),
        subject=receipt_subject(request.subject),
        in_reply_to=(single_line(original) or None) if original else None,
        dedup_key=f"receipt:{request.mail_id}",
    )


# --- alerts to the admin --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedAlert:
    """A short mail to the admin: the mailbox is failing or recovered, or a mail could not be delivered."""

    to: tuple[str, ...]
    subject: str
    reason: AlertReason
    details: tuple[tuple[str, str], ...]  # (Swedish label, value), shown as a list
    dedup_key: str
    kind: Literal["alert"] = "alert"
    cc: tuple[str, ...] = ()
    network: str | None = None


def _stamp(moment: datetime | None) -> str:
    """A stable text for a dedup key (UTC, to the second)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else "never"


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    """'måndag 17 mars 2025 kl. 08.00' in the configured zone, for people."""
    if moment is None:
        return "aldrig"
    local = moment.astimezone(tz)
    return f"{long_date(local.date(), weekday=True)} kl. {local:%H.%M}"


def mailbox_failing_alert(
    folder: str,
    error: str,
    failures: int,
    last_good_pass: datetime | None,
    admin: Sequence[str],
    tz: ZoneInfo = STOCKHOLM,
) -> PlannedAlert:
    """Once per failure streak: the key names the last good pass before it (the error must hold no secret)."""
    return PlannedAlert(
        to=_unique(admin),
        subject=f"Larm: brevlådan {single_line(folder)} kan inte läsas",
        reason="mailbox_failing",
        details=(
            ("Mapp", single_line(folder)),
            ("Misslyckade försök i rad", str(failures)),
            ("Senaste fel", single_line(error)),
            ("Senast lyckade läsning", _when(last_good_pass, tz)),
        ),
        dedup_key=f"alert:mailbox_failing:{folder}:{_stamp(last_good_pass)}",
    )


def mailbox_recovered_alert(
    folder: str,
    failures: int,
    last_good_pass_before: datetime | None,
    now: datetime,
    admin: Sequence[str],
    tz: ZoneInfo = STOCKHOLM,
) -> PlannedAlert:
    """Sent when a pass succeeds after a failing-alert; same streak key as the alert it closes."""
    return PlannedAlert(
        to=_unique(admin),
        subject=f"Åtgärdat: brevlådan {single_line(folder)} läses igen",
        reason="mailbox_recovered",
        details=(
            ("Mapp", single_line(folder)),
            ("Misslyckade försök innan", str(failures)),
            ("Läses igen sedan", _when(now, tz)),
        ),
        dedup_key=f"alert:mailbox_recovered:{folder}:{_stamp(last_good_pass_before)}",
    )


def upload_failing_alert(error: str, failures: int, last_upload: datetime | None, admin: Sequence[str],
                         tz: ZoneInfo = STOCKHOLM) -> PlannedAlert:  # fmt: skip
    """Once per failure streak of the public site's upload (keyed, like the mailbox's, by the last good upload)."""
    return PlannedAlert(
        to=_unique(admin),
        subject="Larm: webbplatsen med minnesanteckningar kan inte laddas upp",
        reason="upload_failing",
        details=(
            ("Misslyckade försök i rad", str(failures)),
            ("Senaste fel", single_line(error)),
            ("Senast lyckade uppladdning", _when(last_upload, tz)),
        ),
        dedup_key=f"alert:upload_failing:{_stamp(last_upload)}",
    )


def upload_recovered_alert(failures: int, last_upload_before: datetime | None, now: datetime,
                           admin: Sequence[str], tz: ZoneInfo = STOCKHOLM) -> PlannedAlert:  # fmt: skip
    """Sent when an upload succeeds after a failing-alert; same streak key as the alert it closes."""
    return PlannedAlert(
        to=_unique(admin),
        subject="Åtgärdat: webbplatsen med minnesanteckningar laddas upp igen",
        reason="upload_recovered",
        details=(("Misslyckade försök innan", str(failures)), ("Uppladdad igen", _when(now, tz))),
        dedup_key=f"alert:upload_recovered:{_stamp(last_upload_before)}",
    )


def delivery_failed_alert(
    outbound_id: int, kind: str, recipients: str, subject: str, error: str, admin: Sequence[str]
) -> PlannedAlert:
    """One per failed outbound mail; never for an alert itself (no loops)."""
    what = {"reminder": "påminnelse", "receipt": "kvittens", "admin_summary": "sammanställning"}.get(kind, kind)
    return PlannedAlert(
        to=_unique(admin),
        subject=f"Larm: en {what} kunde inte levereras",
        reason="delivery_failed",
        details=(
            ("Utskick", f"{what} nr {outbound_id}"),
            ("Till", single_line(recipients)),
            ("Ämne", single_line(subject)),
            ("Fel", single_line(error)),
        ),
        dedup_key=f"alert:delivery_failed:{outbound_id}",
    )


Planned = PlannedReminder | PlannedReceipt | PlannedAlert
