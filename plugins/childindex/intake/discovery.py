"""Finding the files in organisations' drop folders whose upload is complete.

Each organisation signals completion as its contract says: a ``.done`` marker beside the
file, or an upload under a ``.part`` name renamed when it is whole. A file still being
uploaded is never read: half a file would be rejected (or worse, accepted short). It is
not ignored in silence either: :func:`scan_drop_folder` counts the files waiting for their
completion and how long the oldest has waited, so that intake, the night summary and the
report tell an organisation whose file is still arriving (or stuck, past
``CHILDINDEX_MARKER_WAIT_HOURS``) from one that sent nothing.

A folder under the drop root that belongs to no registered organisation is never read and
never touched: :func:`unregistered_drops` reports it (by folder name and file count) so an
operator registers the organisation or removes the folder.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from childindex.contracts.contract import load_contract
from childindex.settings import Settings

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"
# Night metrics intake writes per organisation (``intake_waiting:<code>:files|stuck|oldest_hours``),
# from which the night summary tells an organisation whose file waits from one that sent nothing.
WAITING_METRIC = "intake_waiting:"

log = logging.getLogger(__name__)


def pending_files(settings: Settings, organisation: str) -> list[Path]:
    """Files in the organisation's drop folder whose upload is complete under its contract's
    convention (:func:`scan_drop_folder`'s ``complete``)."""
    return scan_drop_folder(settings, organisation).complete


def pending_everywhere(settings: Settings) -> list[tuple[str, Path]]:
    """(organisation code, file) of every complete file in every registered drop folder, in
    registry order: what tonight's intake fans out over."""
    return [(org.code, path) for org in settings.registry.organisations for path in pending_files(settings, org.code)]


@dataclass(frozen=True)
class Waiting:
    """An organisation's files whose upload is not complete yet (no completion marker, or
    still named ``.part``): how many, the longest wait, and how many have waited past
    ``CHILDINDEX_MARKER_WAIT_HOURS`` (stuck). Counts and hours only, never a name: a name the
    organisation chose could hold anything."""

    completion: str  # the contract's convention: "marker" or "rename"
    files: int = 0
    oldest_hours: float = 0.0
    stuck: int = 0
    stuck_after_hours: float = 0.0

    def describe(self) -> str:
        """One line, e.g. "1 file waiting for its completion marker (oldest 3 h)"."""
        if not self.files:
            return "no file waiting for its completion"
        one = self.files == 1
        files = n_files(self.files)
        if self.completion == "marker":
            what = "waiting for its completion marker" if one else "waiting for their completion markers"
        else:
            what = "waiting to be renamed from .part (the upload's last step)"
        line = f"{files} {what} (oldest {format_wait(self.oldest_hours)})"
        if self.stuck:
            line += (
                f"; {self.stuck} waiting longer than {format_wait(self.stuck_after_hours)} "
                "(CHILDINDEX_MARKER_WAIT_HOURS): stuck, ask the sender to finish or resend the upload"
            )
        return line


def n_files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def format_wait(hours: float) -> str:
    """A wait in words: minutes under an hour, hours under two days, else days."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


@dataclass(frozen=True)
class DropFolder:
    """What an organisation's drop folder holds tonight: the complete entries, which intake
    takes, and the files still waiting for their upload to complete."""

    complete: list[Path]
    waiting: Waiting
    unfinished: list[Path]  # the waiting files themselves: for retention, never for a log


def scan_drop_folder(settings: Settings, organisation: str, now: float | None = None) -> DropFolder:
    """The organisation's drop folder, sorted into complete entries and waiting files.

    Complete: every entry whose upload is complete under the contract's convention, whatever
    it is (a symlink, never followed; a pipe; a file intake may not read; a folder with a
    completion marker), so that intake gives it a receipt and goes on, as it does for files
    that do not match the contract's name pattern. Waiting: every other file (or link) that is
    not a marker and not hidden: no ``.done`` marker yet, or still named ``*.part``. A file
    waits since it last changed: its status-change time (``now`` minus it, never below 0),
    which an upload tool cannot set, unlike a modification time a copy may have preserved or
    a wrong clock put in the future. A folder without a marker is left alone.
    """
    contract = load_contract(settings.registry.get(organisation).contract)
    completion = contract.file.completion
    stuck_after = float(settings.marker_wait_hours)
    nothing = DropFolder([], Waiting(completion, stuck_after_hours=stuck_after), [])
    folder = settings.drop_folder(organisation)
    if folder.is_symlink():
        # Whoever can write the drop root could point one organisation's folder at another's
        # (or anywhere): a drop folder is a real folder, or it is not read.
        log.warning("drop folder of %s is a symbolic link: never read, and its files wait", organisation)
        return nothing
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:  # a folder intake may not read: said once, and the others go on
        log.warning("drop folder of %s cannot be listed (%s): its files wait", organisation, type(exc).__name__)
        return nothing
    now = _now() if now is None else now
    found, unfinished = [], []
    changed: list[float] = []  # when each waiting file last changed
    for path in entries:
        name = path.name
        if name.endswith(MARKER_SUFFIX) or name.startswith("."):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue  # gone since the listing
        is_folder = stat.S_ISDIR(st.st_mode)
        unmarked = completion == "marker" and not os.path.lexists(path.with_name(name + MARKER_SUFFIX))
        if name.endswith(PARTIAL_SUFFIX) or unmarked:
            if not is_folder:
                unfinished.append(path)
                changed.append(st.st_ctime)
            continue
        if is_folder and completion != "marker":
            log.warning("drop folder of %s holds a folder (%s): never read", organisation, name)
            continue
        found.append(path)
    waits = [max(0.0, now - t) / 3600 for t in changed]
    waiting = Waiting(
        completion,
        files=len(waits),
        oldest_hours=round(max(waits, default=0.0), 2),
        stuck=sum(w > stuck_after for w in waits),
        stuck_after_hours=stuck_after,
    )
    return DropFolder(found, waiting, unfinished)


def _now() -> float:
    """The clock a wait is measured by (tests move it on: a status-change time cannot be set)."""
    return time.time()


def never_taken(settings: Settings, organisation: str) -> list[Path]:
    """What in the organisation's drop folder intake will never take as it is: files waiting
    for their completion, hidden files (an upload tool's temporary copies) and completion
    markers whose file is gone. Retention ages them out (``drop_unfinished``); folders and
    complete entries are intake's."""
    folder = settings.drop_folder(organisation)
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = list(scan_drop_folder(settings, organisation).unfinished)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return found
    for path in entries:
        name = path.name
        orphan = name.endswith(MARKER_SUFFIX) and not os.path.lexists(path.with_name(name.removesuffix(MARKER_SUFFIX)))
        if (name.startswith(".") or orphan) and (path.is_symlink() or not path.is_dir()):
            found.append(path)
    return found


@dataclass(frozen=True)
class UnregisteredDrop:
    """A folder under the drop root that no registered organisation owns: names and counts only."""

    folder: str
    files: int


def unregistered_drops(settings: Settings) -> list[UnregisteredDrop]:
    """Folders (and loose files) under the drop root that belong to no registered organisation."""
    root = settings.drop_root
    if not root.is_dir():
        return []
    owned = {settings.drop_folder(o.code) for o in settings.registry.organisations}
    found = []
    loose = 0
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if entry.absolute() in owned:
                continue
            # A folder holding registered drop folders (a registry drop_folder such as nhs/RH1)
            # is not a stranger's: only files outside those folders are reported.
            inside = [f for f in owned if entry.absolute() in f.parents]
            files = sum(1 for p in entry.rglob("*") if not p.is_dir() and not any(f in p.parents for f in inside))
            if inside and not files:
                continue
            found.append(UnregisteredDrop(folder=entry.name, files=files))
        else:
            loose += 1
    if loose:
        found.append(UnregisteredDrop(folder=".", files=loose))
    return found
