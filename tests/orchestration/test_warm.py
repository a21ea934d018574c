"""A worker's warm start: intake's heavy imports, GX suites, mappers and the registry paid once,
before the pool forks, so each task process inherits them."""

from __future__ import annotations

import gc
import os
from datetime import date

from childindex.contracts.contract import contract_names
from tests.helpers import ORG, child, drop, render


def test_warm_builds_every_suite_once_and_freezes_what_it_built(data_dir) -> None:
    from childindex.orchestration.warm import warm
    from childindex.validation.gx.runner import gx_context, gx_suite

    try:
        assert warm() >= 0
        assert gx_context.cache_info().currsize == 1
        assert gx_suite.cache_info().currsize >= len(contract_names())
        assert gc.get_freeze_count() > 0
        assert warm() < 5  # the second time, everything is cached
    finally:
        gc.unfreeze()


def test_a_forked_task_of_a_warm_worker_inherits_it_and_processes_a_file(settings) -> None:
    """What a Celery prefork worker does: warm, then fork a task process per file. The task
    finds GX imported and its context and suites built (benchmarks/bench_file_overhead.py
    measures what that saves)."""
    import sys

    from childindex.index.ledger import Ledger
    from childindex.intake.process import process_file
    from childindex.orchestration.warm import warm
    from childindex.validation.gx.runner import gx_context, gx_suite

    path = drop(settings, "health", render("health", [child(i) for i in range(1, 20)]))
    try:
        warm()
        pid = os.fork()
        if pid == 0:  # the task process
            try:
                inherited = "great_expectations" in sys.modules and gx_context.cache_info().currsize == 1
                built = gx_suite.cache_info().currsize
                r = process_file(settings, ORG["health"], path, date(2026, 11, 24), Ledger(settings.index_url))
                # The suite the file used was already built: no new one.
                same = gx_suite.cache_info().currsize == built
                os._exit(0 if inherited and same and r.outcome == "accepted" else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
    finally:
        gc.unfreeze()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_celery_configuration_is_airflows_plus_the_warm_start() -> None:
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
    from celery.signals import import_modules

    from childindex.orchestration import celery_config

    assert celery_config.CELERY_CONFIG == DEFAULT_CELERY_CONFIG
    assert celery_config.CELERY_CONFIG is not DEFAULT_CELERY_CONFIG
    receivers = [r[1]() for r in import_modules.receivers]
    assert celery_config._warm_worker in receivers
