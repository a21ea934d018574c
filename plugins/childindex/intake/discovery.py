"""Finding the files in organisations' drop folders whose upload is complete.

Each organisation signals completion as its contract says: a ``.done`` marker beside the
file, or an upload under a ``.part`` name renamed when it is whole. A file still being
uploaded is never read: half a file would be rejected (or worse, accepted short).

A folder under the drop root that belongs to no registered organisation is never read and
never touched: :func:`unregistered_drops` reports it (by folder name and file count) so an
operator registers the organisation or removes the folder.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from childindex.contracts.contract import load_contract
from childindex.settings import Settings

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"

log = logging.getLogger(__name__)


def pending_files(settings: Settings, organisation: str) -> list[Path]:
    """Files in the organisation's drop folder whose upload is complete under its contract's
    convention.

    A file still being uploaded (no ``.done`` marker yet, or still named ``*.part``) is
    never returned. Every other entry is returned, whatever it is (a symlink, never followed;
    a pipe; a file intake may not read; a folder with a completion marker), so that intake
    gives it a receipt and goes on, as it does for files that do not match the contract's
    name pattern. A folder without a marker is logged and left alone.
    """
    contract = load_contract(settings.registry.get(organisation).contract)
    folder = settings.drop_folder(organisation)
    if folder.is_symlink():
        # Whoever can write the drop root could point one organisation's folder at another's
        # (or anywhere): a drop folder is a real folder, or it is not read.
        log.warning("drop folder of %s is a symbolic link: never read, and its files wait", organisation)
        return []
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:  # a folder intake may not read: said once, and the others go on
        log.warning("drop folder of %s cannot be listed (%s): its files wait", organisation, type(exc).__name__)
        return []
    found = []
    for path in entries:
        name = path.name
        if name.endswith(MARKER_SUFFIX) or name.endswith(PARTIAL_SUFFIX) or name.startswith("."):
            continue
        if contract.file.completion == "marker" and not os.path.lexists(path.with_name(name + MARKER_SUFFIX)):
            continue
        try:
            is_folder = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            continue  # gone since the listing
        if is_folder and contract.file.completion != "marker":
            log.warning("drop folder of %s holds a folder (%s): never read", organisation, name)
            continue
        found.append(path)
    return found


def pending_everywhere(settings: Settings) -> list[tuple[str, Path]]:
    """(organisation code, file) of every complete file in every registered drop folder, in
    registry order: what tonight's intake fans out over."""
    return [(org.code, path) for org in settings.registry.organisations for path in pending_files(settings, org.code)]


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
