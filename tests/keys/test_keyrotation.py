"""Key rotation: every pseudonym re-keyed in one go, no link lost, the old key refused after."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from childindex.errors import KeyMismatch, RotationRefused
from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.keys.rotation import rotate_key
from childindex.linkage import link_pending
from childindex.settings import load_settings
from childindex.staging.pseudonymise import hmac_hex, key_id
from tests.conftest import TEST_KEY
from tests.helpers import ORG, child, drop, render

NIGHT = date(2026, 11, 24)
NEW_KEY = "rotated-test-key-" + "fedcba9876543210" * 3  # synthetic data only
HEALTH, SOCIAL_CARE = ORG["health"], ORG["social_care"]


def _index(settings) -> dict:
    with engine_for(settings.index_url).connect() as conn:
        records = conn.execute(text("SELECT organisation, source_key, child_id, nhs_key FROM source_record")).all()
        return {
            "children": sorted(conn.execute(text("SELECT child_id FROM child")).scalars()),
            "records": {(r.organisation, r.child_id) for r in records},
            "keys": {r.source_key for r in records},
            "nhs_keys": {r.nhs_key for r in records if r.nhs_key},
            "involvements": conn.execute(text("SELECT count(*) FROM involvement")).scalar_one(),
            "epochs": conn.execute(text("SELECT epoch, key_id FROM key_epoch ORDER BY epoch")).all(),
        }


def _linked_night(settings) -> None:
    # Child 1 is known to health and social care (one child id); 2 and 3 to health only.
    drop(settings, "health", render("health", [child(1), child(2), child(3)]), night=NIGHT)
    drop(settings, "social_care", render("social_care", [child(1, "social_care", upn=None)]), night=NIGHT)
    for organisation in (HEALTH, SOCIAL_CARE):
        run_intake(settings, organisation, NIGHT)
    link_pending(settings, NIGHT)
    from childindex.notices.night import send_notices

    assert send_notices(settings, NIGHT).notices == 2  # health and social care, of each other


def test_rotation_rekeys_every_pseudonym_and_keeps_every_link(settings) -> None:
    _linked_night(settings)
    before = _index(settings)
    assert len(before["children"]) == 3 and len(before["records"]) == 4
    with engine_for(settings.index_url).begin() as conn:  # a person's decision must survive too
        keys = sorted(before["keys"])
        conn.execute(
            text(
                "INSERT INTO link_decision (key_a, key_b, decision, decided_by, decided_at) "
                "VALUES (:a, :b, 'non_match', 'tester', :t)"
            ),
            {"a": keys[0], "b": keys[1], "t": NIGHT},
        )

    dry = rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1), dry_run=True)
    assert dry.unmapped == {} and dry.files_read == 2 and _index(settings) == before, "a dry run changes nothing"

    today = NIGHT + timedelta(days=1)
    done = rotate_key(settings, NEW_KEY.encode(), today)
    after = _index(settings)
    assert after["children"] == before["children"] and after["records"] == before["records"]
    assert after["involvements"] == before["involvements"]
    assert after["keys"].isdisjoint(before["keys"]) and after["nhs_keys"].isdisjoint(before["nhs_keys"])
    assert hmac_hex(NEW_KEY.encode(), f"local_id:{HEALTH}", "H0000001") in after["keys"]
    assert after["epochs"] == [(1, key_id(TEST_KEY.encode())), (2, key_id(NEW_KEY.encode()))]
    assert done.rows_rekeyed == {
        "source_record": 4,
        "involvement": 4,
        "review_item": 0,
        "link_decision": 1,
        "notice_told": 2,
        "notice_pending": 0,
    }
    assert done.staging_files_deleted == 2 and not list(settings.staging_dir.rglob("*.parquet"))
    with engine_for(settings.index_url).connect() as conn:
        a, b = conn.execute(text("SELECT key_a, key_b FROM link_decision")).one()
    assert {a, b} <= after["keys"] and a < b
    with engine_for(settings.index_url).connect() as conn:
        told = conn.execute(text("SELECT recipient_key, other_key FROM notice_told")).all()
    assert len(told) == 2 and {k for pair in told for k in pair} <= after["keys"], "what was told follows its keys"

    # The certificate holds counts and key ids: no key, no pseudonym.
    cert = (settings.reports_dir / "keys" / f"rotation-{today}-epoch2.json").read_text()
    assert json.loads(cert)["records"] == {HEALTH: 3, SOCIAL_CARE: 1}
    assert not re.search(r"[0-9a-f]{32}", cert) and NEW_KEY not in cert and TEST_KEY not in cert

    # The old key is refused from now on; with the new one, a re-sent record is recognised.
    later = NIGHT + timedelta(days=2)
    drop(settings, "health", render("health", [child(1, postcode="LS1 1AA")]), night=later)
    with pytest.raises(KeyMismatch, match="epoch 2"):
        run_intake(settings, HEALTH, later)
    # In Airflow it fails the task for good: retrying cannot fix a key.
    from airflow.sdk import RetryAction

    from childindex.orchestration import intake_one, retry_policy

    pending = next(settings.drop_folder(HEALTH).glob("*.csv"))
    with pytest.raises(KeyMismatch, match=key_id(NEW_KEY.encode())) as refused:
        intake_one(HEALTH, str(pending), later)
    assert refused.value.stage == "keys" and refused.value.night == later
    assert retry_policy().evaluate(refused.value, try_number=1, max_tries=3).action is RetryAction.FAIL
    assert pending.exists(), "the file waits for the right key"
    rotated = load_settings(pseudonymisation_key=NEW_KEY)
    run_intake(rotated, HEALTH, later)
    link_pending(rotated, later)
    final = _index(rotated)
    assert final["records"] == before["records"] and final["children"] == before["children"]


def test_records_no_extract_covers_stop_the_rotation_unless_dropped(settings) -> None:
    _linked_night(settings)
    for path in settings.archive_dir.glob(f"{SOCIAL_CARE}/*/*/*"):
        path.unlink()  # the archive no longer holds social care's extract
    before = _index(settings)
    with pytest.raises(RotationRefused, match=f"1 records are in no extract read .*{SOCIAL_CARE}: 1"):
        rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1))
    assert _index(settings) == before, "nothing changed"
    # A full extract from the organisation covers them.
    full = settings.data_dir / "sc_extract_20261125.txt"
    full.write_bytes(render("social_care", [child(1, "social_care", upn=None)]))
    rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1), extracts=[(SOCIAL_CARE, full)])
    assert _index(settings)["records"] == before["records"]


def test_dropping_unmapped_records_deletes_them(settings) -> None:
    _linked_night(settings)
    for path in settings.archive_dir.glob(f"{SOCIAL_CARE}/*/*/*"):
        path.unlink()
    done = rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1), drop_unmapped=True)
    assert done.unmapped == {SOCIAL_CARE: 1} and done.records_deleted == 1
    assert {o for o, _ in _index(settings)["records"]} == {HEALTH}


def test_the_new_key_must_be_new_and_strong(settings) -> None:
    with pytest.raises(RotationRefused, match="in use"):
        rotate_key(settings, TEST_KEY.encode(), NIGHT)
    with pytest.raises(RotationRefused, match="at least 32 bytes"):
        rotate_key(settings, b"short", NIGHT)


def test_rotation_on_postgresql(data_dir, pg_url) -> None:
    from childindex.index.db import migrate

    settings = load_settings(index_url=pg_url)
    settings.ensure_dirs()
    migrate(settings.index_url)
    _linked_night(settings)
    before = _index(settings)
    done = rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1))
    after = _index(settings)
    assert done.rows_rekeyed["source_record"] == 4 and done.unmapped == {}
    assert after["children"] == before["children"] and after["records"] == before["records"]
    assert after["keys"].isdisjoint(before["keys"]) and len(after["epochs"]) == 2


def _without_social_care_archive(settings) -> Path:
    """After a linked night: the archive loses social care's extract, and a full extract
    from it waits in a file of its own."""
    _linked_night(settings)
    for path in settings.archive_dir.glob(f"{SOCIAL_CARE}/*/*/*"):
        path.unlink()
    full = settings.data_dir / "sc_extract_20261125.txt"
    full.write_bytes(render("social_care", [child(1, "social_care", upn=None)]))
    return full


def test_cli_extract_is_code_equals_path(settings, tmp_path) -> None:
    from typer.testing import CliRunner

    from childindex.cli import app
    from childindex.keyfiles import create_key_file

    runner = CliRunner()
    full = _without_social_care_archive(settings)
    before = _index(settings)
    key_file = create_key_file(tmp_path / "new.key")
    base = ["rotate-key", "--new-key-file", str(key_file), "--today", "2026-11-25"]
    # Not CODE=PATH, or a code the registry does not know: a usage error, nothing changed.
    bad = runner.invoke(app, [*base, "--extract", str(full)])
    assert bad.exit_code == 2 and "CODE=PATH" in bad.output
    unknown = runner.invoke(app, [*base, "--extract", f"XYZ99={full}"])
    assert unknown.exit_code == 2 and "XYZ99" in unknown.output
    # Without the extract the rotation stops, naming the organisation.
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1 and f"{SOCIAL_CARE}: 1" in refused.output
    assert _index(settings) == before
    done = runner.invoke(app, [*base, "--extract", f"{SOCIAL_CARE}={full}"])
    assert done.exit_code == 0, done.output
    after = _index(settings)
    assert after["records"] == before["records"] and after["keys"].isdisjoint(before["keys"])
    assert len(after["epochs"]) == 2


def test_an_extract_read_as_another_organisations_is_unusable(settings) -> None:
    full = _without_social_care_archive(settings)
    before = _index(settings)
    # Social care's file named as health's: not health's contract, so nothing is read from it.
    with pytest.raises(RotationRefused, match=f"{SOCIAL_CARE}: 1"):
        rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1), extracts=[(HEALTH, full)])
    dry = rotate_key(settings, NEW_KEY.encode(), NIGHT + timedelta(days=1), extracts=[(HEALTH, full)], dry_run=True)
    assert dry.files_unusable == [full.name] and dry.unmapped == {SOCIAL_CARE: 1}
    assert _index(settings) == before


def test_an_organisation_no_longer_registered_leaves_its_records_unmapped(settings, tmp_path) -> None:
    from childindex.errors import RegistryError

    _linked_night(settings)
    before = _index(settings)
    # Social care leaves the registry: its archive folder stays, but nothing can read it.
    registry = tmp_path / "organisations.yaml"
    registry.write_text(
        "version: 1\n"
        "areas:\n  - {code: E06000047, name: County Durham}\n"
        "organisations:\n"
        f"  - {{code: {HEALTH}, name: Health, sector: health, contract: health_chis, areas: [E06000047]}}\n",
        encoding="utf-8",
    )
    smaller = load_settings(organisations_file=registry)
    assert list(smaller.archive_dir.glob(f"{SOCIAL_CARE}/*/*/*"))
    with pytest.raises(RotationRefused, match=f"{SOCIAL_CARE}: 1"):
        rotate_key(smaller, NEW_KEY.encode(), NIGHT + timedelta(days=1))
    with pytest.raises(RegistryError, match=SOCIAL_CARE):
        rotate_key(smaller, NEW_KEY.encode(), NIGHT + timedelta(days=1), extracts=[(SOCIAL_CARE, Path("x.txt"))])
    assert _index(settings) == before
    done = rotate_key(smaller, NEW_KEY.encode(), NIGHT + timedelta(days=1), drop_unmapped=True)
    assert done.unmapped == {SOCIAL_CARE: 1} and done.files_read == 1
    assert {o for o, _ in _index(settings)["records"]} == {HEALTH}


def test_two_first_files_at_once_share_epoch_one(settings, monkeypatch) -> None:
    """Intake fans out: two tasks may both find no key recorded on a fresh index. The one
    whose insert collides reads the epoch the other recorded instead of failing its file."""
    from datetime import date

    from childindex.keys import epochs

    assert epochs.check_key(settings.index_url, settings.key, date(2026, 11, 24)) == 1  # the other task
    real = epochs._verified
    calls = []

    def first_sees_nothing(conn, wanted):
        calls.append(wanted)
        return None if len(calls) == 1 else real(conn, wanted)

    monkeypatch.setattr(epochs, "_verified", first_sees_nothing)
    assert epochs.check_key(settings.index_url, settings.key, date(2026, 11, 24)) == 1
    assert len(calls) == 2
