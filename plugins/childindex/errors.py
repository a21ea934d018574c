"""One error hierarchy: what went wrong, in which stage, on which night, and whether trying
again can help.

- :class:`TerminalError`: retrying cannot help (a bad extract, a contract or key mismatch,
  a configuration error, a bug). Airflow fails the task at once; the CLI exits 1 or 2.
- :class:`TransientError`: the same work may succeed later (the index database unreachable
  or locked). Airflow retries with exponential backoff.

Airflow decides retries from these two classes through the task SDK's retry policy
(:func:`childindex.orchestration.defaults.retry_policy`); the CLI maps classes to exit codes
in one place (:mod:`childindex.cli.app`). A message names stages, files, columns, rows and
rules, never a value from a file.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date


class ChildindexError(Exception):
    """Base of every error childindex raises on purpose; carries its stage and night."""

    stage = "childindex"

    def __init__(self, message: str, *, stage: str | None = None, night: date | None = None) -> None:
        super().__init__(message)
        self.message = message
        if stage is not None:
            self.stage = stage
        self.night = night

    @property
    def where(self) -> str:
        """``stage`` or ``stage, night D``: for logs and notifications."""
        return f"{self.stage}, night {self.night.isoformat()}" if self.night else self.stage


class TerminalError(ChildindexError):
    """Will not fix itself: fail now, no retry."""


class TransientError(ChildindexError):
    """May pass: retry with backoff."""


# --------------------------------------------------------------------------- terminal


class SettingsError(TerminalError):
    """Configuration is missing or invalid; the message names every setting at fault."""

    stage = "settings"


class UsageError(TerminalError):
    """A command was asked for something that is not there (an unknown item, no match)."""

    stage = "cli"


class ContractError(TerminalError):
    """A contract file is malformed or breaks the whitelist, or no contract has that name."""

    stage = "contracts"


class RegistryError(TerminalError):
    """The organisations registry is unreadable or broken, or names no such organisation;
    the message names each entry (position and code) and field at fault."""

    stage = "organisations"


class FileRejected(TerminalError):
    """The whole file is unusable; ``rule`` and ``detail`` go into the receipt (never a value).

    One rejection may carry several problems found together (``problems``: (rule, detail)
    pairs, this one's first), so the sender can fix them all in one go.
    """

    stage = "validation"

    rule: str
    detail: str

    def __init__(self, rule: str, detail: str, *, also: Sequence[FileRejected] = ()) -> None:
        more = f" (and {len(also)} more: {', '.join(p.rule for p in also)})" if also else ""
        super().__init__(f"{rule}: {detail}{more}")
        self.rule = rule
        self.detail = detail
        self.problems: list[tuple[str, str]] = [(rule, detail), *((p.rule, p.detail) for p in also)]

    @classmethod
    def together(cls, problems: Sequence[FileRejected]) -> FileRejected:
        """One rejection for every problem in ``problems`` (at least one), in order."""
        first, *rest = problems
        return cls(first.rule, first.detail, also=rest)


class ValidationEnginesDisagree(TerminalError):
    """GX and the DuckDB rules counted a rule differently, or GX returned values: a bug."""

    stage = "validation"


class KeyMismatch(TerminalError):
    """The configured key is not the one the index's pseudonyms were made with."""

    stage = "keys"


class RotationRefused(TerminalError):
    """A key rotation cannot go ahead; nothing was changed. The message says what to do."""

    stage = "keys"


class NotEnoughRecords(TerminalError):
    """Too few records to train a linkage model on."""

    stage = "linkage"


class LinkageOutOfMemory(TerminalError):
    """Linkage needed more memory than its limit and could not spill it; nothing was published.
    The same night with the same settings would run out again."""

    stage = "linkage"


class TrainingImpossible(TerminalError):
    """The records hold too little to estimate some comparison of the linkage model (no
    blocking rule gives enough pairs that leave it free)."""

    stage = "linkage"


class UnsafePath(TerminalError):
    """A path to read or write leaves its folder, or passes through a symbolic link or a hard
    link, where childindex reads or writes only real files in real folders. The message names
    the folder and the file's name, never what the file holds or where a link points."""

    stage = "files"


# --------------------------------------------------------------------------- transient


class IndexUnavailable(TransientError):
    """The index database could not be reached, or was locked, or ran out of resources."""

    stage = "index"


class StageBusy(TransientError):
    """Another run of the same stage (an organisation's intake, linkage, notices) holds its
    lock (:mod:`childindex.locks`); nothing was done, and a later try goes ahead."""


class DiskFull(TransientError):
    """A disk filled up (no space, over quota, or over linkage's spill budget) while a step
    wrote; what that step wrote was removed and nothing was recorded, so a retry after space
    is freed starts clean."""


# PostgreSQL SQLSTATE classes and codes that say "try again": connection exceptions (08),
# insufficient resources (53), operator intervention (57P: restarts, shutdowns), and
# serialisation failures, deadlocks and lock time-outs.
_PG_TRANSIENT_CLASSES = ("08", "53", "57P")
_PG_TRANSIENT_CODES = ("40001", "40P01", "55P03")
# SQLite says so in words (they hold no value): a lock, a busy database, a file it cannot open.
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open database", "disk i/o error")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a database driver's error, usually) may pass if the work is retried."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, ChildindexError):
        return False
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # the connection pool waited in vain, or the connection dropped
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if hasattr(exc.orig, "sqlstate"):  # psycopg
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate is None:  # no answer from a server at all: refused, unreachable, timed out
            return isinstance(exc, sa_exc.OperationalError)
        return sqlstate.startswith(_PG_TRANSIENT_CLASSES) or sqlstate in _PG_TRANSIENT_CODES
    if isinstance(exc, sa_exc.OperationalError):  # sqlite3
        text = str(exc.orig).lower()
        return any(words in text for words in _SQLITE_TRANSIENT)
    return False


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# What DuckDB, SQLite and Arrow say when a disk fills (they do not always set errno).
_NO_SPACE_WORDS = ("no space left on device", "disk quota exceeded", "database or disk is full", "file too large",
                   "max_temp_directory_size", "temporary directory size")  # fmt: skip


