"""The organisations registry: ``organisations list``, ``show`` and ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, new_app
from childindex.cli.output import JsonFlag, fields_table, line, paths, print_json, show, table

app = new_app("The organisations registry: who sends which extract, from which area, to which folders.")


@app.command("list")
def organisations_list(
    sector: Annotated[str | None, typer.Option(help="Only this sector (education, health, social_care).")] = None,
    area: Annotated[str | None, typer.Option(help="Only organisations serving this area (GSS code).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every registered organisation: code, name, sector, contract and areas."""
    settings = cli_settings(need_key=False)
    registry = settings.registry
    shown = [
        org
        for org in registry.organisations
        if not ((sector and org.sector != sector) or (area and area not in org.areas))
    ]
    if as_json:
        print_json([org.model_dump(mode="json") for org in shown])
        return
    t = table("code", "name", "sector", "contract", "areas")
    for org in shown:
        t.add_row(org.code, org.name, org.sector, org.contract, ", ".join(org.areas))
    show(t)
    console.print(f"{len(shown)} of {len(registry.organisations)} organisations; {len(registry.areas)} areas")
    line("registry", settings.organisations_file)


@app.command("show")
def organisations_show(
    code: Annotated[str, typer.Argument(help="The organisation's code.")],
    as_json: JsonFlag = False,
) -> None:
    """One organisation: its entry, its areas' names and its resolved folders."""
    settings = cli_settings(need_key=False)
    registry = settings.registry
    org = registry.get(code)
    names = [registry.area_by_code[a].name for a in org.areas]
    if as_json:
        print_json(
            {
                **org.model_dump(mode="json"),
                "area_names": names,
                "drop_folder_resolved": str(settings.drop_folder(code)),
                "outbox_resolved": str(settings.outbox(code)),
            }
        )
        return
    own = "its own" if org.max_rejected_share is not None else "the default"
    t = fields_table(
        [
            ("sector", org.sector),
            ("contract", org.contract),
            ("areas", ", ".join(f"{a} {n}" for a, n in zip(org.areas, names, strict=True))),
            ("max rejected share", f"{settings.max_rejected_share(code)} ({own})"),
        ],
        title=f"{org.code}: {org.name}",
    )
    show(t)
    paths({"drop folder": settings.drop_folder(code), "outbox": settings.outbox(code)})


@app.command("validate")
def organisations_validate(
    path: Annotated[
        Path | None, typer.Argument(help="A registry file to check (default: the configured one).", dir_okay=False)
    ] = None,
    as_json: JsonFlag = False,
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
    if as_json:
        print_json(
            {
                "file": str(target),
                "valid": True,
                "version": registry.version,
                "organisations": len(registry.organisations),
                "by_sector": by_sector,
                "areas": len(registry.areas),
            }
        )
        return
    console.print(
        f"{target}: valid, version {registry.version}: {len(registry.organisations)} organisations "
        f"({', '.join(f'{n} {s}' for s, n in by_sector.items())}) in {len(registry.areas)} areas"
    )
