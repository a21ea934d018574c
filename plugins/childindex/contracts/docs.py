"""Human-readable contract pages and Table Schemas, generated from the YAML contracts (never
edited by hand), with what intake enforces said from where it is enforced: the rule catalogue
(:mod:`childindex.validation.rules`), the whitelist's maximum lengths and the validation
policy's defaults (:class:`childindex.settings.ValidationPolicy`).

The example row under each page's header line is the generator's
(:func:`childindex.simulation.synthetic.examples.example_rows`), passed in by the caller: this
module does not import the simulation sandbox.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping

from childindex.contracts.contract import (
    COMPLETION_HELP,
    GZIP_SUFFIX,
    MISSING_IDENTITY_HELP,
    SET_ASIDE_HELP,
    Contract,
    all_contracts,
)
from childindex.contracts.describe import date_format_words, delimiter_name, encoding_name, file_name_in_words
from childindex.contracts.schema import table_schema
from childindex.settings import ValidationPolicy
from childindex.validation.rules import field_count_expects, row_rules
from childindex.whitelist import IDENTITY_FIELDS, MAX_LENGTH, NAME_AND_BIRTH_FIELDS

FORMAT_HELP = {
    "nhs_number": "10 digits, modulus 11 check digit",
    "upn": "13 characters, DfE check letter first",
    "postcode": "a full UK postcode; spacing and case are normalised",
}


def render(contract: Contract, example: list[str] | None = None) -> str:
    """The contract's page; ``example``: a synthetic row's values in column order."""
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
        f"| name | {_code_words(file_name_in_words(contract))}; the pattern: `{f.pattern}` |",
        f"| encoding | {encoding_name(f.encoding)}, named `{f.encoding}` in the contract |",
        f"| delimiter | {'tab' if f.delimiter == chr(9) else f'`{f.delimiter}` ({delimiter_name(f.delimiter)})'} |",
        f"| header row | {'yes' if f.header else 'no'} |",
        f"| kind | {f.kind} |",
        f"| dates | {date_format_words(contract.date_format)} (strftime `{contract.date_format}`) |",
        f"| upload complete | {COMPLETION_HELP[f.completion]} |",
        "",
        "One record per line: values may not contain line breaks. Quote a value that "
        "contains the delimiter with double quotes.",
        "",
        *_example(contract, example),
        "## Columns",
        "",
        "| column | meaning in childindex | required | type | max length | rule | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in contract.columns:
        rule = FORMAT_HELP.get(c.format or "", "")
        note = c.description.replace("|", "\\|")
        if c.identifier:
            note = (note + " " if note else "") + "Pseudonymised (keyed HMAC) on arrival; never stored in clear."
        required = ("yes, may be blank" if contract.blank_allowed(c) else "yes") if c.required else "no"
        longest = str(MAX_LENGTH[c.field]) if c.field in MAX_LENGTH else ""
        lines.append(f"| `{c.name}` | {c.field} | {required} | {c.type} | {longest} | {rule} | {note} |")
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
    lines += ["", *_row_rules(contract), "", *_missing_identity(contract), "", *_whole_file(contract)]
    lines += [
        "",
        "## Anything else",
        "",
        "Columns not listed above are dropped on arrival, before anything else reads the "
        "file, and the receipt names them (never their values). Please stop sending them: "
        "childindex may hold only the fields above.",
        "",
        "A required column missing from the header rejects the whole file; a row that breaks "
        "a rule is rejected on its own, and the receipt gives its row number, column and rule. Rows are numbered "
        "as a spreadsheet numbers them: the header is row 1, the first data row is row 2.",
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


def _code_words(text: str) -> str:
    """File names in backticks: ``EDU_PUPILS_20261124.csv``."""
    return " ".join(
        f"`{w.rstrip(',')}`{',' * w.endswith(',')}" if "_" in w or "." in w[1:] else w for w in text.split()
    )


def _example(contract: Contract, example: list[str] | None) -> list[str]:
    """The header line and an example row, as the file writes them."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=contract.file.delimiter, lineterminator="\n")
    writer.writerow(contract.column_names)
    if example is not None:
        writer.writerow(example)
    lines = ["## Header and an example row", ""]
    shown = "The header line" + (
        " and a row of synthetic values (from childindex's generator: NHS numbers from "
        "the 999 test range, drama-range phone numbers)"
        if example is not None
        else ""
    )
    delimiter = "tab" if contract.file.delimiter == "\t" else delimiter_name(contract.file.delimiter)
    lines += [f"{shown}, as the file writes them ({delimiter}-separated):", "", "```text"]
    lines += out.getvalue().splitlines()
    return [*lines, "```", ""]


