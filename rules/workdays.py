"""Working days on the Chinese calendar: weekends, public holidays and make-up working days (调休).

The calendar comes from the ``chinesecalendar`` package, which carries the State Council's yearly
holiday notices. A union adds or corrects days per year in ``rules/calendar/overrides.yaml`` when a
notice is newer than the package; a caller may pass further ``overrides`` (they win over the file).
Years that neither knows fall back to Monday-Friday.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import chinese_calendar
import yaml

OVERRIDES_FILE = Path(__file__).resolve().parent / "calendar" / "overrides.yaml"
_KINDS = {"working": True, "holiday": False}


class CalendarError(ValueError):
    pass


def load_overrides(path: Path | str = OVERRIDES_FILE) -> dict[dt.date, bool]:
    """The per-year day list of a calendar file: date → working (True) or holiday (False)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or set(raw) - {"years"}:
        raise CalendarError(f"{path}: expected one top-level key, 'years'")
    days: dict[dt.date, bool] = {}
    for year, entries in (raw.get("years") or {}).items():
        if not isinstance(year, int):
            raise CalendarError(f"{path}: year {year!r} is not a year")
        for day, kind in (entries or {}).items():
            if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
                raise CalendarError(f"{path}: {day!r} under {year} is not a date (write YYYY-MM-DD)")
            if day.year != year:
                raise CalendarError(f"{path}: {day} is listed under {year}")
            if kind not in _KINDS:
                raise CalendarError(f"{path}: {day}: {kind!r} is neither 'working' nor 'holiday'")
            days[day] = _KINDS[kind]
    return days


@cache
def configured_overrides() -> dict[dt.date, bool]:
    """The union's calendar file, read once per process."""
    return load_overrides(OVERRIDES_FILE)


PACKAGE_YEARS = frozenset(day.year for day in chinese_calendar.holidays)  # the notices the package carries


def is_working_day(day: dt.date, overrides: dict[dt.date, bool] | None = None) -> bool:
    if overrides and day in overrides:
        return overrides[day]
    configured = configured_overrides()
    if day in configured:
        return configured[day]
    if day.year in PACKAGE_YEARS:
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5  # a year the package does not know yet: Monday to Friday


def add_working_days(start: dt.date, count: int, overrides: dict[dt.date, bool] | None = None) -> dt.date:
    """The date of the ``count``-th working day after ``start`` (``start`` itself does not count)."""
    day, left = start, count
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, overrides):
            left -= 1
    return day
