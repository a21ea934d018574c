"""Human-readable contract pages, generated from the YAML contracts (never edited by hand)."""

from __future__ import annotations

from childindex.contracts.contract import (
    COMPLETION_HELP,
    MISSING_IDENTITY_HELP,
    SET_ASIDE_HELP,
    Contract,
    all_contracts,
)
from childindex.whitelist import IDENTITY_FIELDS, NAME_AND_BIRTH_FIELDS

FORMAT_HELP = {
    "nhs_number": "10 digits, modulus 11 check digit",
    "upn": "13 characters, DfE check letter first",
    "postcode": "a full UK postcode; spacing and case are normalised",
}


def render(contract: Contract) -> str:
    f = contract.file
    lines = [
        f"<!-- Generated from plugins/childindex/contracts/{contract.name}.yaml by "
        "'childindex contracts docs'. Do not edit. -->",
        f"# {contract.title}: extract contract `{contract.name}` v{contract.version}",
        "",
        contract.description.strip(),
        "",
        f"Sector: {contract.sector.replace('_', ' ')}. Every organisation whose system exports this layout "
        "sends this contract; the organisations registry (`config/organisations.yaml`, "
        "`childindex organisations list`) says which organisations do, and where each drops its files.",
        "",
        "## The file",
        "",
        "| property | value |",
        "| --- | --- |",
        f"| name | matches `{f.pattern}` |",
        f"| encoding | {f.encoding} |",
        f"| delimiter | {'tab' if f.delimiter == chr(9) else f'`{f.delimiter}`'} |",
        f"| header row | {'yes' if f.header else 'no'} |",
        f"| kind | {f.kind} |",
        f"| dates | `{contract.date_format}` (strftime) |",
        f"| upload complete | {COMPLETION_HELP[f.completion]} |",
        "",
        "One record per line: values may not contain line breaks. Quote a value that "
        "contains the delimiter with double quotes.",
        "",
        "## Columns",
        "",
        "| column | meaning in childindex | required | type | rule | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in contract.columns:
        rule = FORMAT_HELP.get(c.format or "", "")
        note = c.description.replace("|", "\\|")
        if c.identifier:
            note = (note + " " if note else "") + "Pseudonymised (keyed HMAC) on arrival; never stored in clear."
        required = ("yes, may be blank" if contract.blank_allowed(c) else "yes") if c.required else "no"
        lines.append(f"| `{c.name}` | {c.field} | {required} | {c.type} | {rule} | {note} |")
    codes = ", ".join(f"`{k}` = {v}" for k, v in contract.sex_codes.items())
    lines += [
        "",
        "## Code sets",
        "",
        f"- Sex: {codes} (M male, F female, U not known).",
        f"- Services: {', '.join(f'`{s}`' for s in contract.services)}.",
    ]
    if contract.sensitive_codes:
        flag = contract.column_for("sensitive")
        marks = ", ".join(
            f"`{k}` = {'sensitive' if v else 'not sensitive'}" for k, v in contract.sensitive_codes.items()
        )
        lines.append(
            f"- Sensitive involvement (`{flag.name if flag else 'sensitive'}`): {marks}. A sensitive row is checked "
            "like any other, but the index keeps only that a sensitive service is involved and how to reach it: "
            "the service type and the row's postcode never leave intake. The receipt counts such rows."
        )
    lines += ["", *_missing_identity(contract)]
    lines += [
        "",
        "## Anything else",
        "",
        "Columns not listed above are dropped on arrival, before anything else reads the "
        "file, and the receipt names them (never their values). Please stop sending them: "
        "childindex may hold only the fields above.",
        "",
        "A required column missing from the header rejects the whole file; a row that breaks "
        "a rule is rejected on its own, and the receipt gives its row number, column and rule.",
        "",
    ]
    return "\n".join(lines)


def _missing_identity(contract: Contract) -> list[str]:
    """The section on rows with a blank identity field: the contract's option and what to do."""
    option = contract.missing_identity
    lines = ["## Blank identity fields", "", f"`missing_identity: {option}`. {MISSING_IDENTITY_HELP[option]}", ""]
    fields = IDENTITY_FIELDS if option != "stage" else NAME_AND_BIRTH_FIELDS
    names = ", ".join(f"`{c.name}`" for f in fields if (c := contract.column_for(f)) is not None)
    if option == "reject":
        return [*lines, f"Each of {names} must be filled in."]
    ids = " or ".join(
        f"{'NHS number' if c.format == 'nhs_number' else 'UPN'} (`{c.name}`)"
        for c in contract.columns
        if c.format in ("nhs_number", "upn")
    )
    blanks = "any of" if option == "with_identifier" else "two or more of"
    rejected = f"A row with {blanks} {names} blank and no valid {ids or 'identifier'} is rejected"
    return [
        *lines,
        f"{rejected} as `too_little_identity` (column `*`). Next step: fill in the blank ones among {names}"
        + (f", or send the {ids}." if ids else "."),
        "",
        "An accepted row with a blank identity field is staged with that field empty, and the receipt counts such "
        "rows by column (`incomplete_rows`), never their values: fill them in when they are known, since each "
        "blank makes the child harder to match.",
        "",
        SET_ASIDE_HELP + " A malformed NHS number or UPN, or a date of birth outside ages 0 to 25, still rejects "
        "the row.",
    ]


def render_index() -> str:
    lines = [
        "<!-- Generated by 'childindex contracts docs'. Do not edit. -->",
        "# Extract contracts",
        "",
        "| contract | sector | title | version | file name |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, c in all_contracts().items():
        lines.append(f"| [`{name}`]({name}.md) | {c.sector} | {c.title} | {c.version} | `{c.file.pattern}` |")
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    pages = {f"{name}.md": render(c) for name, c in all_contracts().items()}
    pages["README.md"] = render_index()
    return pages