def _row_rules(contract: Contract) -> list[str]:
    """Every row rule intake applies, from the rule catalogue itself."""
    lines = [
        "## Rules for each row",
        "",
        "Intake checks every row against these rules (the receipt names the rule and column of each row that "
        "breaks one; `childindex check` does the same before you send the file). A row breaking a rule is "
        "rejected, except where a malformed identity value is set aside and the row kept (see below).",
        "",
        "| rule | column | what the contract expects | a row breaking it |",
        "| --- | --- | --- | --- |",
        f"| `field_count` | `*` | {field_count_expects(contract)} | rejected |",
    ]
    for rule in row_rules(contract):
        outcome = "kept, the value set aside" if rule.sets_aside else "rejected"
        expects = rule.expects.replace("|", "\\|")
        lines.append(f"| `{rule.rule}` | `{rule.column}` | {expects} | {outcome} |")
    return lines


def _whole_file(contract: Contract) -> list[str]:
    """When the whole file is refused, from the validation policy's defaults."""
    policy = {name: field.default for name, field in ValidationPolicy.model_fields.items()}
    factor, slack = policy["row_count_factor"], policy["row_count_slack"]
    return [
        "## When the whole file is refused",
        "",
        "The whole file goes to quarantine, nothing of it loaded, and the receipt lists every problem found "
        "(`childindex check` reports the same before you send it):",
        "",
        "- its name, encoding, delimiter or header does not fit the sections above (every required column "
        "must be in the header, each column once);",
        f"- no row could be accepted, or more than {policy['max_rejected_share']:.0%} of its rows were rejected or "
        "kept with a value set aside (`CHILDINDEX_VALIDATION__MAX_REJECTED_SHARE`; an organisation's own "
        "`max_rejected_share` in the registry takes its place);",
        f"- once the organisation has {policy['row_count_min_history']} accepted files: it has more than "
        f"{factor:g} times, or under 1/{factor:g} of, the median rows of the last {policy['row_count_history']} "
        f"accepted files, and is more than {slack} rows from that median (`CHILDINDEX_VALIDATION__ROW_COUNT_*`): "
        "a broken export, not a real night;",
        f"- its name gives a night more than {policy['max_days_ahead']} days after the night it arrives "
        "(`CHILDINDEX_VALIDATION__MAX_DAYS_AHEAD`);",
        f"- compressed (`{GZIP_SUFFIX}`), it inflates past {policy['max_inflated_bytes'] / 1024**3:g} GiB "
        "(`CHILDINDEX_VALIDATION__MAX_INFLATED_BYTES`).",
        "",
        "These are the defaults; `childindex settings` shows the values in force. The same contract as a "
        f"machine-readable Frictionless Table Schema: [`{contract.name}.schema.json`]({contract.name}.schema.json) "
        f"(`childindex contracts schema {contract.name}`).",
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


def render_schema(contract: Contract) -> str:
    """The contract's Table Schema, as the file ``<contract>.schema.json`` holds it."""
    return json.dumps(table_schema(contract), indent=2, ensure_ascii=False) + "\n"


def render_all(examples: Mapping[str, list[str]] | None = None) -> dict[str, str]:
    """Every page and schema by file name; ``examples``: each contract's example row."""
    examples = examples or {}
    pages = {f"{name}.md": render(c, examples.get(name)) for name, c in all_contracts().items()}
    pages |= {f"{name}.schema.json": render_schema(c) for name, c in all_contracts().items()}
    pages["README.md"] = render_index()
    return pages
