"""Rotating the pseudonymisation key without losing links.

A keyed HMAC cannot be re-keyed from its output: the new pseudonyms need the identifiers
themselves, which childindex never stores. They are in the organisations' extracts, so
a rotation reads extracts (the archive's raw files of the last ``ARCHIVE_DAYS``, plus any
full extracts the organisations were asked for) through the same reader and checks as intake,
and makes every pseudonym under both keys: a map from old to new, pseudonyms only.

Then, in one transaction, every key in the index (source records, involvements, review
items, link decisions, what notices told) is replaced by its new-key pseudonym; child ids,
links, decisions and history stay as they are. A record no extract covered cannot be re-keyed: the rotation
stops and names the count per organisation, unless ``drop_unmapped`` deletes those records
(the organisation re-sends them later, as new records that linkage links again). The new key's id
becomes the index's next key epoch, so intake and linkage refuse the old key from then on;
staging files (old pseudonyms, kept only for reruns) are deleted. A certificate records
counts and key ids, never a key or a pseudonym.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from childindex.contracts.contract import load_contract
from childindex.errors import FileRejected, RotationRefused, SettingsError
from childindex.index.models import SourceRecord
from childindex.keyfiles import check_key_strength
from childindex.safe_paths import write_inside
from childindex.settings import Settings
from childindex.staging.pseudonymise import PSEUDONYM_COLUMNS

log = logging.getLogger(__name__)

_BATCH = 50_000  # pseudonym pairs loaded at a time


@dataclass
class Rotation:
    """What a rotation did (or, as a dry run, would do): counts and key ids only."""

    today: str
    old_key_id: str
    new_key_id: str
    epoch: int = 0
    dry_run: bool = False
    files_read: int = 0
    files_unusable: list[str] = field(default_factory=list)  # file names (never contents)
    records: dict[str, int] = field(default_factory=dict)  # organisation -> source records
    unmapped: dict[str, int] = field(default_factory=dict)  # organisation -> records no extract covered
    records_deleted: int = 0
    rows_rekeyed: dict[str, int] = field(default_factory=dict)  # table -> rows
    staging_files_deleted: int = 0
    held_files_dropped: int = 0  # files whose held-back records (old pseudonyms) were dropped


def rotate_key(
    settings: Settings,
    new_key: bytes,
    today: date,
    *,
    extracts: Sequence[tuple[str, Path]] = (),
    drop_unmapped: bool = False,
    dry_run: bool = False,
) -> Rotation:
    """Re-key the index from ``settings.key`` to ``new_key`` (see the module docstring).
    Under the index lock: no linkage or retention runs meanwhile."""
    from childindex.locks import INDEX_LOCK, stage_lock

    with stage_lock(settings, INDEX_LOCK):
        return _rotate_key(settings, new_key, today, extracts, drop_unmapped, dry_run)


def _rotate_key(
    settings: Settings,
    new_key: bytes,
    today: date,
    extracts: Sequence[tuple[str, Path]],
    drop_unmapped: bool,
    dry_run: bool,
) -> Rotation:
    from childindex.index.ledger import HELD
    from childindex.keys.epochs import check_key
    from childindex.staging.pseudonymise import key_id

    old_key = settings.key
    try:
        check_key_strength(new_key, "the new key")
    except SettingsError as exc:
        raise RotationRefused(exc.message) from None
    if new_key == old_key:
        raise RotationRefused("the new key is the key in use: create one with 'childindex init-key FILE'")
    epoch = check_key(settings.index_url, old_key, today)
    result = Rotation(today.isoformat(), key_id(old_key), key_id(new_key), epoch=epoch + 1, dry_run=dry_run)
    # Files whose records linkage holds back (a placeholder block) wait for the organisation's
    # corrected records, perhaps for months: they do not stop a rotation, which drops them.
    waiting = f"SELECT count(*) FROM file_ledger WHERE status = 'staged' AND (reason IS NULL OR reason <> '{HELD}')"
    if _count(settings, waiting):
        raise RotationRefused("staged files are waiting to be linked: run linkage first ('childindex link')")

    work = settings.work_dir / f"rotate-{uuid.uuid4().hex[:8]}"  # pseudonyms only; deleted below
    try:
        work.mkdir(parents=True)
        files = _extract_files(settings, extracts)
        for organisation, path in files:
            if _map_file(settings, organisation, path, new_key, work, today):
                result.files_read += 1
            else:
                result.files_unusable.append(path.name)
        _apply(settings, work, result, drop_unmapped)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not dry_run:
        result.held_files_dropped = _drop_held(settings, HELD)
        result.staging_files_deleted = _delete_staging(settings)
        out = settings.reports_dir / "keys" / f"rotation-{today.isoformat()}-epoch{result.epoch}.json"
        write_inside(
            settings.reports_dir, out, json.dumps({"certificate_version": 1, **result.__dict__}, indent=2) + "\n"
        )
    log.info(
        "key rotation %s -> %s: %d files read, %d records, %d unmapped (dry run: %s)",
        result.old_key_id,
        result.new_key_id,
        result.files_read,
        sum(result.records.values()),
        sum(result.unmapped.values()),
        dry_run,
    )
    return result


def _extract_files(settings: Settings, extracts: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(organisation, path) of every archived extract (the archive keeps a folder per
    organisation, even one since removed from the registry) and every extra file."""
    found: list[tuple[str, Path]] = []
    registry = settings.registry
    if settings.archive_dir.is_dir():
        for folder in sorted(p for p in settings.archive_dir.iterdir() if p.is_dir()):
            if folder.name not in registry.by_code:
                continue  # no contract to read it with: its records count as unmapped
            # <night>/<hash prefix>/<name>; a temporary file (a dot name) is no extract.
            for path in sorted(folder.glob("*/*/*")):
                if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                    found.append((folder.name, path))
    for code, path in extracts:
        registry.get(code)  # RegistryError names an unknown organisation
        found.append((code, Path(path)))
    return found


