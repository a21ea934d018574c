"""After `childindex demo`, every command run in the same folder works on the demo's data
(issue 19, item 4): the demo writes childindex.toml there (data folder, index, key files;
never a key), which the settings read when CHILDINDEX_CONFIG_FILE is unset."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childindex.cli import app
from tests.conftest import TEST_REGISTRY

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
NIGHT = date(2026, 11, 24)
WIDE = {"COLUMNS": "400"}


def _as_a_user(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """A shell in ``folder`` with no CHILDINDEX_* variable (the tests' conftest sets the
    configuration file empty; a user's shell has it unset)."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("CHILDINDEX_CONFIG_FILE")


def _demo_set_up(folder: Path, data: Path) -> tuple[Path, Path]:
    """What `childindex demo` does before Airflow runs: its data folder and key files, its
    configuration file, the organisations' folders and the index (the real demo, whose
    extracts go through intake: tests/system/test_end_to_end.py)."""
    from childindex.index.db import migrate
    from childindex.settings import load_settings
    from childindex.simulation import demo

    paths, _ = demo.prepare(data, ROOT / "dags")
    config = demo.write_config(demo.config_target(paths, folder), demo.demo_settings(paths))
    settings = load_settings(**demo.demo_settings(paths))
    settings.ensure_dirs()
    migrate(settings.index_url)
    return paths.data_dir, config


def test_every_command_run_after_the_demo_finds_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _as_a_user(monkeypatch, tmp_path)
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(TEST_REGISTRY))  # as the demo ran: three organisations
    data, config = _demo_set_up(tmp_path, Path("demo-data"))
    assert config == tmp_path / "childindex.toml"
    monkeypatch.delenv("CHILDINDEX_ORGANISATIONS_FILE")  # from here on, only the file says anything
    night = ["--night", NIGHT.isoformat()]
    for command in (["intake"], ["link", *night], ["summary", *night], ["report", *night], ["review", "--list"]):
        result = runner.invoke(app, command, env=WIDE)
        assert result.exit_code == 0, (command, result.output)
    doctor = runner.invoke(app, ["doctor"], env=WIDE)
    assert doctor.exit_code == 0, doctor.output
    assert f"configuration file {config} (found in the working directory)" in doctor.output
    assert f"{TEST_REGISTRY}: 3 organisations" in doctor.output and str(data / "drop") in doctor.output
    assert doctor.output.count("present, 64 bytes, key id") == 2  # both key files, by their ids only
    # Everything happened in the demo's folder, nothing in the default one.
    assert not (tmp_path / "childindex-data").exists()
    assert sorted(p.name for p in (data / "drop").iterdir()) == ["840", "E06000047", "RH1"]
    assert (data / "reports" / f"night-{NIGHT}.json").is_file()
    assert (data / "reports" / "quality" / f"night-{NIGHT}.html").is_file()


def test_the_file_holds_references_never_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    _as_a_user(monkeypatch, tmp_path)
    data, config = _demo_set_up(tmp_path, tmp_path / "demo-data")
    written = tomllib.loads(config.read_text(encoding="utf-8"))
    assert written == {
        "data_dir": str(data),
        "ground_truth_dir": str(data / "ground_truth"),
        "task_retries": 0,
        "pseudonymisation_key_file": str(data / "secrets" / "pseudonymisation.key"),
        "reference_key_file": str(data / "secrets" / "reference.key"),
        "organisations_file": str(ROOT / "config" / "organisations.yaml"),
    }
    # The index follows data_dir (a CHILDINDEX_DATA_DIR elsewhere never writes into the demo's index).
    assert f"# index_url: sqlite:///{data / 'index.sqlite'} (the default under data_dir)" in config.read_text()
    key = data / "secrets" / "pseudonymisation.key"
    assert data.stat().st_mode & 0o777 == 0o750, "no other user of the machine may read the demo's data"
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_text().strip() not in config.read_text()
    # A key given as a value, and an index URL with a password, stay where they were given.
    canary_key = "Qzcanary-key-" + "9f3a" * 10
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", canary_key)
    monkeypatch.setenv("CHILDINDEX_INDEX_URL", "postgresql+psycopg://loader:Qzcanarypassword@db/childindex")
    _demo_set_up_without_index(tmp_path, tmp_path / "other")
    text = config.read_text(encoding="utf-8")
    assert "Qzcanary" not in text
    assert "# pseudonymisation key: as configured in the environment (CHILDINDEX_PSEUDONYMISATION_KEY)" in text
    assert "# index_url: as configured in the environment (not copied: it holds a password)" in text
    assert "pseudonymisation_key_file" not in text and "index_url =" not in text


