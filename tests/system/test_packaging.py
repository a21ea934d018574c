"""Packaging (issue 19, item 8): the runtime set is the lock's without the test tools, and an
install with pip (an Airflow image) gets the lock's versions through docker/constraints.txt,
which cannot drift from uv.lock."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _uv() -> list[str]:
    """uv as scripts/_uv.sh finds it (on PATH, else python3 -m uv), or the one running the
    tests (``uv run`` names itself in UV; its python3 is the environment's, without uv)."""
    if os.environ.get("UV") and Path(os.environ["UV"]).is_file():
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return ["uv"]
    python3 = shutil.which("python3")
    if python3 and subprocess.run([python3, "-m", "uv", "--version"], capture_output=True).returncode == 0:
        return [python3, "-m", "uv"]
    pytest.fail("uv is not installed: scripts/_uv.sh installs it (python3 -m pip install --user uv)")


def _pins(text: str) -> dict[str, tuple[str, str]]:
    """name -> (version, environment marker) of a requirements file's ``name==version`` lines."""
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = (spec.version, str(requirement.marker or ""))
    return pins


def test_the_constraints_are_the_locks_runtime_packages() -> None:
    """scripts/constraints.sh wrote the file from uv.lock as it is now: rerun it after a lock change."""
    exported = subprocess.run(
        [*_uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-annotate", "--no-header"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = CONSTRAINTS.read_text(encoding="utf-8")
    assert [line for line in committed.splitlines() if not line.startswith("#")] == exported.splitlines(), (
        "docker/constraints.txt differs from uv.lock: run bash scripts/constraints.sh"
    )
    pins = _pins(committed)
    assert len(pins) > 150 and pins["apache-airflow"][0] and pins["splink"][0].startswith("5.")
    # No test tool is a runtime package.
    for tool in PYPROJECT["dependency-groups"]["dev"]:
        assert canonicalize_name(Requirement(tool).name) not in pins, tool


def test_every_declared_bound_holds_the_locked_version() -> None:
    pins = _pins(CONSTRAINTS.read_text(encoding="utf-8"))
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        version = pins[canonicalize_name(requirement.name)][0]
        assert requirement.specifier.contains(version), f"{line}: the lock has {version}"
    # What the code needs (issue 19): Splink 5's API, DuckDB 2.
    declared = {
        canonicalize_name(Requirement(d).name): Requirement(d).specifier for d in PYPROJECT["project"]["dependencies"]
    }
    assert not declared["splink"].contains("4.0.0") and not declared["duckdb"].contains("1.4.0")


def test_the_image_installs_the_locked_versions_on_its_own_airflow() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "RUN pip install --no-cache-dir -r constraints.txt" in dockerfile
    assert "RUN pip install --no-cache-dir -c constraints.txt ." in dockerfile
    assert "uv" not in re.findall(r"^RUN .*", dockerfile, re.M).__str__()
    # The base image's Airflow is the lock's: installing the constraints never swaps Airflow.
    (base,) = re.findall(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.M)
    assert _pins(CONSTRAINTS.read_text(encoding="utf-8"))["apache-airflow"][0] == base


@pytest.mark.skipif(
    not os.environ.get("TEST_PIP_RESOLVE"),
    reason="resolves ~180 packages against the package index (about 3 minutes); set TEST_PIP_RESOLVE=1 to run it",
)
def test_pip_resolves_exactly_the_locked_versions(tmp_path: Path) -> None:
    """What the image's pip does with the constraints: every package at its pin, nothing else."""
    python3 = shutil.which("python3") or sys.executable
    report = tmp_path / "report.json"
    done = subprocess.run(
        [python3, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         "-c", str(CONSTRAINTS), str(ROOT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    resolved = {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    environment = default_environment()
    expected = {
        name: version
        for name, (version, marker) in _pins(CONSTRAINTS.read_text(encoding="utf-8")).items()
        if not marker or Requirement(f"x ; {marker}").marker.evaluate(environment)
    }
    assert resolved.pop("childindex") == PYPROJECT["project"]["version"]
    assert resolved == expected