# SQLite's codes for a full disk: SQLITE_FULL, and, in WAL mode, the shared-memory file that
# cannot grow (its message says only "disk I/O error").
_SQLITE_FULL = ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, a DuckDB, Arrow or database driver error) says a disk is full."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    seen: BaseException | None = exc
    for _ in range(4):  # the error, and what it wraps (SQLAlchemy keeps the driver's in .orig)
        if seen is None:
            break
        text = str(seen).lower()
        if any(words in text for words in _NO_SPACE_WORDS) or getattr(seen, "sqlite_errorname", "") in _SQLITE_FULL:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


@contextmanager
def stage_errors(stage: str, night: date | None = None, index_url: Callable[[], str] | None = None) -> Iterator[None]:
    """Errors raised inside carry ``stage`` and ``night``; a database error that may pass
    becomes :class:`IndexUnavailable` (so Airflow retries it), and a full disk anywhere
    :class:`DiskFull` (retried too, once there may be space). Their messages name the
    exception's type only: a driver's message can quote a bound value.

    ``index_url`` gives the index's URL (asked only when a database error needs it: the
    stage loads its settings inside). With it, a failure to connect says what failed, as the
    command line does: refused, the login, the database missing, the host unknown
    (:func:`childindex.index.db.connection_failure`, password masked). Failing to connect is
    retried, whichever it was: a login or a database may be put right while the task waits.
    """
    try:
        yield
    except ChildindexError as exc:
        if exc.night is None:
            exc.night = night
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFull(
                f"a disk is full (or over its quota, or over linkage's spill budget) during {stage} "
                f"({type(exc).__name__}); free space and the task is retried",
                stage=stage,
                night=night,
            ) from None
        why = _connection_failure(exc, index_url)
        if why is not None:
            raise IndexUnavailable(
                f"the index database: {why}; check CHILDINDEX_INDEX_URL; it is retried ({type(exc).__name__})",
                stage=stage,
                night=night,
            ) from exc
        if is_transient(exc):
            raise IndexUnavailable(
                f"the index database is unavailable or busy ({type(exc).__name__}); it is retried",
                stage=stage,
                night=night,
            ) from exc
        raise


def _connection_failure(exc: BaseException, index_url: Callable[[], str] | None) -> str | None:
    """What failed connecting to the index, in words; None when ``exc`` is no failure to
    connect, or where the index is cannot be told."""
    from sqlalchemy.exc import OperationalError

    # A server that answered a statement gives its SQLSTATE (a statement time-out, say);
    # failing to connect gives none.
    if index_url is None or not isinstance(exc, OperationalError) or getattr(exc.orig, "sqlstate", None):
        return None
    from childindex.index.db import connection_failure

    try:
        url = index_url()
    except Exception:  # noqa: BLE001 - unknown settings: the error is told as it is
        return None
    return connection_failure(exc, url)
