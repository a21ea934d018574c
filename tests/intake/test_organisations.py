"""Intake across registered organisations: each its own drop folder, receipts, quarantine,
ledger rows and pseudonyms, however many share a contract; folders of no registered
organisation are reported and never touched; the layouts added with the registry."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake import UnregisteredDrop, pending_everywhere, pending_files, run_intake, unregistered_drops
from childindex.staging.pseudonymise import hmac_hex, local_id_domain
from childindex.whitelist import SENSITIVE_SERVICE
from tests.helpers import ORG, child, drop, file_name, render
from tests.registries import org, registry_with, use_registry

NIGHT = date(2026, 11, 24)


def _receipts(settings, code: str) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(settings.outbox(code).glob("*.receipt.json"))]


def _staged(path: str, columns: str) -> list[tuple]:
    return duckdb.sql(
        f"SELECT {columns} FROM read_parquet('{path}', hive_partitioning = false) ORDER BY source_row"
    ).fetchall()


def _ledger(settings) -> list[tuple]:
    with engine_for(settings.index_url).connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT organisation, file_name, status, reason FROM file_ledger ORDER BY organisation, id")
            )
        ]


def test_organisations_sharing_a_contract_are_kept_apart(settings, monkeypatch, tmp_path) -> None:
    settings = use_registry(
        monkeypatch,
        tmp_path / "registry",
        [
            org("RH1", "health", "health_chis", name="North community health (synthetic)"),
            org("RH2", "health", "health_chis", name="South community health (synthetic)"),
        ],
    )
    rows = [child(i) for i in range(1, 5)]  # the same local ids (H0000001...) from both
    data = render("health_chis", rows)
    results = {}
    for code in ("RH1", "RH2"):
        drop(settings, code, data)  # the same bytes: the same SHA-256
        [results[code]] = run_intake(settings, code, NIGHT)
    for code, name in (("RH1", "North community health (synthetic)"), ("RH2", "South community health (synthetic)")):
        result = results[code]
        assert (result["organisation"], result["outcome"], result["rows_accepted"]) == (code, "accepted", 4)
        # Its own receipt, in its own outbox, naming it, its name and the contract.
        [receipt] = _receipts(settings, code)
        assert Path(result["receipt_path"]).parent == settings.outbox(code)
        assert (receipt["organisation"], receipt["organisation_name"], receipt["contract"]) == (
            code,
            name,
            "health_chis",
        )
        assert name in Path(result["receipt_path"]).with_suffix(".txt").read_text(encoding="utf-8")
        [archived] = (settings.archive_dir / code / NIGHT.isoformat()).glob("*/health_2026-11-24.csv")
        assert archived.read_bytes() == data and archived.parent.name == result["sha256"][:16]
        assert Path(result["staged_path"]).parent.parent.name == f"organisation={code}"
    assert results["RH1"]["sha256"] == results["RH2"]["sha256"]

    # The same local id from two organisations is two records: different source keys. The
    # NHS number is the same child's wherever it comes from: the same key.
    staged = {code: _staged(results[code]["staged_path"], "source_key, nhs_key, organisation") for code in results}
    assert {r[0] for r in staged["RH1"]}.isdisjoint({r[0] for r in staged["RH2"]})
    assert [r[1] for r in staged["RH1"]] == [r[1] for r in staged["RH2"]]
    for code in ("RH1", "RH2"):
        assert [r[0] for r in staged[code]] == [
            hmac_hex(settings.key, local_id_domain(code), str(row["local_id"])) for row in rows
        ]
        assert {r[2] for r in staged[code]} == {code}

    # A repeat delivery is recognised per organisation; a broken file is quarantined per organisation.
    drop(settings, "RH1", data, name="health_2026-11-24.csv")
    [again] = run_intake(settings, "RH1", NIGHT)
    assert again["outcome"] == "duplicate"
    assert run_intake(settings, "RH2", NIGHT) == []
    broken = render("health_chis", [child(1, service="Q")])
    night = date(2026, 11, 25)
    for code in ("RH1", "RH2"):
        drop(settings, code, broken, night=night)
        [result] = run_intake(settings, code, night)
        assert result["outcome"] == "rejected"
        [kept] = (settings.quarantine_dir / code).glob("*/health_2026-11-25.csv")
        assert kept.read_bytes() == broken
        assert json.loads((kept.parent / "quarantine.json").read_text())["organisation"] == code
        assert [r["outcome"] for r in _receipts(settings, code)].count("rejected") == 1
    assert len(_receipts(settings, "RH1")) == 3 and len(_receipts(settings, "RH2")) == 2
    assert _ledger(settings) == [
        ("RH1", "health_2026-11-24.csv", "staged", None),
        ("RH1", "health_2026-11-24.csv", "duplicate", "already_loaded"),
        ("RH1", "health_2026-11-25.csv", "quarantined", "all_rows_rejected"),
        ("RH2", "health_2026-11-24.csv", "staged", None),
        ("RH2", "health_2026-11-25.csv", "quarantined", "all_rows_rejected"),
    ]


def test_the_row_count_band_is_each_organisation_s_own(settings, monkeypatch, tmp_path) -> None:
    """RH1's nights of 90 rows say nothing about RH2's size: RH2's first small files are fine."""
    from datetime import timedelta

    settings = use_registry(
        monkeypatch,
        tmp_path / "registry",
        [org("RH1", "health", "health_chis"), org("RH2", "health", "health_chis")],
    )
    for k in range(3):
        drop(settings, "RH1", render("health_chis", [child(i + 100 * k) for i in range(1, 91)]), NIGHT + timedelta(k))
        [result] = run_intake(settings, "RH1", NIGHT + timedelta(k))
        assert result["outcome"] == "accepted"
    drop(settings, "RH2", render("health_chis", [child(i) for i in range(500, 505)]), NIGHT + timedelta(3))
    [result] = run_intake(settings, "RH2", NIGHT + timedelta(3))
    assert (result["outcome"], result["rows_accepted"]) == ("accepted", 5)
    drop(settings, "RH1", render("health_chis", [child(i) for i in range(500, 505)]), NIGHT + timedelta(3))
    [result] = run_intake(settings, "RH1", NIGHT + timedelta(3))
    assert result["outcome"] == "rejected"
    assert [p["rule"] for p in _receipts(settings, "RH1")[-1]["file_problems"]] == ["row_count_anomaly"]


