"""Working days on the Chinese calendar: weekends, public holidays and make-up working days (调休).

The calendar comes from the ``chinesecalendar`` package, which carries the State Council's yearly
holiday notices; a union can add or override days per year (``overrides``) when a notice is newer
than the package. Years the package does not know fall back to Monday-Friday.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar


def is_working_day(day: dt.date, overrides: dict[dt.date, bool] | None = None) -> bool:
    if overrides and day in overrides:
        return overrides[day]
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: dt.date, count: int, overrides: dict[dt.date, bool] | None = None) -> dt.date:
    """The date of the ``count``-th working day after ``start`` (``start`` itself does not count)."""
    day, left = start, count
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, overrides):
            left -= 1
    return day
