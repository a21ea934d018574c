"""The organisations registry: ``organisations list``, ``show`` and ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, new_app

app = new_app("The organisations registry: who sends which extract, from which area, to which folders.")


@app.command("list")
def organisations_list(
    sector: Annotated[str | None, typer.Option(help="Only this sector (education, health, social_care).")] = None,
    area: Annotated[str | None, typer.Option(help="Only organisations serving this area (GSS code).")] = None,
) -> None:
    """Every registered organisation: code, name, sector, contract and areas."""
    from rich.table import Table

    settings = cli_settings(need_key=False)
    registry = settings.registry
    table = Table("code", "name", "sector", "contract", "areas", title=str(settings.organisations_file))
    shown = 0
    for org in registry.organisations:
        if (sector and org.sector != sector) or (area and area not in org.areas):
            continue
        table.add_row(org.code, org.name, org.sector, org.contract, ", ".join(org.areas))
        shown += 1
    console.print(table)
    console.print(f"{shown} of {len(registry.organisations)} organisations; {len(registry.areas)} areas")


@app.command("show")
def organisations_show(code: Annotated[str, typer.Argument(help="The organisation's code.")]) -> None:
    """One organisation as JSON, with its areas' names and its resolved folders."""
    settings = cli_settings(need_key=False)
    registry = settings.registry
    org = registry.get(code)
    console.print_json(
        data={
            **org.model_dump(mode="json"),
            "area_names": [registry.area_by_code[a].name for a in org.areas],
            "drop_folder_resolved": str(settings.drop_folder(code)),
            "outbox_resolved": str(settings.outbox(code)),
        }
    )


@app.command("validate")
def organisations_validate(
    path: Annotated[
        Path | None, typer.Argument(help="A registry file to check (default: the configured one).", dir_okay=False)
    ] = None,
) -> None:
    """Check a registry file: every entry and field, codes unique, contracts and areas known.

    Exits 0 when valid, 2 naming each entry and field at fault.
    """
    from childindex.organisations.registry import parse_registry

    target = path or cli_settings(need_key=False).organisations_file
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        from childindex.errors import RegistryError

        raise RegistryError(f"cannot read {target}: {exc.strerror}") from None
    registry = parse_registry(text, str(target))
    by_sector = {s: len(registry.in_sector(s)) for s in ("education", "health", "social_care")}
    console.print(
        f"{target}: valid, version {registry.version}: {len(registry.organisations)} organisations "
        f"({', '.join(f'{n} {s}' for s, n in by_sector.items())}) in {len(registry.areas)} areas"
    )
