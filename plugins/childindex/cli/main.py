"""The ``childindex`` command.

Exit codes: 0 success; 1 the work ran and found a problem (a failed DAG, a rejected
file); 2 a usage or configuration error (the message says what to set).
"""

from __future__ import annotations

from childindex.cli import (
    contracts,
    database,
    doctor,
    intake,
    keys,
    linkage,
    organisations,
    reports,
    retention,
    simulation,
)
from childindex.cli.app import new_app

app = new_app(__doc__)
# Top-level commands, in the order a newcomer meets them; three named groups.
for group in (simulation, keys, intake, linkage, reports, retention, doctor):
    app.add_typer(group.app)
app.add_typer(database.app, name="db")
app.add_typer(contracts.app, name="contracts")
app.add_typer(organisations.app, name="organisations")


def main() -> None:
    app()
