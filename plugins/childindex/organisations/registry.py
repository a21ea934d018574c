"""The organisations registry: who sends what, from which authority area, to which folders.

One versioned YAML file (``config/organisations.yaml`` unless ``CHILDINDEX_ORGANISATIONS_FILE``
names another) lists the authority areas and the organisations. An organisation sends one
extract type (a contract in :mod:`childindex.contracts`, shared by every organisation whose
case-management system exports that layout), belongs to one sector and serves one or more
areas. Adding an organisation is an edit of the file, never of code.

Codes are in the formats England uses: an NHS organisation's ODS code (``RTD``, ``R0B``,
``RX1``, or five characters for a site), an authority's DfE local-authority number
(``840``) or its ONS GSS code (``E06000047``). Areas are upper-tier authorities, named by
GSS code. A broken entry gives one error naming the entry (position and code) and the field.
"""

from __future__ import annotations

import re
from functools import cache, cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from childindex.errors import RegistryError
from childindex.whitelist import Sector

# Code formats (the registry's docs list them): which a sector may use.
ODS_CODE = re.compile(r"^[A-Z][A-Z0-9]{2}$|^[A-Z0-9]{5}$")  # trust (RTD, R0B) or site/other body
LA_NUMBER = re.compile(r"^[0-9]{3}$")  # DfE local-authority number, 201-938
GSS_UPPER_TIER = re.compile(r"^E(06|08|09|10|11)[0-9]{6}$")  # unitary, metropolitan, London, county
_ODS = ("an ODS code (three characters, the first a letter, or five)", ODS_CODE)
_LA = ("a DfE LA number (three digits)", LA_NUMBER)
_GSS = ("an ONS GSS code of an upper-tier authority (E06, E08, E09, E10 or E11 and six digits)", GSS_UPPER_TIER)
CODE_FORMATS = {"health": (_ODS,), "education": (_LA, _GSS), "social_care": (_LA, _GSS)}
OUTWARD_CODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")


class Area(BaseModel):
    """An upper-tier local authority area."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=GSS_UPPER_TIER.pattern, description="ONS GSS code of the authority.")
    name: str = Field(min_length=1)
    la_number: int | None = Field(None, ge=100, le=999, description="DfE local-authority number.")
    # Outward codes (DH1, NE23) mostly in this area: an organisation serving several areas
    # places a record in the area of its postcode district.
    postcode_districts: tuple[str, ...] = ()

    @field_validator("postcode_districts")
    @classmethod
    def _outward(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in value if not OUTWARD_CODE.match(d)]
        if bad:
            raise ValueError(f"{len(bad)} entries are not postcode districts (outward codes such as DH1 or NE23)")
        return value


class Organisation(BaseModel):
    """One organisation that sends an extract: a council's education or children's social
    care service, an NHS trust."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=3, max_length=16)
    name: str = Field(min_length=1, max_length=200)
    sector: Sector
    contract: str = Field(description="The extract type it sends (a contract's name).")
    areas: tuple[str, ...] = Field(min_length=1, description="GSS codes of the areas it serves.")
    drop_folder: Path | None = Field(None, description="Where it drops files (default DROP_ROOT/<code>).")
    outbox: Path | None = Field(None, description="Where its receipts go (default OUTBOX_ROOT/<code>).")
    max_rejected_share: float | None = Field(
        None, ge=0, le=1, description="Its own quarantine threshold for the share of rejected rows."
    )

    @model_validator(mode="after")
    def _code_format(self) -> Organisation:
        formats = CODE_FORMATS[self.sector]
        if not any(pattern.match(self.code) for _name, pattern in formats):
            allowed = " or ".join(name for name, _pattern in formats)
            raise ValueError(f"code: a {self.sector} organisation's code must be {allowed}")
        return self


