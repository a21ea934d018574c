"""Each contract as a Frictionless Table Schema (https://specs.frictionlessdata.io/table-schema/):
``docs/contracts/<contract>.schema.json`` and ``childindex contracts schema NAME``.

A machine-readable twin of the contract page, for an organisation's own tooling (frictionless,
CSV validators, ETL tools). It says what Table Schema can say, from the same sources intake
enforces: required columns, maximum lengths (:data:`childindex.whitelist.MAX_LENGTH`), code
sets, dates in the contract's format, the shapes of NHS numbers, UPNs and postcodes (as intake
reads them: spaces and case do not matter), and a record id unique in the file. What it cannot
say (an NHS number's check digit, a UPN's check letter, the age range, the order of two dates,
enough identity to match a child) is in each field's ``description``, in the words receipts use.
The file's encoding and delimiter are not part of a Table Schema: the schema's description
names them.
"""

from __future__ import annotations

from typing import Any

from childindex.contracts.contract import ColumnSpec, Contract
from childindex.contracts.describe import delimiter_name, encoding_name
from childindex.validation.rules import row_rules
from childindex.whitelist import MAX_LENGTH

# Shapes as intake reads them: trimmed, spaces removed, upper-cased before the check.
_DIGIT, _LETTER, _ALNUM = "( *[0-9])", "( *[A-Za-z])", "( *[A-Za-z0-9])"
PATTERNS = {
    "nhs_number": _DIGIT + "{10} *",
    "upn": _LETTER + _DIGIT + "{12} *",
    "postcode": _LETTER + "{1,2}" + _DIGIT + _ALNUM + "?" + _DIGIT + _LETTER + "{2} *",
}
# Rules a Table Schema constraint says; the others go into the field's description.
IN_CONSTRAINTS = {"required", "max_length", "date_format", "code_set", "duplicate_local_id"}


def table_schema(contract: Contract) -> dict[str, Any]:
    """The contract as a Table Schema descriptor (JSON-able)."""
    rules = row_rules(contract)
    fields = [_field(contract, col, [r for r in rules if r.column == col.name]) for col in contract.columns]
    across = [f"{r.rule}: {r.expects}." for r in rules if r.column == "*" or r.rule == "date_order"]
    local_id = contract.column_for("local_id")
    return {
        "title": f"{contract.title}: extract contract {contract.name} v{contract.version}",
        "description": (
            f"Generated from childindex's contract {contract.name} (childindex contracts schema); do not edit. "
            f"The file is encoded {encoding_name(contract.file.encoding)}, separated by "
            f"{delimiter_name(contract.file.delimiter, plural=True)}, with a header row; columns may come in any "
            "order, and columns not listed are dropped on arrival. Rules across columns: " + " ".join(across)
        ),
        "fields": fields,
        "fieldsMatch": "partial",  # columns in any order, extras dropped, optional ones may be absent
        "missingValues": [""],
        "primaryKey": [local_id.name] if local_id else [],
    }


def _field(contract: Contract, col: ColumnSpec, rules: list[Any]) -> dict[str, Any]:
    field: dict[str, Any] = {"name": col.name, "title": col.field.replace("_", " ")}
    constraints: dict[str, Any] = {}
    names = {r.rule for r in rules}
    if col.type == "date":
        field |= {"type": "date", "format": contract.date_format}
    else:
        field["type"] = "string"
    if "required" in names:
        constraints["required"] = True
    if col.field in MAX_LENGTH:
        constraints["maxLength"] = MAX_LENGTH[col.field]
    if "code_set" in names:
        codes = {"sex": contract.sex_codes, "service": contract.services, "sensitive": contract.sensitive_codes}
        constraints["enum"] = list(codes[col.field])
    if col.format in PATTERNS:
        constraints["pattern"] = PATTERNS[col.format]
    if "duplicate_local_id" in names:
        constraints["unique"] = True
    notes = [col.description.strip()] if col.description else []
    if col.required and contract.blank_allowed(col):
        notes.append(f"Required column; a blank is allowed (missing_identity: {contract.missing_identity}).")
    notes += [f"{r.rule}: {r.expects}." for r in rules if r.rule not in IN_CONSTRAINTS and r.column == col.name]
    if notes:
        field["description"] = " ".join(notes)
    if constraints:
        field["constraints"] = constraints
    return field
