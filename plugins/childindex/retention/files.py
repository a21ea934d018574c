"""Finding the files a retention rule deletes: by the night in their folder's or their own
name, by the ledger's night for them, and only where neither is known by modification time."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path


def dated_dirs(root: Path | None, pattern: str, cutoff: date, prefix: str) -> Iterable[Path]:
    """Folders named by a night (optionally after a prefix) older than the cutoff."""
    if root is None or not root.exists():
        return []
    found = []
    for d in root.glob(pattern):
        try:
            night = date.fromisoformat(d.name.removeprefix(prefix))
        except ValueError:
            continue
        if d.is_dir() and night < cutoff:
            found.append(d)
    return found


def older_files(root: Path | None, cutoff: date) -> list[Path]:
    if root is None or not root.exists():
        return []
    return older((p for p in root.rglob("*") if p.is_file() and not p.is_symlink()), cutoff)


def older(paths: Iterable[Path], cutoff: date) -> list[Path]:
    """The files among ``paths`` last modified before the cutoff (those still there)."""
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    found = []
    for p in paths:
        try:
            if p.lstat().st_mtime < limit:
                found.append(p)
        except FileNotFoundError:
            continue
    return found


_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def file_night(path: Path) -> date | None:
    """The night in a file's name, if it has one."""
    if m := _DATE_IN_NAME.search(path.name):
        try:
            return date.fromisoformat(m.group(1))
        except ValueError:
            return None
    return None


def files_before(
    root: Path | None, cutoff: date, nights: dict[str, date], *, names_may_lie: bool = False
) -> list[Path]:
    """Files under ``root`` of nights before ``cutoff``. A file's night is the ledger's for
    it or its folder, else the date in its name (reports), else its modification time (a
    file the ledger never knew): never the wall clock where the night is known, so a rerun
    or a simulated clock deletes the same files.

    ``names_may_lie``: the names are an organisation's (receipts and quarantined files carry
    the delivered file's name), so for a file the ledger does not know (a run killed before
    it recorded it) the earlier of its name's date and its modification time counts: a name
    dated years ahead cannot keep it."""
    if root is None or not root.exists():
        return []
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    found = []
    for p in root.rglob("*"):
        # A link (quarantine keeps a delivered symlink as itself) goes like a file, by its own
        # dates, never followed.
        if not (p.is_symlink() or p.is_file()):
            continue
        night = nights.get(str(p)) or nights.get(str(p.parent))
        if night is None and (named := file_night(p)) is not None:
            night = min(named, modified_on(p)) if names_may_lie else named
        if night is not None:
            if night < cutoff:
                found.append(p)
        elif p.lstat().st_mtime < limit:
            found.append(p)
    return found


def modified_on(path: Path) -> date:
    """The day a file (or a link, itself) was last written."""
    return datetime.fromtimestamp(path.lstat().st_mtime, UTC).date()


def remove(path: Path, dry_run: bool) -> int:
    if path.is_dir() and not path.is_symlink():  # a link to a folder goes itself, never its target
        n = sum(1 for p in path.rglob("*") if p.is_file())
        if not dry_run:
            shutil.rmtree(path)
        return n
    if not dry_run:
        path.unlink(missing_ok=True)
    return 1


def prune_empty(root: Path | None, depth: int = 2) -> None:
    """Remove empty folders ``depth`` levels below ``root`` (``<organisation>/<file or night>``,
    and for the archive ``/<hash>``), then the levels above them that are left empty."""
    if root is None or not root.exists():
        return
    for level in range(depth, 1, -1):
        for d in root.glob("/".join("*" * level)):
            if d.is_dir() and not d.is_symlink() and not any(d.iterdir()):
                d.rmdir()
