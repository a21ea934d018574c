"""Finding the files in organisations' drop folders whose upload is complete.

Each organisation signals completion as its contract says: a ``.done`` marker beside the
file, or an upload under a ``.part`` name renamed when it is whole. A file still being
uploaded is never read: half a file would be rejected (or worse, accepted short).

A folder under the drop root that belongs to no registered organisation is never read and
never touched: :func:`unregistered_drops` reports it (by folder name and file count) so an
operator registers the organisation or removes the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from childindex.contracts.contract import load_contract
from childindex.settings import Settings

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"


def pending_files(settings: Settings, organisation: str) -> list[Path]:
    """Files in the organisation's drop folder whose upload is complete under its contract's
    convention.

    A file still being uploaded (no ``.done`` marker yet, or still named ``*.part``) is
    never returned. Symlinks are returned (never followed) so that intake rejects them with a
    receipt, as it does files that do not match the contract's name pattern.
    """
    contract = load_contract(settings.registry.get(organisation).contract)
    folder = settings.drop_folder(organisation)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or not (path.is_file() or path.is_symlink()):
            continue
        name = path.name
        if name.endswith(MARKER_SUFFIX) or name.endswith(PARTIAL_SUFFIX) or name.startswith("."):
            continue
        if contract.file.completion == "marker" and not path.with_name(name + MARKER_SUFFIX).exists():
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