def _map_file(settings: Settings, organisation: str, path: Path, new_key: bytes, work: Path, today: date) -> bool:
    """Old and new pseudonyms of every accepted row of one extract, to a Parquet part."""
    from childindex.receipts import new_receipt
    from childindex.staging.pseudonymise import pseudonym_sql
    from childindex.validation.sql import quote_str
    from childindex.validation.validate import validate_file

    org = settings.registry.get(organisation)
    contract = load_contract(org.contract)
    old, params = pseudonym_sql(settings.key, organisation)
    new, new_params = pseudonym_sql(new_key, organisation, pads="_next")
    params.update(new_params)
    select = ", ".join(
        [f"{old[c]} AS {c}" for c in PSEUDONYM_COLUMNS] + [f"{new[c]} AS {c}_next" for c in PSEUDONYM_COLUMNS]
    )
    part = work / f"{uuid.uuid4().hex}.parquet"
    receipt, night = new_receipt(org, contract, path, today)
    try:
        with validate_file(settings, org, contract, path, night or today, receipt, []) as checked:
            checked.con.execute(
                f"COPY (SELECT {select} FROM {checked.accepted}) TO '{quote_str(part)}' (FORMAT parquet)", params
            )
    except FileRejected:
        return False
    return True


def _apply(settings: Settings, work: Path, result: Rotation, drop_unmapped: bool) -> None:
    """Replace every key in the index by its new pseudonym, in one transaction."""
    from childindex.index.db import engine_for, reclaim

    engine = engine_for(settings.index_url)
    with engine.begin() as conn:
        _drop_temp(conn)  # a pooled SQLite connection keeps its temporary tables
        _load_maps(conn, sorted(work.glob("*.parquet")))
        result.records = dict(
            conn.execute(text("SELECT organisation, count(*) FROM source_record GROUP BY organisation")).all()
        )
        # A record is covered when each of its keys has a new pseudonym.
        covered = " AND ".join(
            f"(s.{c} IS NULL OR EXISTS (SELECT 1 FROM rekey_{c} m WHERE m.old = s.{c}))" for c in PSEUDONYM_COLUMNS
        )
        conn.execute(
            text(
                f"CREATE TEMPORARY TABLE rekey_unmapped AS SELECT source_key FROM source_record s WHERE NOT ({covered})"
            )
        )
        result.unmapped = dict(
            conn.execute(
                text(
                    "SELECT organisation, count(*) FROM source_record "
                    "WHERE source_key IN (SELECT source_key FROM rekey_unmapped) GROUP BY organisation"
                )
            ).all()
        )
        if result.unmapped and not drop_unmapped and not result.dry_run:
            raise RotationRefused(
                f"{sum(result.unmapped.values())} records are in no extract read "
                f"({', '.join(f'{a}: {n}' for a, n in sorted(result.unmapped.items()))}): ask those "
                "organisations for a full extract and pass it with --extract, or accept that they are deleted "
                "with --drop-unmapped"
            )
        if not result.dry_run:
            result.records_deleted = _delete_unmapped(conn)
            result.rows_rekeyed = _rekey(conn)
            conn.execute(
                text("INSERT INTO key_epoch (epoch, key_id, since) VALUES (:e, :k, :d)"),
                {"e": result.epoch, "k": result.new_key_id, "d": date.fromisoformat(result.today)},
            )
        _drop_temp(conn)
    if not result.dry_run:  # SQLite: the old pseudonyms' pages were overwritten; return them
        reclaim(engine)


