"""Intake against a careless agency, an attacker and a failing machine (issue 18, items 1, 2,
4, 5, 7, 8 and 9).

Each test reproduces a failure an adversarial run found; each failed on the code before the
fix (checked against commit 45dc5f5) and passes now. Files are synthetic (tests/helpers.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from childindex.errors import DiskFull
from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.retention import run_retention
from tests.helpers import ORG, child, drop, killed_intake, render, run_python

NIGHT = date(2026, 11, 24)
HEALTH = ORG["health"]


def _ledger(settings) -> list[tuple]:
    with engine_for(settings.index_url).connect() as conn:
        return conn.execute(text("SELECT file_name, status, reason, night, staged_path FROM file_ledger")).all()


def _receipts(settings, code: str = HEALTH) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(settings.outbox(code).glob("*.receipt.json"))]


def _debris(settings) -> list[Path]:
    """Every temporary file under the data directory, and every file in a work folder."""
    data = settings.data_dir
    found = [p for p in data.rglob("*.tmp") if p.is_file()]
    return found + [p for p in settings.work_dir.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- 1. debris


def test_a_killed_intake_leaves_nothing_the_next_intake_keeps(settings) -> None:
    """Before: the killed intake's ``<sha>.tmp`` stayed in staging for good (no rule knew it)."""
    drop(settings, "health", render("health", [child(1), child(2)]), night=NIGHT)
    killed_intake(HEALTH, NIGHT)
    left = _debris(settings)
    assert any(p.is_relative_to(settings.staging_dir) for p in left), "the kill left a half-made staging file"
    [result] = run_intake(settings, HEALTH, NIGHT)  # the file is still in the drop folder: taken again
    assert result["outcome"] == "accepted"
    assert _debris(settings) == [], "the next intake removed what the killed one left"
    assert [p.name for p in settings.staging_dir.rglob("*") if p.is_file()] == [Path(result["staged_path"]).name]


def test_retention_removes_a_killed_intakes_debris(settings) -> None:
    """Without another intake of that organisation, retention removes it the next day: a
    staging file no ledger row names, and temporary files anywhere."""
    drop(settings, "health", render("health", [child(1)]), night=NIGHT)
    killed_intake(HEALTH, NIGHT)
    stray = settings.outbox(HEALTH) / ".health_2026-11-24.csv.abcd1234.tmp"  # a receipt half written
    stray.write_text("{")
    assert _debris(settings)
    run_retention(settings, date.today() + timedelta(days=2))
    assert _debris(settings) == []


# --------------------------------------------------------------------------- 2. names ahead


def test_a_file_named_for_a_night_years_ahead_is_quarantined_and_ages_by_its_arrival(settings) -> None:
    """Before: accepted, and its archive copy, staging file and rows outlived retention."""
    ahead = NIGHT + timedelta(days=3650)
    drop(settings, "health", render("health", [child(1)]), night=ahead)
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert result["outcome"] == "rejected" and not list(settings.staging_dir.rglob("*.parquet"))
    [receipt] = _receipts(settings)
    assert [p["rule"] for p in receipt["file_problems"]] == ["night_ahead"]
    assert [(r[1], str(r[3])) for r in _ledger(settings)] == [("quarantined", str(NIGHT))], "dated by its arrival"
    cert = run_retention(settings, NIGHT + timedelta(days=120))  # past quarantine and receipts
    assert not [p for p in settings.quarantine_dir.rglob("*") if p.is_file()]
    assert not list(settings.outbox(HEALTH).glob("*.receipt.*"))
    assert cert["files_deleted"] >= 3


def test_within_the_tolerance_a_file_is_accepted_and_ages_by_the_night_it_arrived(settings) -> None:
    drop(settings, "health", render("health", [child(1)]), night=NIGHT + timedelta(days=2))
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert result["outcome"] == "accepted"
    # Its name is two days ahead: the archive goes 30 days after it arrived, not 32.
    run_retention(settings, NIGHT + timedelta(days=31))
    assert not [p for p in settings.archive_dir.rglob("*") if p.is_file()]


