from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from childindex.errors import RegistryError, SettingsError
from childindex.keyfiles import create_key_file
from childindex.settings import REGISTRY_FILE, load_settings
from tests.conftest import TEST_REGISTRY
from tests.helpers import ORG


def test_defaults_derive_from_data_dir(data_dir: Path) -> None:
    s = load_settings()
    assert s.data_dir == data_dir.absolute()
    assert s.organisations_file == TEST_REGISTRY
    assert s.drop_folder(ORG["health"]) == data_dir / "drop" / "RH1"
    assert s.outbox(ORG["education"]) == data_dir / "outbox" / "840"
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


def test_registry_defaults_to_the_shipped_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.organisations_file == REGISTRY_FILE and REGISTRY_FILE.is_file()
    # The demo's registry (its contents are configuration: only that it is whole is checked here).
    assert {o.sector for o in s.registry.organisations} == {"health", "education", "social_care"}


def _registry(tmp_path: Path, **own: dict[str, object]) -> Path:
    """The tests' registry with some organisations' entries extended (by code)."""
    data = yaml.safe_load(TEST_REGISTRY.read_text(encoding="utf-8"))
    for org in data["organisations"]:
        org.update(own.get(str(org["code"]), {}))
    path = tmp_path / "organisations.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_per_organisation_drop_folder_and_outbox(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    registry = _registry(
        tmp_path,
        RH1={"drop_folder": str(tmp_path / "sftp" / "health"), "outbox": "nhs/RH1"},
        **{"840": {"drop_folder": "schools/840"}},
    )
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(registry))
    s = load_settings()
    assert s.drop_folder("RH1") == tmp_path / "sftp" / "health"  # absolute: as written
    assert s.drop_folder("840") == data_dir / "drop" / "schools" / "840"  # relative: under the drop root
    assert s.drop_folder("E06000047") == data_dir / "drop" / "E06000047"  # default
    assert s.outbox("RH1") == data_dir / "outbox" / "nhs" / "RH1"
    assert s.outbox("840") == data_dir / "outbox" / "840"
    s.ensure_dirs()
    assert (tmp_path / "sftp" / "health").is_dir() and (data_dir / "drop" / "schools" / "840").is_dir()
    # A code the registry does not have is refused, by name (a sector is not a code).
    for unknown in ("POLICE", "health"):
        with pytest.raises(RegistryError, match=f"no organisation with code '{unknown}'"):
            s.drop_folder(unknown)
        with pytest.raises(RegistryError, match=f"no organisation with code '{unknown}'"):
            s.outbox(unknown)


def test_removed_per_agency_setting_is_refused_in_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """drop_folders is now each organisation's registry entry: a config file still naming it is an error."""
    cfg = tmp_path / "childindex.toml"
    cfg.write_text(f'[drop_folders]\nhealth = "{tmp_path}"\n')
    monkeypatch.setenv("CHILDINDEX_CONFIG_FILE", str(cfg))
    with pytest.raises(SettingsError, match="CHILDINDEX_DROP_FOLDERS"):
        load_settings()


def test_per_organisation_rejected_share(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(_registry(tmp_path, RH1={"max_rejected_share": 0.05})))
    monkeypatch.setenv("CHILDINDEX_VALIDATION__MAX_REJECTED_SHARE", "0.3")
    s = load_settings()
    assert s.max_rejected_share("RH1") == 0.05
    assert s.max_rejected_share("840") == s.max_rejected_share("E06000047") == 0.3
    with pytest.raises(RegistryError, match="no organisation with code 'health'"):
        s.max_rejected_share("health")


def test_row_count_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().validation.row_count_slack == 50
    monkeypatch.setenv("CHILDINDEX_VALIDATION__ROW_COUNT_SLACK", "0")
    assert load_settings().validation.row_count_slack == 0
    monkeypatch.setenv("CHILDINDEX_VALIDATION__ROW_COUNT_SLACK", "-1")
    with pytest.raises(SettingsError, match="CHILDINDEX_VALIDATION__ROW_COUNT_SLACK"):
        load_settings()


def test_a_broken_registry_is_named(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(_registry(tmp_path, RH1={"contract": "education_mis"})))
    s = load_settings()  # the registry is read when first needed
    with pytest.raises(RegistryError, match=r"organisations\[0\] \(code RH1\): field contract"):
        s.drop_folder("840")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(RegistryError, match="cannot read the organisations registry"):
        load_settings().registry  # noqa: B018


def test_the_reference_key_is_required_and_must_differ_from_the_pseudonymisation_key(
    data_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHILDINDEX_REFERENCE_KEY")
    with pytest.raises(SettingsError, match="CHILDINDEX_REFERENCE_KEY_FILE") as info:
        load_settings().reference_key_bytes  # noqa: B018
    assert "reference key missing" in str(info.value)
    monkeypatch.setenv("CHILDINDEX_REFERENCE_KEY", os.environ["CHILDINDEX_PSEUDONYMISATION_KEY"])
    with pytest.raises(SettingsError, match="must differ from the pseudonymisation key") as info:
        load_settings().reference_key_bytes  # noqa: B018
    assert os.environ["CHILDINDEX_PSEUDONYMISATION_KEY"] not in str(info.value)


@pytest.mark.parametrize("key", [" " * 40, "k" * 40, "ab" * 20, "   short but padded with spaces     " + " " * 10])
def test_a_key_too_uniform_or_mostly_spaces_is_refused_without_showing_it(
    key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 18, small holes: 40 spaces were accepted as a pseudonymisation key."""
    monkeypatch.setenv("CHILDINDEX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", key)
    with pytest.raises(SettingsError, match="CHILDINDEX_PSEUDONYMISATION_KEY") as info:
        load_settings().key  # noqa: B018
    assert key.strip() == "" or key.strip() not in str(info.value)
    path = tmp_path / "key"
    path.write_text(key)
    path.chmod(0o600)
    monkeypatch.delenv("CHILDINDEX_PSEUDONYMISATION_KEY")
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY_FILE", str(path))
    with pytest.raises(SettingsError, match="CHILDINDEX_PSEUDONYMISATION_KEY_FILE"):
        load_settings().key  # noqa: B018


def test_a_generated_key_and_the_test_keys_are_strong_enough(tmp_path: Path) -> None:
    from childindex.keyfiles import check_key_strength
    from tests.conftest import TEST_KEY, TEST_REFERENCE_KEY

    check_key_strength(create_key_file(tmp_path / "k").read_bytes().strip(), "generated")
    for key in (TEST_KEY, TEST_REFERENCE_KEY, "s3cret-" * 8):
        check_key_strength(key.encode(), "test")
