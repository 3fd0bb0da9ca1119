"""Swedish wording of dates and counts for texts people read (details, reminders, receipts, reports).

Pure formatting; never reads the clock.
"""

from __future__ import annotations

from datetime import date

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
