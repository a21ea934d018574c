"""How commands print (issue 19, item 6): every command has ``--json`` that prints one JSON
document and nothing else; the human view is tables and lines; a path is never split, on a
terminal of any width or through a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from childindex.cli import app
from tests.helpers import ORG

runner = CliRunner()


def _leaves(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...], object]]:
    out = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            out += _leaves(cmd, path)
        else:
            out.append((" ".join(path), path, cmd))
    return out


LEAVES = _leaves(get_command(app))


@pytest.mark.parametrize("name,path,cmd", LEAVES, ids=[n for n, _, _ in LEAVES])
def test_every_command_takes_json(name: str, path: tuple[str, ...], cmd) -> None:
    options = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
    assert "--json" in options, f"'childindex {name}' has no --json"


def test_json_is_one_document_and_the_human_view_is_not_json(settings, tmp_path: Path) -> None:
    """A small night through intake, link, summary and retention: --json parses whole; the
    default view is tables and lines (not JSON), with every count the JSON has."""
    gen = runner.invoke(app, ["generate", "--children", "120", "--truth-dir", str(tmp_path / "truth")])
    assert gen.exit_code == 0, gen.output
    taken = runner.invoke(app, ["intake", "--night", "2026-11-24", "--json"])
    assert taken.exit_code == 0, taken.output
    files = json.loads(taken.output)["files"]
    assert sorted(f["organisation"] for f in files) == sorted(ORG.values())
    linked = runner.invoke(app, ["link", "--night", "2026-11-24"])
    assert linked.exit_code == 0, linked.output
    assert not linked.output.lstrip().startswith("{")
    assert "linkage, night 2026-11-24" in linked.output and "files" in linked.output
    assert "model: v" in linked.output
    again = json.loads(runner.invoke(app, ["link", "--night", "2026-11-24", "--json"]).output)
    assert again["files"] == 0  # everything was linked by the first run
    human = runner.invoke(app, ["summary", "--night", "2026-11-24"])
    data = json.loads(runner.invoke(app, ["summary", "--night", "2026-11-24", "--json"]).output)
    assert human.exit_code == 0 and not human.output.lstrip().startswith("{")
    assert f"children in the index: {data['children']}" in human.output
    for sector, e in data["sectors"].items():
        row = next(line for line in human.output.splitlines() if line.strip().startswith(sector))
        assert row.split()[1:] == [str(e[k]) for k in ("organisations", "files", "rows_read", "rows_accepted",
                                                         "rows_rejected", "files_quarantined")]  # fmt: skip
    assert f"receipts: {settings.outbox_root}" in human.output.splitlines()
    cert = json.loads(runner.invoke(app, ["retention", "--dry-run", "--today", "2026-11-25", "--json"]).output)
    shown = runner.invoke(app, ["retention", "--dry-run", "--today", "2026-11-25"])
    assert cert["dry_run"] is True and shown.exit_code == 0
    assert f"would delete: {cert['rows_deleted']:,} rows, {cert['files_deleted']:,} files" in shown.output
    rules = {line.split()[0] for line in shown.output.splitlines()[3:] if line.strip()}
    assert {r["rule"] for r in cert["rules"]} <= rules
    policy = json.loads(runner.invoke(app, ["retention", "--policy", "--json"]).output)
    assert {r["name"] for r in policy} == {r["rule"] for r in cert["rules"]}


def test_a_long_path_is_never_split_through_a_pipe_or_a_narrow_terminal(tmp_path: Path) -> None:
    """The real command in its own process, output piped (rich would wrap at 80 columns) and
    with COLUMNS=40: each path is whole on one line."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-below-it-" * 4) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHILDINDEX_")}
    registry = Path(__file__).resolve().parents[1] / "organisations.yaml"
    env |= {
        "CHILDINDEX_DATA_DIR": str(deep),
        "CHILDINDEX_ORGANISATIONS_FILE": str(registry),
        "CHILDINDEX_CONFIG_FILE": "",
    }
    for columns in (None, "40"):
        if columns:
            env["COLUMNS"] = columns
        run = subprocess.run(
            [sys.executable, "-m", "childindex.cli", "organisations", "show", ORG["health"]],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert f"drop folder: {deep / 'drop' / ORG['health']}" in lines, run.stdout
        assert f"outbox: {deep / 'outbox' / ORG['health']}" in lines, run.stdout
        assert max(len(line) for line in lines) > 150  # long lines, not folded
