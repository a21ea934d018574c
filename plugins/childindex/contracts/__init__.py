"""Extract contracts: one versioned YAML file per extract type, and the pages generated from them."""

from childindex.contracts.contract import (
    COMPLETION_HELP,
    GZIP_SUFFIX,
    MISSING_IDENTITY_HELP,
    ColumnSpec,
    Contract,
    FileSpec,
    MissingIdentity,
    all_contracts,
    contract_names,
    load_contract,
    load_contract_file,
)

__all__ = [
    "COMPLETION_HELP",
    "GZIP_SUFFIX",
    "MISSING_IDENTITY_HELP",
    "ColumnSpec",
    "Contract",
    "FileSpec",
    "MissingIdentity",
    "all_contracts",
    "contract_names",
    "load_contract",
    "load_contract_file",
]
