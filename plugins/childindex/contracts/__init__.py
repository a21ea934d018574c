"""Extract contracts: one versioned YAML file per agency, and the pages generated from them."""

from childindex.contracts.contract import (
    AGENCIES,
    COMPLETION_HELP,
    GZIP_SUFFIX,
    ColumnSpec,
    Contract,
    FileSpec,
    all_contracts,
    load_contract,
    load_contract_file,
)

__all__ = [
    "AGENCIES",
    "COMPLETION_HELP",
    "GZIP_SUFFIX",
    "ColumnSpec",
    "Contract",
    "FileSpec",
    "all_contracts",
    "load_contract",
    "load_contract_file",
]
