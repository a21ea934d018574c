"""Paying intake's fixed cost once per worker, not once per file.

Airflow runs each task in a process forked from its worker (the Celery worker's pool
process, via the task supervisor): whatever the worker has imported and built before the
fork, the task inherits for free. Importing Great Expectations and building its context
and every contract's suite takes 6-8 s here; a file of a few hundred rows then takes under
a second. With hundreds of organisations a night, paying that per file would dominate the
night, so :func:`warm` does it once in each worker, before any task runs
(:mod:`childindex.orchestration.celery_config` hooks it into Celery's start-up).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def warm() -> float:
    """Import intake's and linkage's heavy libraries, build the GX context and every contract's suite,
    configure the index's ORM mappers and read the organisations registry in this process;
    returns the seconds it took. Safe to call twice (all cached)."""
    import gc

    started = time.perf_counter()
    import duckdb  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import splink  # noqa: F401 - with pandas: about 1.5 s the linkage task would pay each night
    from sqlalchemy.orm import configure_mappers

    import childindex.index.ledger  # noqa: F401
    import childindex.intake.process  # noqa: F401
    import childindex.linkage.night  # noqa: F401
    import childindex.orchestration.tasks  # noqa: F401
    from childindex.contracts.contract import contract_names
    from childindex.errors import ChildindexError
    from childindex.settings import load_settings
    from childindex.validation.gx.runner import gx_context, gx_suite

    gx_context()
    for name in contract_names():
        gx_suite(name)
    # A task's first query would otherwise configure every mapper SQLAlchemy knows
    # (Airflow's too): about a second, per task.
    configure_mappers()
    try:
        load_settings().registry  # noqa: B018 - parsed once here, cached for every task (re-read if edited)
    except ChildindexError as exc:  # a broken configuration: each task reports it in full
        log.warning("childindex: warm start could not read the settings or registry: %s", exc)
    # Everything so far lives as long as the worker: keep it out of the collector's way, so
    # a task's gc.collect() (GX's DuckDB connections) does not walk it all again.
    gc.collect()
    gc.freeze()
    seconds = time.perf_counter() - started
    log.info("childindex: intake's libraries and GX suites ready in this worker (%.1f s)", seconds)
    return seconds
