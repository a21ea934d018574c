"""The documentation keeps up with the code: every setting and command is in the README."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from childindex.cli import app
from childindex.settings import (
    ENV_PREFIX,
    LinkageSettings,
    NoticeSettings,
    RetentionSettings,
    Settings,
    ValidationPolicy,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _documented_settings() -> list[str]:
    nested = ("retention", "validation", "linkage", "notices")
    names = [f"{ENV_PREFIX}{n.upper()}" for n in Settings.model_fields if n not in nested]
    names += [f"{ENV_PREFIX}RETENTION__{n.upper()}" for n in RetentionSettings.model_fields]
    names += [f"{ENV_PREFIX}CONFIG_FILE", f"{ENV_PREFIX}TASK_RETRIES"]
    names += [f"{ENV_PREFIX}VALIDATION__{n.upper()}" for n in ValidationPolicy.model_fields]
    names += [f"{ENV_PREFIX}LINKAGE__{n.upper()}" for n in LinkageSettings.model_fields]
    names += [f"{ENV_PREFIX}NOTICES__{n.upper()}" for n in NoticeSettings.model_fields]
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    names = _documented_settings()
    assert f"{ENV_PREFIX}ORGANISATIONS_FILE" in names and f"{ENV_PREFIX}INTAKE_PARALLELISM" in names
    missing = [n for n in names if f"| `{n}` |" not in README]
    assert missing == []


def test_the_configuration_table_names_no_setting_that_is_gone() -> None:
    """Per-agency settings went with the agencies: a row for a setting that no longer exists
    would be silently ignored by anyone who set it."""
    rows = re.findall(rf"^\| `({ENV_PREFIX}[A-Z0-9_<>]+)` \|", README, re.M)
    assert len(rows) >= len(_documented_settings())
    stale = sorted(set(rows) - set(_documented_settings()))
    assert stale == []


def test_every_command_is_in_the_readme() -> None:
    root = get_command(app)
    for name, cmd in root.commands.items():
        assert f"childindex {name}" in README, name
        for sub in getattr(cmd, "commands", {}):
            assert sub in README, f"{name} {sub}"


def test_readme_names_the_two_commands_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert "scripts/test.sh" in ci