def _load_maps(conn: Connection, parts: list[Path]) -> None:
    """One temporary table per key kind: old pseudonym -> new, loaded in bounded batches
    (as publish loads the index). Old -> new is a function, so DISTINCT leaves one row
    per old pseudonym."""
    import duckdb

    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"
    con = duckdb.connect()
    try:
        for column in PSEUDONYM_COLUMNS:
            conn.execute(text(f"CREATE TEMPORARY TABLE rekey_{column} (old VARCHAR(64) PRIMARY KEY, new VARCHAR(64))"))
            if not parts:
                continue
            pairs = con.sql(
                f"SELECT DISTINCT {column} AS old, {column}_next AS new FROM read_parquet({files}) "
                f"WHERE {column} IS NOT NULL"
            ).to_arrow_reader(_BATCH)
            for batch in pairs:
                conn.execute(text(f"INSERT INTO rekey_{column} (old, new) VALUES (:old, :new)"), batch.to_pylist())
    finally:
        con.close()


def _drop_temp(conn: Connection) -> None:
    for table in ("rekey_unmapped", "rekey_old", *(f"rekey_{c}" for c in PSEUDONYM_COLUMNS)):
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def _delete_unmapped(conn: Connection) -> int:
    gone = "(SELECT source_key FROM rekey_unmapped)"
    conn.execute(text(f"DELETE FROM involvement WHERE source_key IN {gone}"))
    conn.execute(text(f"DELETE FROM review_item WHERE new_key IN {gone} OR other_key IN {gone}"))
    conn.execute(text(f"DELETE FROM link_decision WHERE key_a IN {gone} OR key_b IN {gone}"))
    conn.execute(text(f"DELETE FROM notice_told WHERE recipient_key IN {gone} OR other_key IN {gone}"))
    conn.execute(text(f"DELETE FROM notice_pending WHERE source_key IN {gone}"))
    n = conn.execute(text(f"DELETE FROM source_record WHERE source_key IN {gone}")).rowcount
    conn.execute(
        text("DELETE FROM child WHERE NOT EXISTS (SELECT 1 FROM source_record s WHERE s.child_id = child.child_id)")
    )
    return n