def test_a_name_years_ahead_cannot_keep_a_copy_the_ledger_never_recorded(settings) -> None:
    """A run killed between keeping a file and recording it leaves a quarantined copy and a
    receipt the ledger does not know; their names are the agency's, dated ten years ahead.
    Before: aged by the date in the name, they stayed for ten years."""
    ahead = f"{NIGHT + timedelta(days=3650):%Y-%m-%d}"
    copy = settings.quarantine_dir / HEALTH / "0123456789abcdef" / f"health_{ahead}.csv"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(render("health", [child(1)]))
    receipt = settings.outbox(HEALTH) / f"health_{ahead}.csv.01234567.receipt.json"
    receipt.write_text("{}")
    today = date.today()
    run_retention(settings, today + timedelta(days=29))
    assert copy.exists() and receipt.exists(), "within their periods, by the day they were written"
    run_retention(settings, today + timedelta(days=100))
    assert not copy.exists() and not receipt.exists()


# --------------------------------------------------------------------------- 4. archive


def test_a_corrected_resend_under_the_same_name_keeps_both_originals(settings) -> None:
    """Before: the second file overwrote the first's archived original."""
    first = render("health", [child(1)])
    second = render("health", [child(1), child(2)])
    for data in (first, second):
        drop(settings, "health", data, night=NIGHT)
        [result] = run_intake(settings, HEALTH, NIGHT)
        assert result["outcome"] == "accepted"
    kept = sorted(p.read_bytes() for p in settings.archive_dir.rglob("*") if p.is_file())
    assert kept == sorted([first, second])
    # And the same bytes again are a duplicate: not a third copy of the same night.
    drop(settings, "health", second, night=NIGHT)
    assert run_intake(settings, HEALTH, NIGHT)[0]["outcome"] == "duplicate"
    assert len([p for p in settings.archive_dir.rglob("*") if p.is_file()]) == 2


def test_reprocess_never_overwrites_a_delivery_waiting_under_the_same_name(settings) -> None:
    from childindex.errors import UsageError
    from childindex.intake import reprocess

    bad = render("health", [child(1)]).replace(b"LocalPatientID", b"PatientRef")
    drop(settings, "health", bad, night=NIGHT)
    [first] = run_intake(settings, HEALTH, NIGHT)
    assert first["outcome"] == "rejected"
    waiting = render("health", [child(2)])
    path = drop(settings, "health", waiting, night=NIGHT)  # the agency's corrected file, not yet taken
    fixed = settings.data_dir / "fixed.csv"
    fixed.write_bytes(render("health", [child(3)]))
    with pytest.raises(UsageError, match="waiting"):
        reprocess(settings, HEALTH, NIGHT, sha_prefix=first["sha256"][:12], corrected=fixed)
    assert path.read_bytes() == waiting


# --------------------------------------------------------------------------- 5. bytes hashed


def test_a_file_that_grows_during_intake_is_quarantined_not_staged(settings, monkeypatch) -> None:
    """Before: hashed on a prefix, staged in full; re-sending the archived bytes loaded them twice."""
    import childindex.intake.process as process

    path = drop(settings, "health", render("health", [child(1), child(2)]), night=NIGHT)
    more = render("health", [child(3)]).split(b"\n", 1)[1]  # one more row, no header
    real = process.validate_file

    def growing(*args, **kwargs):
        with path.open("ab") as fh:  # the agency's export is still writing
            fh.write(more)
        return real(*args, **kwargs)

    monkeypatch.setattr(process, "validate_file", growing)
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert result["outcome"] == "rejected"
    assert [p["rule"] for p in _receipts(settings)[0]["file_problems"]] == ["changed_during_intake"]
    assert not list(settings.staging_dir.rglob("*.parquet")) and not path.exists()
    [quarantined] = [p for p in settings.quarantine_dir.rglob("*.csv")]
    assert quarantined.read_bytes().endswith(more), "the file is kept as it now is"


def test_the_bytes_hashed_are_the_bytes_loaded_and_kept(settings) -> None:
    data = render("health", [child(1), child(2), child(3)])
    drop(settings, "health", data, night=NIGHT)
    [result] = run_intake(settings, HEALTH, NIGHT)
    [archived] = [p for p in settings.archive_dir.rglob("*") if p.is_file()]
    assert hashlib.sha256(archived.read_bytes()).hexdigest() == result["sha256"] == hashlib.sha256(data).hexdigest()
    assert archived.parent.name == result["sha256"][:16]
    drop(settings, "health", archived.read_bytes(), night=NIGHT)  # the archived bytes, re-sent
    assert run_intake(settings, HEALTH, NIGHT)[0]["outcome"] == "duplicate"


