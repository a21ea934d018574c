"""The pre-check (``childindex check``): intake's reading and rules on a file, offline.

No key, no index database, nothing moved or written but DuckDB's scratch space, so an
agency can check an extract before sending it and get the receipt intake would give.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.contracts.contract import Contract
from childindex.errors import FileRejected
from childindex.receipts import Receipt, new_receipt, require_contract_name
from childindex.settings import Settings
from childindex.validation.validate import validate_file


def check_file(settings: Settings, contract: Contract, path: Path, today: date) -> Receipt:
    """The receipt intake would give ``path``. The row-count band needs the agency's
    history, so it is not applied here."""
    receipt, file_night = new_receipt(contract, path, today)
    try:
        night = require_contract_name(contract, file_night)
        with validate_file(settings, contract, path, night, receipt, history=[]):
            pass  # checked: nothing to stage
    except FileRejected as exc:
        receipt.reject(exc.rule, exc.detail)
        return receipt
    receipt.accept()
    return receipt
