"""Swedish wording of dates and counts for texts people read (details, reminders, receipts, reports).

Pure formatting; never reads the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo

MONTHS = (
    "januari", "februari", "mars", "april", "maj", "juni",
    "juli", "augusti", "september", "oktober", "november", "december",
)  # fmt: skip
WEEKDAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
WEEKDAY_PLURAL = {
    "monday": "måndagar", "tuesday": "tisdagar", "wednesday": "onsdagar", "thursday": "torsdagar",
    "friday": "fredagar", "saturday": "lördagar", "sunday": "söndagar",
}  # fmt: skip


def long_date(value: date, weekday: bool = False) -> str:
    """'14 mars 2025', or 'fredag 14 mars 2025'."""
    text = f"{value.day} {MONTHS[value.month - 1]} {value.year}"
    return f"{WEEKDAYS[value.weekday()]} {text}" if weekday else text


def day_month(value: date) -> str:
    """'31 januari'."""
    return f"{value.day} {MONTHS[value.month - 1]}"


def join(items: list[str] | tuple[str, ...]) -> str:
    """'Hjo, Skara och Tibro'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " och " + items[-1]


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# --- what the admin reads in a terminal (the --json keys and values stay English) ------------------

STATE_TEXT = {
    "ok": "i fas",
    "open": "ej förfallen",
    "overdue": "försenad",
    "at_risk": "risk",
    "breach": "brott mot uppdraget",
}
OBLIGATION_TEXT = {
    "member_list": "medlemsförteckning",
    "meeting_dates": "mötesdatum",
    "meeting_count": "antal möten",
    "meeting_weekday": "veckodag",
    "minutes": "protokoll",
    "representation": "alla kommuner",
    "commission_revision": "reviderat uppdrag",
    "deliverable": "leverans",
    "publication": "publicering",
}
MAIL_STATUS_TEXT = {"registered": "registrerat", "review": "granskas", "ignored": "ignorerat"}
MAIL_KIND_TEXT = {
    "member_list": "medlemsförteckning",
    "meeting_dates": "mötesdatum",
    "meeting_invite": "kallelse",
    "meeting_cancel": "inställt möte",
    "minutes": "protokoll",
    "deliverable": "leverans",
    "reply": "svar",
    "auto_reply": "autosvar",
    "bulk": "massutskick",
    "other": "övrigt",
}

# Review reasons are written in English by the understanding (logs, --json, tests match them); a person at a
# terminal reads them in Swedish. Each pattern matches a whole reason; its groups fill the Swedish text.
# A reason that no pattern knows is shown as it is, never dropped.
_REVIEW_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.S), text)
    for pattern, text in (
        (r"sender (\S+) is not a member of (\S+)", "avsändaren {0} är inte medlem i {1}"),
        (r"sender (\S+) is not in the presidium of (\S+) and may not replace its member list or dates",
         "avsändaren {0} ingår inte i presidiet för {1} och får inte ersätta medlemsförteckningen eller datumen"),
        (r"nothing recognised to register", "inget att registrera kändes igen"),
        (r"a reply to our mail with nothing to register", "ett svar på vårt mejl utan något att registrera"),
        (r"no subject, text or attachment", "mejlet har varken ämne, text eller bilaga"),
        (r"no network named and the sender is not in any member list",
         "inget nätverk nämns och avsändaren finns inte i någon medlemsförteckning"),
        (r"no network named and the sender belongs to (.+)", "inget nätverk nämns och avsändaren ingår i {0}"),
        (r"the mail says it has minutes but no minutes document was found",
         "mejlet säger att protokoll finns med, men inget protokoll hittades"),
        (r"the mail says it has meeting dates but no date could be read",
         "mejlet säger att det innehåller mötesdatum, men inget datum gick att läsa"),
        (r"the mail says it is a member list but no list with names and e-mail addresses was found",
         "mejlet säger att det är en medlemsförteckning, men ingen lista med namn och e-postadresser hittades"),
        (r"minutes date not found in (.+?) \(subject, file name or heading\)",
         "protokollets datum hittades inte i {0} (ämne, filnamn eller rubrik)"),
        (r"minutes date unclear in (.+?): (.+)", "protokollets datum är oklart i {0}: {1}"),
        (r"minutes date (\S+) is after the mail was sent", "protokollets datum {0} ligger efter att mejlet skickades"),
        (r"the member list is for (.+), which ended before the mail was sent",
         "medlemsförteckningen gäller {0}, som var slut innan mejlet skickades"),
        (r"the period of the member list is unclear: (.+)", "vilken period medlemsförteckningen gäller är oklart: {0}"),
        (r"could not be read within (\S+) s\b.*", "mejlet gick inte att läsa inom {0} s"),
        (r"could not be read within the memory budget.*", "mejlet krävde mer minne än tillåtet för att läsas"),
        (r"over-size mail \((\d+) bytes.*", "mejlet är för stort ({0} byte) och har inte lästs"),
    )
)  # fmt: skip


def review_reason_text(reason: str) -> str:
    """The Swedish wording of an English review reason (the English one when no pattern knows it)."""
    for pattern, text in _REVIEW_REASONS:
        match = pattern.fullmatch(reason.strip())
        if match:
            return text.format(*match.groups())
    return reason


def local_time_text(value: str | datetime | None, tz: tzinfo) -> str:
    """'2025-11-14 10.00' in the configured time zone, from an aware datetime or its ISO 8601 text."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the registry stores UTC
    return moment.astimezone(tz).strftime("%Y-%m-%d %H.%M")
