"""Re-admitting a quarantined file, or a corrected file in its place (``childindex reprocess``)."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from childindex.contracts.contract import load_contract
from childindex.errors import UsageError
from childindex.intake.discovery import MARKER_SUFFIX
from childindex.intake.process import process_file
from childindex.settings import Settings, private_dir


def reprocess(
    settings: Settings,
    organisation: str,
    night: date,
    *,
    sha_prefix: str | None = None,
    corrected: Path | None = None,
    skip_row_count: bool = False,
) -> dict[str, Any]:
    """Re-admit a quarantined file (by its SHA-256 prefix) or a corrected file in its place.

    The file is copied into the drop folder as a complete upload and processed at once.
    Once it is accepted, the quarantined original is deleted: it now lives in the archive
    (or, when a corrected file replaced it, it is superseded), and childindex keeps no
    second copy. ``skip_row_count`` is the operator's override for a genuine change in size.
    Raises UsageError when the prefix matches no quarantined file or several, or when
    neither a prefix nor a corrected file is given.
    """
    from childindex.index.ledger import Ledger

    contract = load_contract(settings.registry.get(organisation).contract)
    quarantined: Path | None = None
    if sha_prefix:
        matches = sorted((settings.quarantine_dir / organisation).glob(f"{sha_prefix}*/*"))
        matches = [m for m in matches if m.name != "quarantine.json"]
        if len(matches) != 1:
            raise UsageError(
                f"{len(matches)} quarantined files of {organisation} match {sha_prefix!r}; give a longer prefix"
            )
        quarantined = matches[0]
    source = corrected or quarantined
    if source is None:
        raise UsageError("name a quarantined file's SHA-256 prefix, or a corrected file")
    name = (quarantined or source).name  # a corrected file takes the quarantined one's name
    folder = settings.drop_folder(organisation)
    private_dir(folder)
    target = folder / name
    if os.path.lexists(target):  # a delivery waiting under that name is never overwritten
        raise UsageError(f"{name} is waiting in {organisation}'s drop folder: let intake take it first")
    with (
        source.open("rb") as src,
        open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb") as out,
    ):
        shutil.copyfileobj(src, out)
    if contract.file.completion == "marker":
        target.with_name(name + MARKER_SUFFIX).touch()
    result = process_file(
        settings, organisation, target, night, Ledger(settings.index_url), skip_row_count=skip_row_count
    )
    if quarantined is not None and result.outcome in ("accepted", "accepted_with_rejections"):
        shutil.rmtree(quarantined.parent)
    return result.as_dict()
