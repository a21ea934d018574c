from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from childindex.cli import app
from tests.helpers import ORG

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
        "check",
        "reprocess",
        "contracts",
        "contracts list",
        "contracts show",
        "contracts docs",
        "organisations",
        "organisations list",
        "organisations show",
        "organisations validate",
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


def test_unknown_organisation_exit_2(data_dir) -> None:
    result = runner.invoke(app, ["intake", "--organisation", "police"])
    assert result.exit_code == 2 and "no organisation with code 'police' in the registry" in result.output
    assert "Traceback" not in result.output


def test_generate_intake_link_summary_without_airflow(data_dir, tmp_path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    gen = runner.invoke(app, ["generate", "--children", "200", "--truth-dir", str(tmp_path / "truth")])
    assert gen.exit_code == 0, gen.output
    for code in ORG.values():
        r = runner.invoke(app, ["intake", "--organisation", code, "--night", "2026-11-24"])
        assert r.exit_code == 0, r.output
        assert "accepted" in r.output
    linked = runner.invoke(app, ["link", "--night", "2026-11-24", "--json"])
    assert json.loads(linked.output)["files"] == 3
    summary = runner.invoke(app, ["summary", "--night", "2026-11-24", "--json"])
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


@pytest.mark.parametrize("layouts", ["tests", "other"])
@pytest.mark.parametrize("night_number", [0, 3])
def test_check_passes_every_generated_file(tmp_path, monkeypatch, layouts: str, night_number: int) -> None:
    """The pre-check accepts what the generator writes, initial load and delta, every contract:
    named by the registered organisation, or by the contract before it is registered."""
    from childindex.contracts import contract_names
    from childindex.organisations import load_registry
    from childindex.simulation.synthetic import generate_night
    from tests.conftest import TEST_REGISTRY
    from tests.simulation.synthetic_helpers import OTHER_LAYOUTS

    registry_file = TEST_REGISTRY
    if layouts == "other":
        registry_file = tmp_path / "other.yaml"
        registry_file.write_text(OTHER_LAYOUTS, encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(registry_file))
    registry = load_registry(registry_file)
    result = generate_night(
        tmp_path / "drop", tmp_path / "truth", registry=registry, children=3000, night_number=night_number
    )
    assert set(result.files) == {o.code for o in registry.organisations}
    sent = {registry.get(code).contract for code in result.files}
    assert sent == ({"health_chis", "education_mis", "social_care_cms"} if layouts == "tests" else
                    {"health_epr", "education_mis", "social_care_ehm"})  # fmt: skip
    for code, path in result.files.items():
        contract = registry.get(code).contract
        assert contract in contract_names()
        by_code = runner.invoke(app, ["check", "--organisation", code, str(path), "--json"])
        assert by_code.exit_code == 0, by_code.output[-2000:]
        receipt = json.loads(by_code.output)
        assert receipt["outcome"] == "accepted"
        assert (receipt["organisation"], receipt["contract"]) == (code, contract)
        assert receipt["rows_read"] == receipt["rows_accepted"] == result.rows[code] > 0
        by_contract = runner.invoke(app, ["check", "--contract", contract, str(path), "--json"])
        assert by_contract.exit_code == 0, by_contract.output[-2000:]
        unregistered = json.loads(by_contract.output)
        assert (unregistered["organisation"], unregistered["contract"]) == ("unregistered", contract)
        assert {k: unregistered[k] for k in ("outcome", "rows_read", "rows_accepted", "sha256")} == {
            k: receipt[k] for k in ("outcome", "rows_read", "rows_accepted", "sha256")
        }


def test_check_names_its_sender_and_exits_by_outcome(data_dir, tmp_path) -> None:
    """``check --organisation CODE`` reads the file with that organisation's contract;
    ``--contract NAME`` with a contract's; exit 0 clean, 1 rows rejected, 2 file rejected."""
    from tests.helpers import child, file_name, render

    night = date(2026, 11, 24)
    clean = tmp_path / file_name("health", night)
    clean.write_bytes(render("health", [child(1), child(2)]))
    text = runner.invoke(app, ["check", "--organisation", ORG["health"], str(clean)], env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert f"from Test community health (synthetic) ({ORG['health']})" in text.output
    assert "Contract: health_chis v" in text.output
    one_bad = tmp_path / file_name("health", night + timedelta(days=1))
    one_bad.write_bytes(render("health", [child(i) for i in range(1, 10)] + [child(10, service="not-a-code")]))
    rows = runner.invoke(app, ["check", "--contract", "health_chis", str(one_bad), "--json"])
    assert rows.exit_code == 1, rows.output
    assert json.loads(rows.output)["outcome"] == "accepted_with_rejections"
    assert (json.loads(rows.output)["rows_accepted"], json.loads(rows.output)["rows_rejected"]) == (9, 1)
    # A malformed date of birth is set aside (missing_identity: stage): every row kept, yet something to fix.
    aside = tmp_path / file_name("health", night + timedelta(days=2))
    aside.write_bytes(render("health", [child(i) for i in range(1, 10)] + [child(10, date_of_birth="not-a-date")]))
    kept = runner.invoke(app, ["check", "--contract", "health_chis", str(aside), "--json"])
    assert kept.exit_code == 1, kept.output
    got = json.loads(kept.output)
    assert (got["outcome"], got["rows_accepted"], got["values_set_aside_total"]) == ("accepted", 10, 1)
    # The health file checked as the education authority's: its name and columns are not the contract's.
    wrong = runner.invoke(app, ["check", "--organisation", ORG["education"], str(clean), "--json"])
    assert wrong.exit_code == 2, wrong.output
    assert json.loads(wrong.output)["outcome"] == "rejected"
    # The sender must be named, once.
    for args in ([], ["--organisation", ORG["health"], "--contract", "health_chis"]):
        usage = runner.invoke(app, ["check", *args, str(clean)])
        assert usage.exit_code == 2 and "--organisation CODE, or --contract NAME" in usage.output, args
    unknown = runner.invoke(app, ["check", "--organisation", "RX9", str(clean)])
    assert unknown.exit_code == 2 and "no organisation with code 'RX9'" in unknown.output
    agency = runner.invoke(app, ["check", "--contract", "health", str(clean)])  # a sector is no contract
    assert agency.exit_code == 2 and "unknown contract 'health'" in agency.output
    assert clean.exists() and one_bad.exists(), "the pre-check only reads"


def test_intake_takes_the_named_organisations_or_all(settings) -> None:
    from tests.helpers import child, drop, render

    night = "2026-11-24"
    files = {
        "health": drop(settings, "health", render("health", [child(1)])),
        "education": drop(settings, "education", render("education", [child(2, "education")])),
        "social_care": drop(settings, "social_care", render("social_care", [child(3, "social_care", upn=None)])),
    }
    # An unknown code among the named ones: nothing is touched.
    refused = runner.invoke(app, ["intake", "--organisation", ORG["health"], "--organisation", "police"])
    assert refused.exit_code == 2 and "'police'" in refused.output
    assert all(path.exists() for path in files.values())
    # Two of the three, by code.
    some = runner.invoke(
        app, ["intake", "--organisation", ORG["health"], "--organisation", ORG["social_care"], "--night", night]
    )
    codes = ([ORG["health"]], [ORG["social_care"]])
    rows = [line.split() for line in some.output.splitlines() if line.split()[:1] in codes]
    assert some.exit_code == 0 and [r[2] for r in rows] == ["accepted", "accepted"], some.output
    assert files["health"].name in some.output and files["social_care"].name in some.output
    assert files["education"].name not in some.output
    assert not files["health"].exists() and not files["social_care"].exists() and files["education"].exists()
    # None named: every organisation's folder (only education's file is left).
    rest = runner.invoke(app, ["intake", "--night", night])
    assert rest.exit_code == 0, rest.output
    assert files["education"].name in rest.output and "accepted" in rest.output
    assert files["health"].name not in rest.output and not files["education"].exists()
    # A file rejected as a whole: exit 1.
    drop(settings, "education", b"not,an,extract\n", night=date(2026, 11, 25))
    rejected = runner.invoke(app, ["intake", "--organisation", ORG["education"], "--night", "2026-11-25"])
    assert rejected.exit_code == 1 and "rejected" in rejected.output


def test_the_demos_airflow_ui_listens_on_this_machine_only() -> None:
    from childindex.simulation import demo

    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert "--serve" in result.output and "laptop demo only" in result.output
    assert demo.ui_command(8080)[-4:] == ["--host", "127.0.0.1", "--port", "8080"]
    first, second = demo.ui_env({}), demo.ui_env({})
    assert first["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert len(first["AIRFLOW__API_AUTH__JWT_SECRET"]) == 64
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] != second["AIRFLOW__API_AUTH__JWT_SECRET"], "a secret per run"
