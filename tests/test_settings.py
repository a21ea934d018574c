from __future__ import annotations

import os
from pathlib import Path

import pytest

from childindex.errors import SettingsError
from childindex.settings import create_key_file, load_settings


def test_defaults_derive_from_data_dir(data_dir: Path) -> None:
    s = load_settings()
    assert s.data_dir == data_dir.absolute()
    assert s.drop_folder("health") == data_dir / "drop" / "health"
    assert s.outbox("education") == data_dir / "outbox" / "education"
    assert s.quarantine_dir == data_dir / "quarantine"
    assert s.index_url == f"sqlite:///{data_dir / 'index.sqlite'}"
    assert s.retention.archive_days == 30


def test_missing_key_names_both_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", str(tmp_path))
    with pytest.raises(SettingsError) as info:
        load_settings().key  # noqa: B018
    assert "CHILDINDEX_PSEUDONYMISATION_KEY" in str(info.value)
    assert "CHILDINDEX_PSEUDONYMISATION_KEY_FILE" in str(info.value)


def test_invalid_value_is_named_and_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHILDINDEX_RETENTION__ARCHIVE_DAYS", "soon-ish")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "CHILDINDEX_RETENTION__ARCHIVE_DAYS" in str(info.value)
    assert "soon-ish" not in str(info.value)


def test_unknown_setting_in_config_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "childindex.toml"
    cfg.write_text('data_dir = "/srv/ci"\nnot_a_setting = 1\n')
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", str(cfg))
    with pytest.raises(SettingsError, match="CHILDINDEX_NOT_A_SETTING"):
        load_settings()


def test_config_file_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "childindex.toml"
    cfg.write_text('data_dir = "/srv/from-file"\n[retention]\nstaging_days = 3\n')
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", str(cfg))
    s = load_settings()
    assert s.data_dir == Path("/srv/from-file") and s.retention.staging_days == 3
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", "/srv/from-env")
    assert load_settings().data_dir == Path("/srv/from-env")


def test_short_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", "short")
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        load_settings().key  # noqa: B018


def test_key_file_mode_0600_and_never_overwritten(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = create_key_file(tmp_path / "k" / "key")
    assert (os.stat(path).st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        create_key_file(path)
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY_FILE", str(path))
    assert len(load_settings().key) == 64
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        load_settings().key  # noqa: B018


def test_secret_is_masked_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", "s3cret-" * 8)
    s = load_settings()
    assert "s3cret" not in s.model_dump_json() and "s3cret" not in repr(s)


def test_per_agency_drop_folder(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("CHILDINDEX_DROP_FOLDERS__HEALTH", str(tmp_path / "sftp" / "health"))
    s = load_settings()
    assert s.drop_folder("health") == tmp_path / "sftp" / "health"
    assert s.drop_folder("education") == data_dir / "drop" / "education"
    monkeypatch.setenv("CHILDINDEX_DROP_FOLDERS__POLICE", str(tmp_path))
    with pytest.raises(SettingsError, match="unknown agencies"):
        load_settings()
