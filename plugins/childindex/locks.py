"""Locks that keep two runs of one stage apart: an organisation's intake, the index's writers
(linkage, retention, key rotation), notices.

Airflow may run two tries of a task at once (a retry beside a task it thinks is dead, a
manual trigger beside the schedule), and the command line may run beside Airflow. Two
intakes of one organisation shared a temporary path; two linkage runs published the same
children twice. Each such stage runs under :func:`stage_lock`:

- on PostgreSQL, a session advisory lock on the index database, so workers on different
  machines exclude each other (the lock goes with the session if a worker dies);
- on SQLite (one machine), an ``flock`` on ``DATA_DIR/locks/<name>.lock`` (the kernel
  releases it when the holder dies, however it dies).

The second run waits up to ``CHILDINDEX_LOCK_WAIT_SECONDS``, then fails with one line
(:class:`~childindex.errors.StageBusy`, retried by Airflow). Lock names are stage names and
organisation codes, never data.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from childindex.errors import StageBusy

if TYPE_CHECKING:
    from childindex.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
LOCKS_FOLDER = "locks"
# Linkage, retention and key rotation all rewrite the index's records and children: one at a time.
INDEX_LOCK = "index"


@contextmanager
def stage_lock(settings: Settings, name: str, *, wait_seconds: float | None = None) -> Iterator[None]:
    """Hold the lock called ``name`` (e.g. ``intake-RH1``, ``index``) for the block."""
    wait = settings.lock_wait_seconds if wait_seconds is None else wait_seconds
    if settings.index_url.startswith("postgresql"):
        with _advisory_lock(settings.index_url, name, wait):
            yield
    else:
        with _file_lock(settings, name, wait):
            yield


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(f"childindex:{name}".encode()).digest()[:8], "big", signed=True)


def _acquire(attempt: Callable[[], bool], name: str, wait: float) -> None:
    """Try ``attempt`` until it takes the lock; StageBusy, in one line, after ``wait`` s."""
    deadline = time.monotonic() + wait
    while not attempt():
        if time.monotonic() >= deadline:
            raise StageBusy(
                f"another run holds the {name} lock: waited {wait:.0f} s for it (CHILDINDEX_LOCK_WAIT_SECONDS); "
                "nothing was done, and a later try will go ahead"
            )
        time.sleep(POLL_SECONDS)


@contextmanager
def _file_lock(settings: Settings, name: str, wait: float) -> Iterator[None]:
    from childindex.settings import private_dir

    folder = private_dir(settings.data_dir / LOCKS_FOLDER)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)

    def attempt() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    try:
        _acquire(attempt, name, wait)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(url: str, name: str, wait: float) -> Iterator[None]:
    from sqlalchemy import text

    from childindex.index.db import engine_for

    key = advisory_key(name)
    # Its own connection, held for the block and outside any transaction of the stage.
    with engine_for(url).connect() as conn:

        def attempt() -> bool:
            taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one())
            conn.commit()  # no transaction left open while the lock is held or awaited
            return taken

        _acquire(attempt, name, wait)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
