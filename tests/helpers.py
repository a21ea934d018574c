"""Hand-built extracts for focused tests (all values synthetic; NHS numbers in the 999 range)."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from childindex.contracts import load_contract
from childindex.validation.identifiers import nhs_check_digit, upn_check_letter

# tests/organisations.yaml: one organisation per sector, and the contract each sends.
ORG = {"health": "RH1", "education": "840", "social_care": "E06000047"}
CONTRACT = {"health": "health_chis", "education": "education_mis", "social_care": "social_care_cms"}
FILE_NAMES = {
    "health_chis": "health_{night:%Y-%m-%d}.csv",
    "health_epr": "CYP_CASELOAD_{night:%Y%m%d}.tsv",
    "education_mis": "EDU_PUPILS_{night:%Y%m%d}.csv",
    "social_care_cms": "sc_extract_{night:%Y%m%d}.txt",
    "social_care_ehm": "childrens_services_{night:%Y-%m-%d}.csv",
}


def contract_of(name: str) -> str:
    """A contract's name from a sector (the tests' registry's contract for it) or a contract name."""
    return CONTRACT.get(name, name)


def org_of(name: str) -> str:
    """An organisation's code from a sector (the tests' registry's organisation) or a code."""
    return ORG.get(name, name)


def nhs(n: int) -> str:
    """The n-th valid NHS number in the 999 test range."""
    i = n
    while True:
        first9 = f"999{i:06d}"
        digit = nhs_check_digit(first9)
        if digit is not None:
            return first9 + str(digit)
        i += 1_000_000 // 7 + 1  # skip numbers that have no valid check digit


def upn(n: int) -> str:
    body = f"938{2000 + n % 1000:04d}26{n % 1000:03d}"
    return upn_check_letter(body) + body


def child(i: int, sector: str = "health", **over: object) -> dict[str, object]:
    """A row keyed by whitelist field; ``over`` replaces fields (None = blank)."""
    services = {"health": "school_nursing", "education": "school", "social_care": "child_in_need"}
    row: dict[str, object] = {
        "local_id": f"{sector[0].upper()}{i:07d}",
        "nhs_number": nhs(i),
        "upn": upn(i),
        "given_name": f"Given{chr(65 + i % 26)}{chr(97 + i // 26 % 26)}",
        "family_name": f"Family{chr(65 + i % 26)}",
        "date_of_birth": date(2012, 1 + i % 12, 1 + i % 28),
        "sex": "F" if i % 2 else "M",
        "postcode": "LS6 2AB",
        "service": services[sector],
        "contact_route": "0113 496 0001",
        "involvement_start": date(2020, 9, 1),
        "involvement_end": None,
    }
    row.update(over)
    return row


def render(
    contract: str,
    rows: list[dict[str, object]],
    extras: dict[str, str] | None = None,
    drop_columns: tuple[str, ...] = (),
) -> bytes:
    """Bytes of an extract in a contract's format (names, codes, dates, encoding); ``contract``
    a contract's name or a sector (its contract in the tests' registry)."""
    c = load_contract(contract_of(contract))
    sex_code = {v: k for k, v in reversed(list(c.sex_codes.items()))}
    cols = [col for col in c.columns if col.name not in drop_columns]
    out = io.StringIO()
    w = csv.writer(out, delimiter=c.file.delimiter, lineterminator="\n")
    w.writerow([col.name for col in cols] + list(extras or {}))
    for row in rows:
        values = []
        for col in cols:
            v = row.get(col.field)
            if isinstance(v, date):
                v = v.strftime(c.date_format)
            elif col.field == "sex" and v in sex_code:
                v = sex_code[v]
            values.append("" if v is None else str(v))
        w.writerow(values + list((extras or {}).values()))
    return out.getvalue().encode(c.file.encoding)


def file_name(contract: str, night: date) -> str:
    return FILE_NAMES[contract_of(contract)].format(night=night)


def drop(
    settings,
    organisation: str,
    data: bytes,
    night: date = date(2026, 11, 24),
    name: str | None = None,
    complete: bool = True,
) -> Path:
    """Place a file in an organisation's drop folder (a code, or a sector: the tests'
    registry's organisation), honouring its contract's completion convention."""
    code = org_of(organisation)
    contract = settings.registry.get(code).contract
    folder = settings.drop_folder(code)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or file_name(contract, night)
    convention = load_contract(contract).file.completion
    if convention == "rename" and not complete:
        path = folder / (name + ".part")
        path.write_bytes(data)
        return path
    path = folder / name
    path.write_bytes(data)
    if convention == "marker" and complete:
        (folder / (name + ".done")).touch()
    return path


def run_python(script: str) -> subprocess.Popen:
    """Run ``script`` in a fresh interpreter with this test's settings (the environment)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=dict(os.environ))


def killed_intake(organisation: str, night: date) -> None:
    """An intake killed (SIGKILL, as the OOM killer does) the moment its staging file is
    written under its temporary name, before it is renamed into place."""
    proc = run_python(f"""
        import os, signal
        from datetime import date
        import childindex.staging.writer as writer
        from childindex.intake.process import run_intake
        from childindex.settings import load_settings

        real = writer._copy_accepted
        def copy_then_die(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        writer._copy_accepted = copy_then_die
        run_intake(load_settings(), {organisation!r}, date.fromisoformat({night.isoformat()!r}))
    """)
    assert proc.wait(timeout=300) == -signal.SIGKILL


def night_metrics(settings, night: date) -> dict[str, float]:
    """Every metric the index holds for ``night``, by name."""
    from sqlalchemy import text

    from childindex.index.db import engine_for

    with engine_for(settings.index_url).connect() as conn:
        return dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": night}).all())
