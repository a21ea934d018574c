"""The pre-check (``childindex check``): intake's reading and rules on a file, offline.

No key, no index database, nothing moved or written but DuckDB's scratch space, so an
organisation can check an extract before sending it and get the receipt intake would give.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.contracts.contract import load_contract
from childindex.errors import FileRejected
from childindex.organisations.registry import Organisation
from childindex.receipts import Receipt, new_receipt, require_contract_name
from childindex.settings import Settings
from childindex.validation.validate import validate_file


def unregistered(contract: str) -> Organisation:
    """A stand-in sender for the pre-check of an organisation not yet in the registry."""
    named = load_contract(contract)
    return Organisation.model_construct(
        code="unregistered", name="not yet registered", sector=named.sector, contract=named.name, areas=("",)
    )


def check_file(settings: Settings, organisation: Organisation, path: Path, today: date) -> Receipt:
    """The receipt intake would give ``path`` from ``organisation``, with every file-level
    problem at once: a name that does not fit the contract is reported beside what is wrong
    inside the file (whose rows are then checked for tonight), where intake stops at the
    name. The row-count band needs the organisation's history, so it is not applied here."""
    contract = load_contract(organisation.contract)
    receipt, file_night = new_receipt(organisation, contract, path, today)
    problems: list[FileRejected] = []
    try:
        night = require_contract_name(contract, file_night, path.name)
    except FileRejected as exc:
        problems.append(exc)
        night = today
    try:
        with validate_file(settings, organisation, contract, path, night, receipt, history=[]):
            pass  # checked: nothing to stage
    except FileRejected as exc:
        problems.append(exc)
    if problems:
        for problem in problems:
            receipt.reject_for(problem)
        return receipt
    receipt.accept()
    return receipt
