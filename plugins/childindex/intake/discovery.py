"""Finding the files in an agency's drop folder whose upload is complete.

Agencies signal completion as their contract says: a ``.done`` marker beside the file, or
an upload under a ``.part`` name renamed when it is whole. A file still being uploaded is
never read: half a file would be rejected (or worse, accepted short).
"""

from __future__ import annotations

from pathlib import Path

from childindex.contracts.contract import load_contract
from childindex.settings import Settings

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"


def pending_files(settings: Settings, agency: str) -> list[Path]:
    """Files in the drop folder whose upload is complete under the contract's convention.

    A file still being uploaded (no ``.done`` marker yet, or still named ``*.part``) is
    never returned. Symlinks are returned (never followed) so that intake rejects them with a
    receipt, as it does files that do not match the contract's name pattern.
    """
    contract = load_contract(agency)
    folder = settings.drop_folder(agency)
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
