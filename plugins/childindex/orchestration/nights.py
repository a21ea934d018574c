"""Which night a DAG run serves: extracts named for day D are processed early on D+1."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any


def night_of(moment: datetime | None) -> date:
    """The night a run serves: extracts named for day D are processed early on D+1."""
    if moment is None:
        raise ValueError("a run needs a logical date or run_after to know its night")
    day = (moment - timedelta(days=1)).date()
    return date(day.year, day.month, day.day)  # a plain date: drivers cannot bind pendulum's


def context_night(context: Mapping[str, Any]) -> date:
    """Night of the running task, from its logical date or (asset-triggered) run_after."""
    dag_run = context["dag_run"]
    return night_of(context.get("logical_date") or dag_run.run_after)


def context_day(context: Mapping[str, Any]) -> date:
    """The calendar day a run is for (retention's "today")."""
    return context_night(context) + timedelta(days=1)
