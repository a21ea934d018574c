"""Training the linkage model: its own command, a new versioned file each time, no data."""

from __future__ import annotations

import json
from datetime import date

import duckdb
from typer.testing import CliRunner

from childindex.cli import app
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.linkage.model import current_model_path, load_model
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
    first = runner.invoke(app, ["train"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["model"].endswith("linkage-model-v0001.json")
    assert runner.invoke(app, ["train"]).exit_code == 0
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
