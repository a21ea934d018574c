"""Celery configuration for childindex's Airflow workers: Airflow's own, plus a warm start.

Point Airflow at it (every component, so the scheduler and the workers agree)::

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=childindex.orchestration.celery_config.CELERY_CONFIG

Each worker then imports Great Expectations and builds every contract's suite once, when it
starts and before its pool forks (:func:`childindex.orchestration.warm.warm`), and every task
process inherits them: a file's fixed cost falls from about 9 s to under 1 s here
(benchmarks/bench_file_overhead.py). Only workers pay it: the signal never fires in the
scheduler or the API server, which import this module for the configuration alone.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules  # type: ignore[import-untyped]

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@import_modules.connect
def _warm_worker(*args: Any, **kwargs: Any) -> None:
    """In the worker's main process, before the pool forks: tasks inherit the result."""
    from childindex.orchestration.warm import warm

    warm()
