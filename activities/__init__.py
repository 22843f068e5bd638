"""Temporal activities: every side effect of an application, each idempotent."""

from activities.welfare import WelfareActivities

__all__ = ["WelfareActivities"]
