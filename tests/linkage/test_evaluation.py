"""linkage.evaluation on a hand-built index and truth: the pairwise figures and the
cross-authority ones (true pairs whose records are in different areas)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import insert

from childindex.index.db import engine_for
from childindex.index.models import Child, Involvement, SourceRecord
from childindex.linkage.evaluation import accuracy
from childindex.staging.pseudonymise import hmac_hex, local_id_domain

NIGHT = date(2026, 11, 24)
DURHAM, DARLINGTON = "E06000047", "E06000005"

# (organisation, local id, area the index placed it in, child id in the index, true person)
RECORDS = [
    # Person 1 moved from Durham to Darlington: all three records linked.
    ("RH1", "H1", DURHAM, "C1", 1),
    ("E06000047", "S1", DURHAM, "C1", 1),
    ("E06000005", "S1", DARLINGTON, "C1", 1),  # the same local id at another authority
    # Person 2 moved too, but the index did not link the old and new authority's records.
    ("E06000047", "S2", DURHAM, "C2", 2),
    ("E06000005", "S9", DARLINGTON, "C3", 2),
    # Person 3 stayed in Durham: linked, but no cross-authority pair.
    ("RH1", "H3", DURHAM, "C4", 3),
    ("840", "P3", DURHAM, "C4", 3),
    # Person 4 alone, in Darlington.
    ("RH1", "H4", DARLINGTON, "C5", 4),
]


def build(settings, tmp_path, records=RECORDS):
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(
            insert(Child),
            [
                {"child_id": c, "given_name": "A", "family_name": "B", "date_of_birth": date(2015, 1, 1), "sex": "F",
                 "postcode": None, "first_seen": NIGHT, "last_seen": NIGHT}
                for c in sorted({r[3] for r in records})
            ],
        )  # fmt: skip
        for org, local_id, area, child_id, _person in records:
            key = hmac_hex(settings.key, local_id_domain(org), local_id)
            conn.execute(
                insert(SourceRecord),
                [{"source_key": key, "organisation": org, "child_id": child_id, "match_key": key,
                  "first_seen": NIGHT, "last_seen": NIGHT}],
            )  # fmt: skip
            conn.execute(
                insert(Involvement),
                [{"source_key": key, "child_id": child_id, "organisation": org, "sector": "health", "area": area,
                  "service": "s", "contact_route": "c", "start_date": None, "end_date": None, "last_seen": NIGHT}],
            )  # fmt: skip
    truth = tmp_path / "truth"
    (truth / f"night={NIGHT}").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "organisation": [r[0] for r in records],
                "local_id": [r[1] for r in records],
                "person_id": pa.array([r[4] for r in records], pa.int64()),
            }
        ),
        truth / f"night={NIGHT}" / "truth.parquet",
    )
    return truth


def test_cross_authority_recall_counts_true_pairs_in_different_areas(settings, tmp_path) -> None:
    acc = accuracy(settings, build(settings, tmp_path))
    assert acc is not None
    # True pairs: person 1 has 3, person 2 has 1, person 3 has 1; the index finds 3 + 0 + 1.
    assert acc["records_evaluated"] == 8
    assert acc["pairs_true"] == 5 and acc["pairs_true_positive"] == 4 and acc["pairs_predicted"] == 4
    assert acc["precision"] == 1.0 and acc["recall"] == 0.8
    # Cross-authority: person 1's two Durham records each with the Darlington one (both
    # linked) and person 2's pair (missed); person 3's pair is in one area.
    assert acc["cross_authority_pairs_true"] == 3
    assert acc["cross_authority_recall"] == 2 / 3
    assert acc["cross_authority_children"] == 2


def test_cross_authority_recall_is_one_without_any_cross_authority_pair(settings, tmp_path) -> None:
    acc = accuracy(settings, build(settings, tmp_path, [r for r in RECORDS if r[4] in (3, 4)]))
    assert acc is not None and acc["recall"] == 1.0
    assert acc["cross_authority_pairs_true"] == 0 and acc["cross_authority_children"] == 0
    assert acc["cross_authority_recall"] == 1.0


def test_no_truth_no_figures(settings, tmp_path) -> None:
    assert accuracy(settings, tmp_path / "nothing") is None
