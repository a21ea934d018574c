"""Receiving a drop-folder entry: its bytes read once, into a private copy, hashed as read.

Everything after (the duplicate check, validation, staging, the archive) uses that copy, so
the bytes hashed are the bytes loaded and the bytes kept: a file still being written after
its completion marker cannot be hashed on a prefix and staged in full. An entry that
changed while it was read, or by the time intake finishes, is quarantined.

An entry that is not a regular file of its own (a symbolic link, a hard link, a FIFO, a
device, a folder), that cannot be read (permissions) or that vanished is never read: it is
described by a rule, and intake gives it a receipt and goes on with the next file.

Also here: keeping a copy without ever overwriting one (the archive and quarantine), the
translation of a full disk into one clear error, and the removal of what a killed intake
left behind (:func:`clear_debris`). Names, sizes and rules only: never a byte of a file.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from childindex.errors import DiskFull, FileRejected, is_disk_full
from childindex.settings import private_dir

if TYPE_CHECKING:
    from childindex.settings import Settings

log = logging.getLogger(__name__)

BLOCK = 1 << 20
TMP_SUFFIX = ".tmp"  # every temporary file intake writes ends so, and starts with a dot


@dataclass(frozen=True)
class Received:
    """A drop-folder entry as read: its private copy (None when it could not be read), the
    SHA-256 of the copy's bytes (of the entry's kind and name when there is no copy), and the
    rule that rejects it outright, if any."""

    entry: Path
    copy: Path | None
    sha256: str
    size: int
    problem: FileRejected | None = None
    identity: tuple[int, int, int, int] | None = None  # (device, inode, size, mtime ns) when read

    def unchanged(self) -> bool:
        """Whether the entry is still the file that was read (same inode, size and time)."""
        if self.identity is None:
            return True
        try:
            st = os.lstat(self.entry)
        except OSError:
            return False
        return _identity(st) == self.identity


def intake_folder(settings: Settings, organisation: str) -> Path:
    """The organisation's private work folder: copies and validation databases of files in
    progress. Only its own intake (under its lock) uses it, so whatever is there when an
    intake starts was left by one that was killed."""
    return settings.work_dir / f"intake-{organisation}"


def receive(entry: Path, folder: Path) -> Received:
    """Copy ``entry`` into a new folder under ``folder``, hashing the bytes as they are read.

    Never follows a link and never blocks on a FIFO. DiskFull when the copy cannot be
    written (the partial copy is removed)."""
    name = entry.name
    try:
        st = os.lstat(entry)
    except FileNotFoundError:
        return _refused(entry, "vanished", "the file was removed from the drop folder before it could be read")
    except OSError as exc:
        return _refused(entry, "unreadable_file", f"the file could not be examined ({_errno_name(exc)})")
    if stat.S_ISLNK(st.st_mode):
        # "symlink:<name>" as before, so the ledger recognises the same link on a later night.
        link = "the drop folder entry is a symbolic link; links are never followed"
        return _refused(entry, "symlink", link, "symlink")
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a pipe, socket or device"
        return _refused(entry, "not_a_file", f"the drop folder entry is {kind}, not a file; it is never read")
    if st.st_nlink > 1:
        return _refused(
            entry,
            "hard_link",
            "the drop folder entry is a hard link (the file has another name); links are never followed",
        )
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return _refused(entry, "vanished", "the file was removed from the drop folder before it could be read")
    except OSError as exc:
        return _refused(entry, "unreadable_file", f"the file could not be opened ({_errno_name(exc)})")
    copy = folder / uuid.uuid4().hex / name
    digest = hashlib.sha256()
    size = 0
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or (before.st_dev, before.st_ino) != (st.st_dev, st.st_ino):
            return _refused(entry, "changed_during_intake", "the drop folder entry was replaced while it was read")
        with disk_step("copying the file to intake's work folder", folder):
            private_dir(copy.parent)
            out = _new_file(copy)
            try:
                while block := os.read(fd, BLOCK):
                    digest.update(block)
                    size += len(block)
                    view = memoryview(block)
                    while view:
                        view = view[os.write(out, view) :]
            finally:
                os.close(out)
        after = os.fstat(fd)
    except OSError as exc:
        shutil.rmtree(copy.parent, ignore_errors=True)
        return _refused(entry, "unreadable_file", f"the file could not be read ({_errno_name(exc)})")
    except BaseException:
        shutil.rmtree(copy.parent, ignore_errors=True)
        raise
    finally:
        os.close(fd)
    problem = None
    if _identity(before) != _identity(after) or size != after.st_size:
        problem = FileRejected(
            "changed_during_intake",
            "the file changed while it was read (it was still being written after its completion marker)",
        )
    return Received(entry, copy, digest.hexdigest(), size, problem, _identity(after))


def _refused(entry: Path, rule: str, detail: str, kind: str | None = None) -> Received:
    """An entry never read: keyed in the ledger by its kind and name (no bytes to hash)."""
    sha = hashlib.sha256(f"{kind or rule}:{entry.name}".encode()).hexdigest()
    return Received(entry, None, sha, 0, FileRejected(rule, detail))


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _errno_name(exc: OSError) -> str:
    """The error's symbolic name (EACCES): never its message, which quotes the path."""
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


