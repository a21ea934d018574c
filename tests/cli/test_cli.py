from __future__ import annotations

import json

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from childindex.cli import app

runner = CliRunner()


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        out.append(path)
        if hasattr(cmd, "commands"):
            out += _commands(cmd, path)
    return out


ALL = _commands(get_command(app))


def test_the_expected_commands_exist() -> None:
    names = {" ".join(c) for c in ALL}
    assert {
        "generate",
        "demo",
        "init-key",
        "db",
        "db upgrade",
        "intake",
        "link",
        "summary",
        "retention",
        "settings",
        "contracts",
        "contracts show",
        "contracts docs",
    } <= names


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.splitlines()) > 3


def test_missing_key_is_one_clear_line_and_exit_2(data_dir, monkeypatch) -> None:
    monkeypatch.delenv("CHILDINDEX_PSEUDONYMISATION_KEY")
    result = runner.invoke(app, ["link"])
    assert result.exit_code == 2
    assert "CHILDINDEX_PSEUDONYMISATION_KEY" in result.output
    assert "Traceback" not in result.output


def test_unknown_agency_exit_2(data_dir) -> None:
    result = runner.invoke(app, ["intake", "--agency", "police"])
    assert result.exit_code == 2 and "education, health, social_care" in result.output


def test_generate_intake_link_summary_without_airflow(data_dir, tmp_path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    gen = runner.invoke(app, ["generate", "--children", "200", "--truth-dir", str(tmp_path / "truth")])
    assert gen.exit_code == 0, gen.output
    for agency in ("education", "health", "social_care"):
        r = runner.invoke(app, ["intake", "--agency", agency, "--night", "2026-11-24"])
        assert r.exit_code == 0, r.output
        assert "accepted" in r.output
    linked = runner.invoke(app, ["link", "--night", "2026-11-24"])
    assert json.loads(linked.output)["files"] == 3
    summary = runner.invoke(app, ["summary", "--night", "2026-11-24"])
    assert json.loads(summary.output)["children"] > 150


def test_settings_masks_the_key(data_dir) -> None:
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 0
    assert "test-only-key" not in result.output and "**********" in result.output


def test_init_key_refuses_to_overwrite(tmp_path) -> None:
    key = tmp_path / "k"
    assert runner.invoke(app, ["init-key", str(key)]).exit_code == 0
    again = runner.invoke(app, ["init-key", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.output


def test_contracts_docs_check(tmp_path) -> None:
    assert runner.invoke(app, ["contracts", "docs", "--out", str(tmp_path), "--check"]).exit_code == 1
    assert runner.invoke(app, ["contracts", "docs", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["contracts", "docs", "--out", str(tmp_path), "--check"]).exit_code == 0


@pytest.mark.parametrize("night_number", [0, 3])
def test_check_passes_every_generated_file(tmp_path, night_number: int) -> None:
    """The pre-check accepts what the generator writes, initial load and delta, all agencies."""
    from childindex.simulation.synthetic import generate_night

    result = generate_night(tmp_path / "drop", tmp_path / "truth", children=3000, night_number=night_number)
    assert set(result.files) == {"education", "health", "social_care"}
    for agency, path in result.files.items():
        r = runner.invoke(app, ["check", "--agency", agency, str(path), "--json"])
        assert r.exit_code == 0, r.output[-2000:]
        receipt = json.loads(r.output)
        assert receipt["outcome"] == "accepted"
        assert receipt["rows_read"] == receipt["rows_accepted"] == result.rows[agency] > 0


def test_the_demos_airflow_ui_listens_on_this_machine_only() -> None:
    from childindex.simulation import demo

    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert "--serve" in result.output and "laptop demo only" in result.output
    assert demo.ui_command(8080)[-4:] == ["--host", "127.0.0.1", "--port", "8080"]
    first, second = demo.ui_env({}), demo.ui_env({})
    assert first["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert len(first["AIRFLOW__API_AUTH__JWT_SECRET"]) == 64
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] != second["AIRFLOW__API_AUTH__JWT_SECRET"], "a secret per run"
