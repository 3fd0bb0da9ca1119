"""Swedish working days: Monday to Friday, less the public holidays and the eves offices take off.

Pure (a date in, a yes or no out) and small: `mailbot check` and the worker's clock ask it without importing the
planning of reminders (mailbot/remind.py), which needs the understanding's types.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import holidays

from registry.lone_module import load_alone


@lru_cache(maxsize=1)
def _sweden() -> type[holidays.HolidayBase]:
    """holidays.Sweden without the other countries. `holidays.Sweden` imports the package holidays.countries,
    whose __init__ imports every one of its 250 countries (a fifth of a second, in `mailbot check`, `remind` and
    the worker); sweden.py itself needs only holidays' base modules. So it is loaded alone, under its own name:
    a later import of holidays.countries finds it in sys.modules and uses the same class. Should the package's
    layout ever change, `holidays.Sweden` as before."""
    module = load_alone("holidays.countries.sweden", Path(holidays.__file__).parent / "countries" / "sweden.py")
    return module.Sweden if module is not None else holidays.Sweden  # type: ignore[no-any-return]


@lru_cache(maxsize=64)
def _days_off(year: int) -> frozenset[date]:
    # "public" are the red days; "de_facto" adds midsommarafton, julafton and nyårsafton, which
    # Swedish offices (and the municipalities) treat as days off although no law says so.
    calendar = _sweden()(years=year, categories=("public", "de_facto"))
    return frozenset(calendar.keys())


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a Swedish public holiday, midsommarafton, julafton or nyårsafton."""
    # Weekends first: older releases of `holidays` list every Sunday as a holiday ("Söndag"),
    # newer ones do not; either way a Sunday is not a working day, so the answer never depends on it.
    if day.weekday() >= 5:
        return False
    return day not in _days_off(day.year)