def _age_atime(path: Path) -> int:
    """An access time before the modification time, so any read moves it (relatime)."""
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 10**10, st.st_mtime_ns))
    return path.stat().st_atime_ns


def test_a_drop_folder_of_no_registered_organisation_is_reported_and_never_touched(
    settings, monkeypatch, tmp_path
) -> None:
    # RH1's folder sits below a subfolder of the drop root: that subfolder is not unregistered.
    settings = use_registry(monkeypatch, tmp_path / "registry", data=registry_with(RH1={"drop_folder": "nhs/RH1"}))
    assert settings.drop_folder("RH1") == settings.drop_root / "nhs" / "RH1"
    (settings.drop_root / "RH1").rmdir()  # made for the tests' registry by the settings fixture
    data = render("health_chis", [child(1)])
    for sector in ("health", "education"):
        drop(settings, sector, render(sector, [child(2, sector)]))
    stranger = settings.drop_root / "RX9"  # an organisation not (yet) in the registry
    stranger.mkdir()
    files = [stranger / "health_2026-11-24.csv", stranger / "health_2026-11-24.csv.done", stranger / "old" / "x.csv"]
    files[2].parent.mkdir()
    for f in files:
        f.write_bytes(data)
    loose = settings.drop_root / "health_2026-11-24.csv"  # a file straight in the drop root
    beside = settings.drop_root / "nhs" / "RX8" / "health_2026-11-24.csv"  # beside RH1's folder, not in it
    beside.parent.mkdir()
    for f in (loose, beside):
        f.write_bytes(data)
        files.append(f)
    (settings.drop_root / ".keep").touch()  # hidden: not reported
    before = {f: (_age_atime(f), f.stat().st_mtime_ns) for f in files}

    reported = [UnregisteredDrop("RX9", 3), UnregisteredDrop("nhs", 1), UnregisteredDrop(".", 1)]
    assert unregistered_drops(settings) == reported
    # Tonight's work is the registered folders' complete files, in registry order.
    assert pending_everywhere(settings) == [
        ("RH1", settings.drop_root / "nhs" / "RH1" / "health_2026-11-24.csv"),
        ("840", settings.drop_root / "840" / "EDU_PUPILS_20261124.csv"),
    ]
    results = [r for o in settings.registry.organisations for r in run_intake(settings, o.code, NIGHT)]
    assert sorted((r["organisation"], r["outcome"]) for r in results) == [("840", "accepted"), ("RH1", "accepted")]

    for f, (atime, mtime) in before.items():  # still there, never read, never changed
        st = f.stat()
        assert (st.st_atime_ns, st.st_mtime_ns) == (atime, mtime), f"{f} was read or changed"
        assert f.read_bytes() == data
    assert unregistered_drops(settings) == reported
    assert not list(settings.quarantine_dir.rglob("*.csv")), "nothing of theirs is quarantined"
    receipts = sorted(p.parent.name for p in settings.outbox_root.rglob("*.receipt.json"))
    assert receipts == ["840", "RH1"], "receipts only for the registered organisations' files"