# --------------------------------------------------------------------------- keeping copies


def keep_copy(source: Path, dest: Path) -> bool:
    """Give ``source``'s bytes the name ``dest`` unless that name exists: never overwrites.

    A hard link where both are on one file system (no copy, atomic), else a copy under a
    temporary name, synced, then linked into place. False when ``dest`` already existed
    (archive and quarantine names carry the hash, so it holds these very bytes)."""
    private_dir(dest.parent)
    try:
        os.link(source, dest)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        with source.open("rb") as src, open(_new_file(tmp), "wb") as out:
            shutil.copyfileobj(src, out, BLOCK)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, dest)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _new_file(path: Path) -> int:
    """A new file, private to this user, never an existing one nor through a link."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def move_entry(entry: Path, dest: Path) -> bool:
    """Rename a drop-folder entry (a link as itself, never followed) to ``dest`` unless that
    exists; False, leaving it in place, when it cannot be moved without copying."""
    private_dir(dest.parent)
    if os.path.lexists(dest):
        entry.unlink(missing_ok=True)
        return True
    try:
        os.rename(entry, dest)
        return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("could not move drop folder entry %s to %s (%s)", entry.name, dest.parent, _errno_name(exc))
        return False


# --------------------------------------------------------------------------- full disks


@contextmanager
def disk_step(step: str, folder: Path) -> Iterator[None]:
    """A full disk inside the block becomes one DiskFull line naming the step and folder;
    the caller removes what the step wrote."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFull(
                f"no space left on the disk holding {folder} while {step}: what this step wrote was removed and "
                "nothing was recorded; the file stays in the drop folder and is taken again once there is space"
            ) from None
        raise


# --------------------------------------------------------------------------- debris


def clear_debris(settings: Settings, organisation: str, staged: set[str]) -> int:
    """Remove what a killed intake of ``organisation`` left: its work folder's contents,
    temporary files in its staging, archive, quarantine and outbox folders, and staging files
    no ledger row names (``staged``: every staged path the ledger holds). Call only under the
    organisation's intake lock; returns how many files went."""
    removed = clear_work(intake_folder(settings, organisation))
    for path in debris(settings, organisation, staged):
        removed += _remove(path)
    if removed:
        log.warning("intake %s: removed %d file(s) an interrupted intake left behind", organisation, removed)
    return removed


def clear_work(work: Path) -> int:
    """Empty the organisation's work folder (copies of files in progress); how many files went."""
    return sum(_remove(child) for child in work.iterdir()) if work.is_dir() else 0


def debris(settings: Settings, organisation: str, staged: set[str]) -> list[Path]:
    """Temporary files and unledgered staging files of one organisation (see clear_debris)."""
    found = _staging_debris(settings.staging_dir / f"organisation={organisation}", _staged_keys(staged))
    roots = [settings.archive_dir / organisation, settings.quarantine_dir / organisation]
    if organisation in settings.registry.by_code:
        roots.append(settings.outbox(organisation))
    return found + temporary_files(roots)


def all_debris(settings: Settings, staged: set[str], outboxes: list[Path]) -> list[Path]:
    """What interrupted runs left anywhere: every organisation's (registered or not) temporary
    files and unledgered staging files, and temporary files in every outbox and the reports."""
    found: list[Path] = []
    if settings.staging_dir.is_dir():
        known = _staged_keys(staged)
        for folder in settings.staging_dir.glob("organisation=*"):
            found += _staging_debris(folder, known)
    return found + temporary_files([settings.archive_dir, settings.quarantine_dir, settings.reports_dir, *outboxes])


def temporary_files(roots: list[Path]) -> list[Path]:
    """Files named as childindex names its temporary files (``.<name>.<random>.tmp``)."""
    return [p for root in roots if root.is_dir() for p in root.rglob(f".*{TMP_SUFFIX}") if p.is_file()]


def _staged_keys(staged: set[str]) -> set[tuple[str, ...]]:
    """The ledger's staging files by their path below the staging folder: a data directory
    moved elsewhere keeps its files."""
    return {staged_key(Path(p)) for p in staged}


def _staging_debris(folder: Path, known: set[tuple[str, ...]]) -> list[Path]:
    """In one organisation's staging folder: anything but a staging file the ledger names."""
    if not folder.is_dir():
        return []
    return [
        p for p in folder.glob("night=*/*") if p.is_file() and (p.suffix != ".parquet" or staged_key(p) not in known)
    ]


def staged_key(path: Path) -> tuple[str, ...]:
    """``(organisation=<code>, night=<night>, <file>)``: a staging file wherever the folder is."""
    return path.parts[-3:]


def _remove(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        n = sum(1 for p in path.rglob("*") if not p.is_dir())
        shutil.rmtree(path, ignore_errors=True)
        return n
    path.unlink(missing_ok=True)
    return 1
