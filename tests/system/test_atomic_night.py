"""A night's index update is all or nothing: the linkage process is killed (SIGKILL, not an
exception) while it writes the index; the previous index is intact and the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from childindex.index.db import engine_for, migrate
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.settings import load_settings
from childindex.simulation.synthetic import generate_night
from tests.helpers import ORG

NIGHT = date(2026, 11, 24)
APP = "childindex_crash_test"
TABLES = ("child", "source_record", "involvement", "review_item", "child_id_history")


def _state(url: str) -> dict:
    with engine_for(url).connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        counts["ids"] = conn.execute(
            text("SELECT md5(string_agg(child_id, ',' ORDER BY child_id)) FROM child")
        ).scalar()
        counts["staged"] = conn.execute(text("SELECT count(*) FROM file_ledger WHERE status = 'staged'")).scalar_one()
    return counts


def test_killing_linkage_mid_publish_leaves_the_previous_index(data_dir, pg_url, tmp_path) -> None:
    url = make_url(pg_url).update_query_dict({"application_name": APP}).render_as_string(hide_password=False)
    settings = load_settings(index_url=url)
    settings.ensure_dirs()
    migrate(url)
    generate_night(
        settings.drop_root, tmp_path / "truth", registry=settings.registry, children=20_000, seed=5, first_night=NIGHT
    )
    # The previous index: health's initial load, linked.
    run_intake(settings, ORG["health"], NIGHT)
    link_pending(settings, NIGHT)
    # Tonight: education and social care, about 15,000 records, linked by a process we kill.
    for sector in ("education", "social_care"):
        run_intake(settings, ORG[sector], NIGHT)
    before = _state(url)
    assert before["child"] > 15_000 and before["staged"] == 2

    env = {**os.environ, "CHILDINDEX_INDEX_URL": url}
    code = (
        f"from datetime import date; from childindex.linkage.night import link_pending; "
        f"from childindex.settings import load_settings; link_pending(load_settings(), date({NIGHT:%Y, %-m, %-d}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    killed_in = None
    try:
        deadline = time.monotonic() + 300
        with admin.connect() as conn:
            while proc.poll() is None and time.monotonic() < deadline:
                # The publish transaction: it has written (an xid) to the index's tables.
                row = conn.execute(
                    text(
                        "SELECT query FROM pg_stat_activity WHERE application_name = :app "
                        "AND backend_xid IS NOT NULL AND query ~* '(child|source_record|involvement|review_item)'"
                    ),
                    {"app": APP},
                ).first()
                if row:
                    proc.send_signal(signal.SIGKILL)
                    killed_in = row.query.split("(")[0][:60]
                    break
                time.sleep(0.005)
        proc.wait(timeout=60)
        # The server notices the lost client and rolls its transaction back.
        with admin.connect() as conn:
            for _ in range(200):
                if not conn.execute(
                    text("SELECT 1 FROM pg_stat_activity WHERE application_name = :a"), {"a": APP}
                ).first():
                    break
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        admin.dispose()
    assert killed_in, f"the publish was never caught in flight (exit {proc.returncode})"
    assert proc.returncode == -signal.SIGKILL

    engine_for(url).dispose()
    assert _state(url) == before, f"killed during {killed_in!r}: the previous index must be intact"
    # The next run completes: both files linked, every record in.
    result = link_pending(settings, NIGHT)
    after = _state(url)
    assert result.files == 2 and after["staged"] == 0
    assert after["source_record"] == before["source_record"] + result.records