def _demo_set_up_without_index(folder: Path, data: Path) -> None:
    from childindex.simulation import demo

    paths, _ = demo.prepare(data, ROOT / "dags")
    demo.write_config(demo.config_target(paths, folder), demo.demo_settings(paths))


def test_environment_variables_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from childindex.settings import configuration_sources, load_settings

    _as_a_user(monkeypatch, tmp_path)
    data, config = _demo_set_up(tmp_path, tmp_path / "demo-data")
    assert load_settings().data_dir == data
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().data_dir == tmp_path / "elsewhere"
    assert load_settings().index_url == f"sqlite:///{tmp_path / 'elsewhere' / 'index.sqlite'}"
    assert load_settings().pseudonymisation_key_file == data / "secrets" / "pseudonymisation.key"  # still the file's
    monkeypatch.delenv("CHILDINDEX_DATA_DIR")
    # A file named by CHILDINDEX_CONFIG_FILE is read instead; set empty, none is.
    named = tmp_path / "named.toml"
    named.write_text(f'data_dir = "{tmp_path / "named"}"\n', encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", str(named))
    assert load_settings().data_dir == tmp_path / "named"
    assert configuration_sources().endswith(f"configuration file {named}; every other setting is its default")
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", "")
    assert load_settings().data_dir == tmp_path / "childindex-data"
    assert "no configuration file (CHILDINDEX_CONFIG_FILE is set empty)" in configuration_sources()
    # Elsewhere, no file is found.
    monkeypatch.delenv("CHILDINDEX_CONFIG_FILE")
    monkeypatch.chdir(data)
    assert "no configuration file (CHILDINDEX_CONFIG_FILE unset, no childindex.toml in the working directory)" in (
        configuration_sources()
    )


def test_a_new_demo_never_inherits_an_old_ones_folders_nor_overwrites_a_users_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from childindex.simulation import demo

    _as_a_user(monkeypatch, tmp_path)
    old, config = _demo_set_up(tmp_path, tmp_path / "old")
    # Run again with another data folder: the previous demo's index and keys are not this one's.
    new, again = _demo_set_up(tmp_path, tmp_path / "new")
    assert again == config
    written = tomllib.loads(config.read_text(encoding="utf-8"))
    assert {k: v for k, v in written.items() if str(old) in str(v)} == {}
    assert "index_url" not in written
    assert written["pseudonymisation_key_file"] == str(new / "secrets" / "pseudonymisation.key")
    # A childindex.toml the demo did not write is the user's: read, never overwritten.
    config.write_text("[linkage]\nmatch_threshold = 0.97\n", encoding="utf-8")
    paths, env = demo.prepare(tmp_path / "third", ROOT / "dags")
    assert env["CHILDINDEX_CONFIG_FILE"] == str(config), "Airflow's processes read the user's file too"
    target = demo.config_target(paths, tmp_path)
    assert target == tmp_path / "third" / "childindex.toml"
    demo.write_config(target, demo.demo_settings(paths))
    assert config.read_text(encoding="utf-8") == "[linkage]\nmatch_threshold = 0.97\n"
    from childindex.settings import load_settings

    assert load_settings().linkage.match_threshold == 0.97
