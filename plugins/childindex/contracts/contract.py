"""Extract contracts: one versioned YAML file per extract type, read by the pipeline.

An extract type is a case-management system's export layout: every organisation whose
system exports it sends the same contract (the organisations registry says who sends
which). A contract names the layout's columns and maps each onto a whitelisted field
(:mod:`childindex.whitelist`), says how the file is encoded, delimited and dated, and how
the sender signals that an upload is complete. The human-readable pages in
``docs/contracts/`` are generated from these files (``childindex contracts docs``).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from childindex.errors import ContractError
from childindex.whitelist import DATE_FIELDS, IDENTITY_FIELDS, REQUIRED_FIELDS, SOURCE_FIELDS, Sector, Sex

CONTRACT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# A contract's file may also arrive gzip-compressed: the same name plus this suffix.
GZIP_SUFFIX = ".gz"

Completion = Literal["marker", "rename"]

# What happens to a row with a blank identity field (given name, family name, date of birth,
# sex, postcode). Under with_identifier and stage a malformed value in one of them (a date that
# is not a date, a sex code outside the list, a postcode that is not a full UK postcode) is set
# aside and counts as a blank: the benchmark on public data lost a fifth of its missed pairs to
# rows rejected for a mistyped date of birth (docs/linkage.md).
MissingIdentity = Literal["reject", "with_identifier", "stage"]
MISSING_IDENTITY_HELP = {
    "reject": "A row with a blank identity field is rejected (rule `required`).",
    "with_identifier": "A row with blank identity fields is still accepted when it carries a valid NHS number "
    "or UPN; without one it is rejected (rule `too_little_identity`).",
    "stage": "A row with blank identity fields is still accepted when it carries a valid NHS number or UPN, "
    "or when at most one of given name, family name and date of birth is blank (sex and postcode may be "
    "blank too). A row with two or more of those three blank and neither identifier is rejected "
    "(rule `too_little_identity`).",
}
SET_ASIDE_HELP = (
    "A malformed value in an identity field (a date of birth that is not a date in the contract's format, a sex "
    "code outside the list, a postcode that is not a full UK postcode) counts as a blank: the value is set aside, "
    "the row is judged as above, and an accepted row is staged without it. The receipt lists each value set aside "
    "by row, column and rule (`values_set_aside`), never the value."
)
COMPLETION_HELP = {
    "marker": "Upload the extract, then create an empty file with the same name plus "
    "'.done' beside it. The extract is not read until the marker exists.",
    "rename": "Upload the extract under a temporary name ending in '.part', then rename it "
    "to its final name. Files ending in '.part' are never read.",
}


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    field: str
    required: bool = False
    identifier: bool = False
    type: Literal["string", "date", "code"] = "string"
    format: Literal["nhs_number", "upn", "postcode"] | None = None
    description: str = ""

    @field_validator("field")
    @classmethod
    def _whitelisted(cls, value: str) -> str:
        if value not in SOURCE_FIELDS:
            raise ValueError(f"field {value!r} is not in the whitelist {SOURCE_FIELDS}")
        return value


class FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    encoding: str
    delimiter: str = Field(min_length=1, max_length=1)
    header: bool = True
    completion: Completion
    kind: Literal["delta", "full"] = "delta"

    @field_validator("pattern")
    @classmethod
    def _has_night(cls, value: str) -> str:
        if "(?P<night>" not in value:
            raise ValueError("pattern must capture the night as (?P<night>...)")
        re.compile(value)
        return value


class Contract(BaseModel):
    """One extract type's contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str = Field(pattern=CONTRACT_NAME.pattern)
    version: int = Field(ge=1)
    sector: Sector
    title: str
    description: str
    file: FileSpec
    date_format: str
    sex_codes: dict[str, Sex]
    services: tuple[str, ...]
    sensitive_codes: dict[str, bool] = Field(default_factory=dict)
    # Absent from a contract file: today's behaviour, a blank identity field rejects the row.
    missing_identity: MissingIdentity = "reject"
    columns: tuple[ColumnSpec, ...]

    @model_validator(mode="after")
    def _coherent(self) -> Contract:
        fields = [c.field for c in self.columns]
        dupes = {f for f in fields if fields.count(f) > 1}
        if dupes:
            raise ValueError(f"fields mapped more than once: {sorted(dupes)}")
        names = [c.name.casefold() for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique, ignoring case (GX matches columns case-insensitively)")
        if any(n.startswith("std_") for n in names):
            raise ValueError("column names starting with 'std_' are reserved for standardised fields")
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"contract does not map required fields: {missing}")
        if ("sensitive" in fields) != bool(self.sensitive_codes):
            raise ValueError("a column mapped to 'sensitive' and sensitive_codes go together")
        for col in self.columns:
            if (col.type == "date") != (col.field in DATE_FIELDS):
                raise ValueError(f"column {col.name}: date fields and type 'date' must agree")
        return self

    @property
    def name(self) -> str:
        return self.contract

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column_for(self, field: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.field == field), None)

    def blank_allowed(self, col: ColumnSpec) -> bool:
        """True when a blank in this required column does not reject the row by itself: an
        identity field under ``missing_identity`` ``with_identifier`` or ``stage`` (rule
        ``too_little_identity`` decides instead)."""
        return col.field in IDENTITY_FIELDS and self.missing_identity != "reject"

    def match_name(self, filename: str) -> re.Match[str] | None:
        r"""Match a whole file name against the contract's pattern (None when it does not fit).

        Whole, and in ASCII: ``$`` alone also matches before a trailing newline, and ``\d``
        alone also matches other scripts' digits, so a name with either would pass."""
        return re.fullmatch(self.file.pattern, filename, flags=re.ASCII)


def _parse(text: str, source: str) -> Contract:
    try:
        return Contract.model_validate(yaml.safe_load(text))
    except Exception as exc:  # pydantic or YAML: both are a broken contract
        raise ContractError(f"contract {source} is invalid: {exc}") from exc


def contract_names() -> tuple[str, ...]:
    """Every contract the package ships, by name (its YAML file's stem), sorted."""
    return tuple(
        sorted(p.name.removesuffix(".yaml") for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))
    )


@cache
def load_contract(name: str) -> Contract:
    """One extract type's contract, from the package's YAML file."""
    if not CONTRACT_NAME.match(name) or name not in contract_names():
        raise ContractError(f"unknown contract {name!r}; known contracts: {', '.join(contract_names())}")
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    contract = _parse(text, f"{name}.yaml")
    if contract.name != name:
        raise ContractError(f"{name}.yaml names contract {contract.contract!r}")
    return contract


def load_contract_file(path: Path) -> Contract:
    """Parse a contract from any path (used by tests and by organisations drafting a change)."""
    return _parse(path.read_text(encoding="utf-8"), str(path))


def all_contracts() -> dict[str, Contract]:
    return {name: load_contract(name) for name in contract_names()}