def test_the_new_layouts_through_intake(settings, monkeypatch, tmp_path) -> None:
    """health_epr: tab-separated, complete once renamed from '.part'; social_care_ehm:
    comma-separated with a '.done' marker. Each read, checked and staged as its contract says."""
    settings = use_registry(
        monkeypatch,
        tmp_path / "registry",
        [org("RH4", "health", "health_epr"), org("841", "social_care", "social_care_ehm")],
    )
    epr = render(
        "health_epr", [child(1), child(2, sensitive="true")] + [child(i) for i in (3, 4, 5)] + [child(6, service="Q")]
    )
    part = drop(settings, "RH4", epr, complete=False)
    assert part.name == "CYP_CASELOAD_20261124.tsv.part"
    assert pending_files(settings, "RH4") == [] and run_intake(settings, "RH4", NIGHT) == []
    part.rename(part.with_name(file_name("health_epr", NIGHT)))
    [result] = run_intake(settings, "RH4", NIGHT)
    [receipt] = _receipts(settings, "RH4")
    assert (result["outcome"], result["rows_read"], result["rows_accepted"]) == ("accepted_with_rejections", 6, 5)
    assert [(r["row"], r["column"], r["rule"]) for r in receipt["rejected_rows"]] == [(7, "service", "code_set")]
    assert (receipt["contract"], receipt["rows_sensitive"]) == ("health_epr", 1)
    staged = _staged(result["staged_path"], "source_row, organisation, sector, given_name, date_of_birth, service")
    assert staged == [
        (
            i,
            "RH4",
            "health",
            child(i)["given_name"],
            child(i)["date_of_birth"],
            "school_nursing" if i != 2 else SENSITIVE_SERVICE,
        )
        for i in range(1, 6)
    ]

    ehm = render("social_care_ehm", [child(i, "social_care") for i in range(1, 4)])
    path = drop(settings, "841", ehm, complete=False)
    assert path.name == "childrens_services_2026-11-24.csv"
    assert pending_files(settings, "841") == []
    path.with_name(path.name + ".done").touch()
    [result] = run_intake(settings, "841", NIGHT)
    assert (result["outcome"], result["rows_accepted"], result["organisation"]) == ("accepted", 3, "841")
    assert _receipts(settings, "841")[0]["contract"] == "social_care_ehm"
    assert [r[0] for r in _staged(result["staged_path"], "date_of_birth")] == [
        child(i, "social_care")["date_of_birth"] for i in range(1, 4)
    ]
    assert not list(settings.drop_folder("841").iterdir()), "file and marker moved away"


def test_an_unknown_organisation_is_refused_before_any_file_is_touched(settings) -> None:
    import pytest

    from childindex.errors import RegistryError

    path = drop(settings, "health", render("health", [child(1)]))
    for unknown in ("health", "RX9"):
        with pytest.raises(RegistryError, match=f"no organisation with code '{unknown}'"):
            run_intake(settings, unknown, NIGHT)
        with pytest.raises(RegistryError, match=f"no organisation with code '{unknown}'"):
            pending_files(settings, unknown)
    assert path.exists() and pending_files(settings, ORG["health"]) == [path]