def _rekey(conn: Connection) -> dict[str, int]:
    """New rows for source records (their key is the primary key others refer to), then
    every reference, then the old rows: foreign keys hold at every statement."""

    def new(column: str, ref: str) -> str:
        return f"(SELECT m.new FROM rekey_{column} m WHERE m.old = {ref})"

    # Every other column of source_record, from the model: a new column is carried over too.
    other = [c.name for c in SourceRecord.__table__.columns if c.name not in PSEUDONYM_COLUMNS]
    cols = ", ".join([*PSEUDONYM_COLUMNS, *other])
    values = ", ".join([*(f"CASE WHEN s.{c} IS NULL THEN NULL ELSE {new(c, 's.' + c)} END" for c in PSEUDONYM_COLUMNS),
                        *(f"s.{c}" for c in other)])  # fmt: skip
    counts = {}
    conn.execute(text("CREATE TEMPORARY TABLE rekey_old AS SELECT source_key FROM source_record"))
    counts["source_record"] = conn.execute(
        text(f"INSERT INTO source_record ({cols}) SELECT {values} FROM source_record s")
    ).rowcount
    counts["involvement"] = conn.execute(
        text(f"UPDATE involvement SET source_key = {new('source_key', 'involvement.source_key')}")
    ).rowcount
    counts["review_item"] = conn.execute(
        text(
            f"UPDATE review_item SET new_key = {new('source_key', 'review_item.new_key')}, "
            f"other_key = {new('source_key', 'review_item.other_key')}"
        )
    ).rowcount
    # A decision about a record no longer in the index (retention deletes those) has no
    # new pseudonym to follow.
    conn.execute(
        text(
            "DELETE FROM link_decision WHERE key_a NOT IN (SELECT old FROM rekey_source_key) "
            "OR key_b NOT IN (SELECT old FROM rekey_source_key)"
        )
    )
    a, b = new("source_key", "link_decision.key_a"), new("source_key", "link_decision.key_b")
    # A pair is stored with key_a < key_b: the new pseudonyms may sort the other way.
    counts["link_decision"] = conn.execute(
        text(
            f"UPDATE link_decision SET key_a = CASE WHEN {a} < {b} THEN {a} ELSE {b} END, "
            f"key_b = CASE WHEN {a} < {b} THEN {b} ELSE {a} END"
        )
    ).rowcount
    # What notices told, and the notices stage's work list, name records by key too: without
    # their new keys every co-involvement would be announced again.
    for table, columns in (("notice_told", ("recipient_key", "other_key")), ("notice_pending", ("source_key",))):
        keyed = " AND ".join(f"{c} IN (SELECT old FROM rekey_source_key)" for c in columns)
        conn.execute(text(f"DELETE FROM {table} WHERE NOT ({keyed})"))
        assignments = ", ".join(f"{c} = {new('source_key', f'{table}.{c}')}" for c in columns)
        counts[table] = conn.execute(text(f"UPDATE {table} SET {assignments}")).rowcount
    conn.execute(text("DELETE FROM source_record WHERE source_key IN (SELECT source_key FROM rekey_old)"))
    return counts


def _drop_held(settings: Settings, held: str) -> int:
    """Files whose records linkage held back carry the old pseudonyms: they expire (their
    senders were told to send corrected records, which then link under the new key)."""
    from childindex.index.db import engine_for

    with engine_for(settings.index_url).begin() as conn:
        return conn.execute(
            text("UPDATE file_ledger SET status = 'expired' WHERE status = 'staged' AND reason = :held"),
            {"held": held},
        ).rowcount


def _delete_staging(settings: Settings) -> int:
    """Linked staging files hold the old pseudonyms and serve only reruns: they go."""
    n = 0
    for path in settings.staging_dir.rglob("*.parquet"):
        path.unlink()
        n += 1
    return n


def _count(settings: Settings, sql: str) -> int:
    from childindex.index.db import engine_for

    with engine_for(settings.index_url).connect() as conn:
        return conn.execute(text(sql)).scalar_one()
