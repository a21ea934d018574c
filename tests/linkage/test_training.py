"""Training the linkage model: its own command, a new versioned file each time, no data."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from childindex.cli import app
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.linkage.model import current_model_path, load_model
from childindex.linkage.training import train_model
from childindex.simulation.synthetic import generate_night

NIGHT = date(2026, 11, 24)
runner = CliRunner()


def test_train_saves_versions_and_nights_use_the_newest(settings, tmp_path) -> None:
    assert runner.invoke(app, ["train"]).exit_code == 1, "an empty index is too small to train on"
    generate_night(
        settings.drop_root, tmp_path / "truth", registry=settings.registry, children=1500, seed=5, first_night=NIGHT
    )
    for organisation in settings.registry.organisations:
        run_intake(settings, organisation.code, NIGHT)
    first = runner.invoke(app, ["train", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["model"].endswith("linkage-model-v0001.json")
    second = runner.invoke(app, ["train"])
    assert second.exit_code == 0 and "linkage model trained" in second.output
    path = current_model_path(settings.linkage.model_dir)
    assert path.name == "linkage-model-v0002.json"
    model = load_model(path)
    assert model.version == 2 and model.trained_records > 2000
    # Probabilities only: no name, postcode or key from the records it was trained on.
    con = duckdb.connect()
    names = con.execute(
        "SELECT list(DISTINCT given_name) || list(DISTINCT family_name) || list(DISTINCT postcode) "
        "|| list(DISTINCT source_key) FROM read_parquet($g)",
        {"g": f"{settings.staging_dir}/*/*/*.parquet"},
    ).fetchall()[0][0]
    text = path.read_text()
    assert not [n for n in names if n and len(n) > 3 and f'"{n}"' in text]
    assert link_pending(settings, NIGHT).model_version == 2


# --------------------------------------------------------------------------- what the data holds


def _pairs(**given: int) -> dict[str, int]:
    from childindex.linkage.model import EM_SESSIONS

    return {"+".join(cols): given.get("_".join(cols), 0) for cols in EM_SESSIONS}


def test_sessions_block_on_identifiers_when_the_data_has_them() -> None:
    from childindex.linkage.model import choose_sessions

    pairs = _pairs(nhs_key=50_000, upn_key=30_000, given_family=80_000, dob=900_000, postcode=400_000)
    assert choose_sessions(pairs) == [("nhs_key",), ("upn_key",), ("given", "family")]


def test_without_identifiers_names_are_learned_from_birthdays_or_postcodes() -> None:
    from childindex.linkage.model import choose_sessions

    assert choose_sessions(_pairs(given_family=900, dob=3000, postcode=12000)) == [("given", "family"), ("dob",)]
    # Too many birthday pairs to run (a national population): the postcode instead.
    assert choose_sessions(_pairs(given_family=900, dob=10**9, postcode=12000)) == [
        ("given", "family"),
        ("postcode",),
    ]


def test_training_that_cannot_estimate_a_comparison_says_which_in_one_line() -> None:
    from childindex.errors import TrainingImpossible
    from childindex.linkage.model import choose_sessions

    with pytest.raises(TrainingImpossible) as caught:
        choose_sessions(_pairs(dob=3000))  # no session leaves the date of birth free
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot train: no blocking rule leaves dob free")
    assert "given+family 0" in message


def test_a_model_trains_on_records_without_nhs_numbers_or_upns(settings, tmp_path) -> None:
    """Train on the generator's records with every identifier removed: the EM sessions
    come from names and dates, and the prior is near the truth."""
    from childindex.linkage.features import register_features
    from childindex.linkage.model import train

    generate_night(
        settings.drop_root, tmp_path / "truth", registry=settings.registry, children=1500, seed=8, first_night=NIGHT
    )
    for organisation in settings.registry.organisations:
        run_intake(settings, organisation.code, NIGHT)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE staged AS SELECT * REPLACE (NULL::VARCHAR AS nhs_key, NULL::VARCHAR AS upn_key) "
        "FROM read_parquet($g, hive_partitioning = false)",
        {"g": f"{settings.staging_dir}/*/*/*.parquet"},
    )
    register_features(con, "staged", "f")
    model, report = train(con, "f", max_pairs_for_u=2e5)
    assert report.sessions[0] == "given+family" and "nhs_key" not in report.sessions
    assert report.session_pairs["nhs_key"] == 0
    # Each child has one record per sector it is known to: about 1.4 records a child.
    n = report.records
    true_pairs = con.execute(
        "SELECT sum(c * (c - 1) / 2) FROM (SELECT count(*) c FROM read_parquet($t) GROUP BY person_id)",
        {"t": str(tmp_path / "truth" / "night=2026-11-24" / "truth.parquet")},
    ).fetchall()[0][0]
    truth = true_pairs / (n * (n - 1) / 2)
    assert 0.7 * truth < model["probability_two_random_records_match"] < 1.3 * truth


def test_a_night_says_which_model_linked_it_and_why(settings, tmp_path) -> None:
    generate_night(
        settings.drop_root, tmp_path / "truth", registry=settings.registry, children=800, seed=9, first_night=NIGHT
    )
    for organisation in settings.registry.organisations:
        run_intake(settings, organisation.code, NIGHT)
    first = link_pending(settings, NIGHT)
    assert first.model_version == 0 and first.model_reason.startswith("the bundled model")
    train_model(settings)
    generate_night(
        settings.drop_root,
        tmp_path / "truth",
        registry=settings.registry,
        children=800,
        seed=9,
        first_night=NIGHT,
        night_number=1,
    )
    night = date(2026, 11, 25)
    for organisation in settings.registry.organisations:
        run_intake(settings, organisation.code, night)
    second = link_pending(settings, night)
    assert second.model_version == 1
    assert second.model_reason.startswith("trained model v0001") and "EM sessions: given+family" in second.model_reason


def test_u_is_taken_for_non_matches_not_for_random_pairs() -> None:
    """Random pairs hold matches at the prior's rate: u sampled from them is unmixed,
    u = (sampled - prior * m) / (1 - prior), floored at the sample's resolution and
    renormalised; m, fixed levels and unobserved levels are left as they are."""
    from childindex.linkage.model import unmix_u

    levels = [
        {"is_null_level": True},
        {"m_probability": 0.7, "u_probability": 0.0010},  # exact: 0.7 of matches, 1e-3 of sampled pairs
        {"m_probability": 0.09, "u_probability": 0.0001},  # transposed: nearly all of its sampled pairs match
        {"m_probability": 0.01, "u_probability": None},  # never seen in the sample: left unestimated
        {"m_probability": 0.2, "u_probability": 0.9989},  # else
        {"m_probability": 1e-5, "u_probability": 1e-5, "fix_u_probability": True},
    ]
    comparisons = [{"output_column_name": "given", "comparison_levels": levels}]
    prior, floor = 1e-3, 1e-6
    [out] = unmix_u(comparisons, prior, floor)
    got = [lv.get("u_probability") for lv in out["comparison_levels"]]
    raw = [(0.0010 - prior * 0.7) / (1 - prior), max((0.0001 - prior * 0.09) / (1 - prior), floor)]
    raw.append((0.9989 - prior * 0.2) / (1 - prior))
    scale = (0.0010 + 0.0001 + 0.9989) / sum(raw)
    assert got[1] == pytest.approx(raw[0] * scale) and got[2] == pytest.approx(raw[1] * scale)
    assert got[3] is None and got[4] == pytest.approx(raw[2] * scale) and got[5] == 1e-5
    assert [lv.get("m_probability") for lv in out["comparison_levels"]] == [lv.get("m_probability") for lv in levels]
    assert levels[1]["u_probability"] == 0.0010, "the input is not changed"
    # The transposed level's evidence grows by about 3 bits; with a negligible prior nothing moves.
    assert got[2] < levels[2]["u_probability"] / 8
    [same] = unmix_u(comparisons, 1e-9, floor)
    for a, b in zip(same["comparison_levels"], levels, strict=True):
        assert a.get("u_probability") == (None if b.get("u_probability") is None else pytest.approx(b["u_probability"]))
