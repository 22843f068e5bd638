"""The working-day calendar behind 公示: Chinese holidays, make-up working days, and a union's per-year file."""

import datetime as dt

import pytest

from activities.hardship import HardshipActivities
from rules import workdays
from rules.workdays import CalendarError, add_working_days, configured_overrides, is_working_day, load_overrides


def test_a_notice_starting_before_national_day_2024_ends_on_10_october(engine):
    # Friday 27 Sep; Sunday 29 Sep is a make-up working day; 1-7 Oct are off: 29, 30 Sep, 8, 9, 10 Oct.
    assert not is_working_day(dt.date(2024, 9, 28)) and is_working_day(dt.date(2024, 9, 29))
    assert not is_working_day(dt.date(2024, 10, 7)) and is_working_day(dt.date(2024, 10, 12))  # Saturday, worked
    assert add_working_days(dt.date(2024, 9, 27), 5) == dt.date(2024, 10, 10)
    assert HardshipActivities(engine).hardship_notice_end("2024-09-27", 5) == "2024-10-10"
    assert add_working_days(dt.date(2024, 9, 20), 5) == dt.date(2024, 9, 27)  # an ordinary week


def test_the_shipped_calendar_file_loads():
    assert isinstance(configured_overrides(), dict)
    assert all(isinstance(day, dt.date) and isinstance(working, bool) for day, working in configured_overrides().items())


def test_a_year_the_package_does_not_know(tmp_path, monkeypatch):
    # 2027 is not in chinesecalendar 1.11: Monday-Friday until the union adds the State Council's notice.
    assert is_working_day(dt.date(2027, 10, 1)) is True  # a Friday
    path = tmp_path / "overrides.yaml"
    path.write_text("years:\n  2027:\n    2027-10-01: holiday\n    2027-10-09: working\n", encoding="utf-8")
    days = load_overrides(path)
    assert days == {dt.date(2027, 10, 1): False, dt.date(2027, 10, 9): True}
    monkeypatch.setattr(workdays, "configured_overrides", lambda: days)
    assert not is_working_day(dt.date(2027, 10, 1)) and is_working_day(dt.date(2027, 10, 9))  # Saturday, worked
    assert add_working_days(dt.date(2027, 9, 30), 1) == dt.date(2027, 10, 4)
    assert is_working_day(dt.date(2027, 10, 1), {dt.date(2027, 10, 1): True})  # a caller's override wins


@pytest.mark.parametrize("text", [
    "years:\n  2027:\n    2026-10-01: holiday\n",  # listed under the wrong year
    "years:\n  2027:\n    2027-10-01: off\n",  # neither working nor holiday
    "years:\n  2027:\n    tomorrow: holiday\n",
    "days: {}\n",
])
def test_a_bad_calendar_file_is_refused(tmp_path, text):
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError):
        load_overrides(path)