# --------------------------------------------------------------------------- 7. bad entries


def test_an_unreadable_file_gets_a_receipt_and_the_files_after_it_go(settings, monkeypatch) -> None:
    """Before: a traceback without a receipt, and the organisation's later files never went."""
    import childindex.intake.receive as receive

    bad = drop(settings, "health", render("health", [child(1)]), night=NIGHT)
    good = drop(settings, "health", render("health", [child(2)]), night=NIGHT + timedelta(days=1))
    if os.geteuid() == 0:  # root reads any file: refuse it as the kernel would anyone else
        real_open = os.open

        def refusing(path, flags, *args, **kwargs):
            if Path(path) == bad:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(receive.os, "open", refusing)
    else:
        bad.chmod(0)
    results = run_intake(settings, HEALTH, NIGHT + timedelta(days=1))
    assert [r["outcome"] for r in results] == ["rejected", "accepted"]
    problems = {r["file_name"]: [p["rule"] for p in r["file_problems"]] for r in _receipts(settings)}
    assert problems[bad.name] == ["unreadable_file"] and problems[good.name] == []
    assert not bad.exists() and not good.exists(), "the unreadable entry left the drop folder for quarantine"
    assert "EACCES" in json.dumps(_receipts(settings)) and str(bad.parent) not in json.dumps(_receipts(settings))


def test_a_pipe_and_a_dangling_link_get_receipts_and_never_block(settings) -> None:
    """Before: a FIFO was skipped in silence, night after night; reading one would hang."""
    folder = settings.drop_folder(HEALTH)
    fifo = folder / "health_2026-11-24.csv"
    os.mkfifo(fifo)
    (folder / "health_2026-11-24.csv.done").touch()
    dangling = folder / "health_2026-11-23.csv"
    dangling.symlink_to(folder / "nowhere.csv")
    (folder / "health_2026-11-23.csv.done").touch()
    good = drop(settings, "health", render("health", [child(2)]), night=NIGHT + timedelta(days=1))
    results = run_intake(settings, HEALTH, NIGHT + timedelta(days=1))
    assert sorted(r["outcome"] for r in results) == ["accepted", "rejected", "rejected"]
    problems = {r["file_name"]: [p["rule"] for p in r["file_problems"]] for r in _receipts(settings)}
    assert problems == {fifo.name: ["not_a_file"], dangling.name: ["symlink"], good.name: []}
    assert not os.path.lexists(fifo) and not os.path.lexists(dangling)
    assert run_intake(settings, HEALTH, NIGHT + timedelta(days=1)) == [], "nothing is taken twice"
    # A folder under a file's name with its marker: a receipt, then it is left where it is.
    (folder / "health_2026-11-22.csv").mkdir()
    (folder / "health_2026-11-22.csv.done").touch()
    [result] = run_intake(settings, HEALTH, NIGHT + timedelta(days=1))
    assert result["outcome"] == "rejected" and (folder / "health_2026-11-22.csv").is_dir()
    assert run_intake(settings, HEALTH, NIGHT + timedelta(days=1)) == []
    # Quarantine keeps the link itself (never followed) for its period, then nothing is left.
    assert [p.name for p in settings.quarantine_dir.rglob("*") if p.is_symlink()] == [dangling.name]
    run_retention(settings, NIGHT + timedelta(days=100))
    assert [p for p in settings.quarantine_dir.rglob("*") if p.is_symlink() or not p.is_dir()] == []


def test_a_drop_folder_that_is_a_link_is_never_read(settings, tmp_path) -> None:
    """Whoever can write the drop root must not point one organisation's folder at another's."""
    other = settings.drop_folder(ORG["education"])
    drop(settings, "education", render("education", [child(1, "education")]), night=NIGHT)
    health = settings.drop_folder(HEALTH)
    health.rmdir()
    health.symlink_to(other)
    drop(settings, "health", render("health", [child(2)]), night=NIGHT)  # lands in education's folder
    assert run_intake(settings, HEALTH, NIGHT) == []
    assert len([p for p in other.iterdir() if not p.name.endswith(".done")]) == 2, "nothing was taken"