class Registry(BaseModel):
    """The whole registry file, checked as a whole (codes unique, references resolved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    areas: tuple[Area, ...] = Field(min_length=1)
    organisations: tuple[Organisation, ...]

    @cached_property
    def by_code(self) -> dict[str, Organisation]:
        return {o.code: o for o in self.organisations}

    @cached_property
    def area_by_code(self) -> dict[str, Area]:
        return {a.code: a for a in self.areas}

    def get(self, code: str) -> Organisation:
        try:
            return self.by_code[code]
        except KeyError:
            raise RegistryError(f"no organisation with code {code!r} in the registry") from None

    def in_sector(self, sector: str) -> tuple[Organisation, ...]:
        return tuple(o for o in self.organisations if o.sector == sector)

    def drop_folder(self, code: str, drop_root: Path) -> Path:
        """An organisation's drop folder: its own setting (relative to ``drop_root``) or
        ``drop_root/<code>``."""
        return _under(drop_root, self.get(code).drop_folder, code)

    def outbox(self, code: str, outbox_root: Path) -> Path:
        return _under(outbox_root, self.get(code).outbox, code)

    def district_areas(self) -> dict[str, str]:
        """Postcode district -> area code, for organisations serving several areas."""
        return {d: a.code for a in self.areas for d in a.postcode_districts}


def _under(root: Path, own: Path | None, code: str) -> Path:
    return (root / own).expanduser().absolute() if own is not None else root / code


def _problems(where: str, exc: ValidationError) -> list[str]:
    """Each pydantic error of one entry as '<where>: field sector: message'."""
    lines = []
    for err in exc.errors(include_input=False):
        loc = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        field, _, rest = message.partition(": ")
        if not loc and rest and field.isidentifier():  # a model check naming its field
            loc, message = [field], rest
        lines.append(f"{where}: " + (f"field {'.'.join(loc)}: " if loc else "") + message)
    return lines


def _entries(raw: dict, key: str, model: type[Area] | type[Organisation], problems: list[str]) -> list:
    """The valid entries of one list of the file; each broken one adds its problems."""
    entries = raw.get(key)
    if not isinstance(entries, list):
        problems.append(f"{key}: expected a list of entries")
        return []
    valid = []
    for i, entry in enumerate(entries):
        code = entry.get("code") if isinstance(entry, dict) else None
        where = f"{key}[{i}]" + (f" (code {code})" if code else "")
        try:
            valid.append((i, model.model_validate(entry)))
        except ValidationError as exc:
            problems.extend(_problems(where, exc))
    return valid


def _cross_check(areas: list[tuple[int, Area]], organisations: list[tuple[int, Organisation]]) -> list[str]:
    """What no single entry shows: codes used twice, unknown contracts and areas, a contract
    of another sector, a postcode district in two areas."""
    from childindex.contracts.contract import all_contracts

    contracts = all_contracts()
    problems = []
    area_at: dict[str, int] = {}
    districts: dict[str, str] = {}
    for i, area in areas:
        if area.code in area_at:
            problems.append(f"areas[{i}] (code {area.code}): field code: already used by areas[{area_at[area.code]}]")
        area_at.setdefault(area.code, i)
        for d in area.postcode_districts:
            if districts.setdefault(d, area.code) != area.code:
                problems.append(
                    f"areas[{i}] (code {area.code}): field postcode_districts: {d} is also in {districts[d]}"
                )
    seen: dict[str, int] = {}
    for i, org in organisations:
        where = f"organisations[{i}] (code {org.code})"
        if org.code in seen:
            problems.append(f"{where}: field code: already used by organisations[{seen[org.code]}]")
        seen.setdefault(org.code, i)
        contract = contracts.get(org.contract)
        if contract is None:
            problems.append(f"{where}: field contract: no contract {org.contract!r}; known: {', '.join(contracts)}")
        elif contract.sector != org.sector:
            problems.append(
                f"{where}: field contract: {org.contract!r} is a {contract.sector} contract, not {org.sector}"
            )
        unknown = [a for a in org.areas if a not in area_at]
        if unknown:
            problems.append(f"{where}: field areas: {', '.join(unknown)} not in the registry's areas")
    return problems


def parse_registry(text: str, source: str) -> Registry:
    """A registry from its YAML text. RegistryError names every broken entry (position and
    code) and field at once, so one round of corrections fixes the file."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise RegistryError(f"{source}: not valid YAML{at}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{source}: expected a mapping with version, areas and organisations")
    problems: list[str] = []
    unexpected = sorted(set(raw) - set(Registry.model_fields))
    if unexpected:
        problems.append(f"unexpected top-level keys: {', '.join(map(str, unexpected))}")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append("version: a whole number from 1")
    areas = _entries(raw, "areas", Area, problems)
    organisations = _entries(raw, "organisations", Organisation, problems)
    problems += _cross_check(areas, organisations)
    if not areas and not any(p.startswith("areas") for p in problems):
        problems.append("areas: at least one area")
    if problems:
        raise RegistryError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return Registry(version=version, areas=tuple(a for _, a in areas), organisations=tuple(o for _, o in organisations))


@cache
def _load(path: Path, mtime_ns: int) -> Registry:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read the organisations registry {path}: {exc.strerror}") from None
    return parse_registry(text, str(path))


def load_registry(path: Path) -> Registry:
    """The registry in ``path``, parsed once per version of the file (a long-lived worker
    sees an edit without a restart)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise RegistryError(
            f"cannot read the organisations registry {path}: {exc.strerror} "
            "(set CHILDINDEX_ORGANISATIONS_FILE to the registry file)"
        ) from None
    return _load(path, mtime)
