"""Great Expectations suites, generated from the rule catalogue, as stored in ``expectations/``.

One suite per contract (extract type), built from its contract by the rule catalogue
(:mod:`childindex.validation.rules`) and kept rendered in ``expectations/<contract>.json`` (a
test fails when a file and the catalogue disagree), so contract and catalogue are the one
source of truth. Every expectation carries ``meta.rule`` and ``meta.column``: the same
(rule, column) a receipt names. Plain JSON: nothing here imports GX.
"""

from __future__ import annotations

import json
from typing import Any

from childindex.contracts.contract import Contract, all_contracts
from childindex.validation.rules import expectation_configs


def build_suite(contract: Contract) -> dict[str, Any]:
    """The GX suite of a contract, as the JSON-able dict stored in expectations/."""
    return {
        "name": f"childindex.{contract.name}.v{contract.version}",
        "expectations": expectation_configs(contract),
        "meta": {
            "generated_from": f"plugins/childindex/contracts/{contract.name}.yaml",
            "contract_version": contract.version,
            "generated_by": "childindex contracts suites",
        },
    }


def render_suite(contract: Contract) -> str:
    """The suite file's text: stable key order, so a change shows as a diff."""
    return json.dumps(build_suite(contract), indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """File name -> text of every contract's suite (what ``childindex contracts suites`` writes)."""
    return {f"{name}.json": render_suite(contract) for name, contract in all_contracts().items()}