# --------------------------------------------------------------------------- 8. concurrency


def test_two_intakes_of_one_organisation_at_once_take_each_file_once(settings) -> None:
    """Before: one of them always died with FileNotFoundError (a shared temporary path)."""
    drop(settings, "health", render("health", [child(i) for i in range(1, 30)]), night=NIGHT)
    script = f"""
        import time
        from datetime import date
        import childindex.staging.writer as writer
        from childindex.intake.process import run_intake
        from childindex.settings import load_settings

        real = writer.write_staging
        def slow(*args, **kwargs):  # both runs are inside intake at the same time
            time.sleep(3)
            return real(*args, **kwargs)
        writer.write_staging = slow
        import childindex.intake.process as process
        process.write_staging = slow
        run_intake(load_settings(), {HEALTH!r}, date.fromisoformat({NIGHT.isoformat()!r}))
    """
    runs = [run_python(script) for _ in range(2)]
    assert [p.wait(timeout=300) for p in runs] == [0, 0]
    assert [r[1] for r in _ledger(settings)] == ["staged"]
    assert len(_receipts(settings)) == 1 and len(list(settings.staging_dir.rglob("*.parquet"))) == 1


def test_two_linkage_runs_at_once_publish_once(settings) -> None:
    """Before: one of two `link` runs at once died with an IntegrityError."""
    for sector in ("health", "social_care"):
        drop(settings, sector, render(sector, [child(i, sector, **({"upn": None} if sector == "social_care" else {}))
                                               for i in range(1, 20)]), night=NIGHT)  # fmt: skip
        run_intake(settings, ORG[sector], NIGHT)
    script = f"""
        import time
        from datetime import date
        import childindex.index.store as store
        from childindex.linkage.night import link_pending
        from childindex.settings import load_settings

        real = store.publish
        def slow(*args, **kwargs):  # both runs have scored the same files before either publishes
            time.sleep(3)
            return real(*args, **kwargs)
        store.publish = slow
        print(link_pending(load_settings(), date.fromisoformat({NIGHT.isoformat()!r})).files)
    """
    runs = [run_python(script) for _ in range(2)]
    assert [p.wait(timeout=300) for p in runs] == [0, 0]
    with engine_for(settings.index_url).connect() as conn:
        records = conn.execute(text("SELECT count(*), count(DISTINCT source_key) FROM source_record")).one()
        statuses = conn.execute(text("SELECT DISTINCT status FROM file_ledger")).scalars().all()
    assert records[0] == records[1] == 38 and statuses == ["linked"]


def test_retention_and_key_rotation_wait_for_linkage(settings) -> None:
    """Linkage, retention and key rotation all rewrite the index's records: one at a time."""
    from childindex.errors import StageBusy
    from childindex.keys.rotation import rotate_key
    from childindex.locks import INDEX_LOCK, stage_lock

    settings.lock_wait_seconds = 0
    with stage_lock(settings, INDEX_LOCK):  # a linkage run in progress
        with pytest.raises(StageBusy):
            run_retention(settings, NIGHT)
        with pytest.raises(StageBusy):
            rotate_key(settings, ("rotated-key-" + "9f8e7d6c5b4a3210" * 3).encode(), NIGHT)
    assert run_retention(settings, NIGHT)["rows_deleted"] == 0


def test_a_second_run_that_cannot_get_the_lock_says_so_in_one_line(settings) -> None:
    from childindex.errors import StageBusy
    from childindex.locks import stage_lock

    with stage_lock(settings, f"intake-{HEALTH}"):
        drop(settings, "health", render("health", [child(1)]), night=NIGHT)
        with pytest.raises(StageBusy) as busy:
            with stage_lock(settings, f"intake-{HEALTH}", wait_seconds=0.5):
                pass
    assert "\n" not in str(busy.value) and "lock" in str(busy.value)
    assert run_intake(settings, HEALTH, NIGHT)[0]["outcome"] == "accepted", "the lock was released"


def test_the_advisory_lock_on_postgresql(data_dir, pg_url) -> None:
    from childindex.errors import StageBusy
    from childindex.locks import stage_lock
    from childindex.settings import load_settings

    settings = load_settings(index_url=pg_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    holder = run_python(f"""
        import time
        from childindex.locks import stage_lock
        from childindex.settings import load_settings
        with stage_lock(load_settings(index_url={pg_url!r}), "linkage"):
            open({str(data_dir / "held")!r}, "w").close()
            time.sleep(60)
    """)
    try:
        for _ in range(300):
            if (data_dir / "held").exists():
                break
            holder.poll()
            assert holder.returncode is None
            import time

            time.sleep(0.1)
        with pytest.raises(StageBusy):
            with stage_lock(settings, "linkage", wait_seconds=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with stage_lock(settings, "linkage", wait_seconds=30):  # a dead holder's lock goes with its session
        pass


# --------------------------------------------------------------------------- 9. full disks


@pytest.fixture()
def small_disk(tmp_path):
    """A real 8 MiB file system (tmpfs), to fill; skipped where this user cannot mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("mounting a small file system needs root (CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the file system holding ``folder``; returns the filler file to remove later."""
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 16))
                fh.flush()
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("full", ["archive_dir", "staging_dir", "outbox_root", "work"])
def test_a_full_disk_at_any_step_records_nothing_and_a_retry_loads_once(data_dir, small_disk, full) -> None:
    """Before: with the archive full, an "accepted" receipt then a traceback, and each retry
    added a duplicate receipt and ledger row and left a partial copy; with the work folder's
    disk full, a raw DuckDB traceback."""
    from childindex.index.db import migrate
    from childindex.settings import load_settings

    overrides = {} if full == "work" else {full: small_disk / full}
    if full == "work":  # the data directory itself (work folder, outboxes...): the index elsewhere
        overrides = {"data_dir": small_disk / "data", "index_url": f"sqlite:///{data_dir / 'index.sqlite'}"}
    settings = load_settings(**overrides)
    settings.ensure_dirs()
    migrate(settings.index_url)
    data = render("health", [child(i) for i in range(1, 200)])
    path = drop(settings, "health", data, night=NIGHT)
    filler = _fill(small_disk)
    with pytest.raises(DiskFull) as error:
        run_intake(settings, HEALTH, NIGHT)
    assert "no space left" in str(error.value) and "\n" not in str(error.value)
    assert _ledger(settings) == [] and _receipts(settings) == [], "nothing claims what did not happen"
    assert path.read_bytes() == data, "the file waits in the drop folder"
    assert not [p for p in settings.archive_dir.rglob("*") if p.is_file()], "no partial copy"
    assert not list(settings.staging_dir.rglob("*.parquet")) and _debris(settings) == []
    with pytest.raises(DiskFull):  # a retry on a disk still full adds nothing either
        run_intake(settings, HEALTH, NIGHT)
    assert _ledger(settings) == [] and _receipts(settings) == []
    filler.unlink()
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert result["outcome"] == "accepted"
    assert [r[1] for r in _ledger(settings)] == ["staged"] and len(_receipts(settings)) == 1
    [archived] = [p for p in settings.archive_dir.rglob("*") if p.is_file()]
    assert archived.read_bytes() == data and _debris(settings) == []


def test_a_full_disk_under_the_index_fails_linkage_in_one_line_and_keeps_the_index(
    data_dir, small_disk, monkeypatch
) -> None:
    """Any stage, not only intake: the index's disk full as linkage publishes. Before: the
    driver's traceback. Now one DiskFull line (retried by Airflow), the previous index intact
    and the files still staged; once there is space the same night links them."""
    from childindex.index.db import migrate
    from childindex.orchestration.tasks import link
    from childindex.settings import load_settings

    monkeypatch.setenv("CHILDINDEX_INDEX_URL", f"sqlite:///{small_disk / 'index.sqlite'}")
    settings = load_settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    drop(settings, "health", render("health", [child(i) for i in range(1, 400)]), night=NIGHT)
    run_intake(settings, HEALTH, NIGHT)
    engine_for(settings.index_url).dispose()
    filler = _fill(small_disk)
    with pytest.raises(DiskFull) as error:
        link(NIGHT)
    assert "disk is full" in str(error.value) and "\n" not in str(error.value)
    filler.unlink()
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_record")).scalar_one() == 0
    assert [r[1] for r in _ledger(settings)] == ["staged"]
    assert link(NIGHT)["records"] == 399
    assert [r[1] for r in _ledger(settings)] == ["linked"]
