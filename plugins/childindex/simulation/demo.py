"""The demo: one synthetic night through the real DAGs, on embedded defaults.

``childindex demo`` prepares a data directory (drop folders, a local key file of mode
0600, a SQLite index, a SQLite Airflow metadata database), generates a night of
synthetic extracts, migrates both databases and runs every DAG with Airflow's own runner
(``dag.test()``) in a child process whose output goes to a log file. Airflow reads its
configuration from the environment at import, so the runner is a separate process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from childindex.errors import TerminalError, UsageError
from childindex.settings import create_key_file, environment_for, load_settings

DEMO_ORDER = (
    "intake",
    "train_linkage_model",
    "link_and_publish",
    "night_summary",
    "retention",
)


@dataclass
class DemoPaths:
    data_dir: Path

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secrets" / "pseudonymisation.key"

    @property
    def reference_key_file(self) -> Path:
        return self.data_dir / "secrets" / "reference.key"

    @property
    def airflow_home(self) -> Path:
        return self.data_dir / "airflow"

    @property
    def truth_dir(self) -> Path:
        # Beside, never inside, the drop folders: organisations never see ground truth.
        return self.data_dir / "ground_truth"

    @property
    def log_file(self) -> Path:
        return self.airflow_home / "demo-run.log"


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """Environment for an embedded Airflow: SQLite metadata, no examples, our DAGs."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        # Our package is installed; Airflow need not load plugins/ as plugin modules.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    }


def demo_settings(paths: DemoPaths) -> dict[str, Any]:
    """The settings the demo runs with (as overrides of the configured ones): its own data
    directory and ground truth, no retries (fail fast), and a key file of its own unless a
    key is configured already."""
    values: dict[str, Any] = {"data_dir": paths.data_dir, "ground_truth_dir": paths.truth_dir, "task_retries": 0}
    configured = load_settings()
    if configured.pseudonymisation_key is None and configured.pseudonymisation_key_file is None:
        if not paths.key_file.exists():
            create_key_file(paths.key_file)
        values["pseudonymisation_key_file"] = paths.key_file
    if configured.reference_key is None and configured.reference_key_file is None:
        if not paths.reference_key_file.exists():
            create_key_file(paths.reference_key_file)
        values["reference_key_file"] = paths.reference_key_file
    return values


def prepare(data_dir: Path, dags_folder: Path = Path("dags")) -> tuple[DemoPaths, dict[str, str]]:
    """Create the data directory and key; return the environment Airflow's processes run in
    (the demo's settings as ``CHILDINDEX_*`` variables, and Airflow's own). ``dags_folder``:
    the repository's dags/ (the demo runs from a clone)."""
    folder = dags_folder.absolute()
    if not (folder / "link_and_publish.py").is_file():
        raise UsageError(f"{folder} holds no childindex DAGs: run the demo from the repository's root, or name it")
    paths = DemoPaths(data_dir.absolute())
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    env = {**environment_for(demo_settings(paths)), **airflow_env(paths.airflow_home, folder)}
    return paths, env


def run_dags(env: dict[str, str], night: date, log_file: Path, dag_ids: tuple[str, ...] = DEMO_ORDER) -> None:
    """Migrate Airflow's metadata and run the DAGs in a child process (output to log_file)."""
    full_env = {**os.environ, **env}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as log:
        for cmd in (
            [sys.executable, "-m", "airflow", "db", "migrate"],
            [sys.executable, "-m", "childindex.simulation.demo", night.isoformat(), *dag_ids],
        ):
            done = subprocess.run(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                step = " ".join(cmd[2:4])
                raise TerminalError(f"'{step}' failed (exit {done.returncode}); see {log_file}", stage="demo")


def ui_command(port: int) -> list[str]:
    """Airflow's api-server (its UI, with childindex's plugin), on this machine only."""
    return [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]


def ui_env(env: dict[str, str]) -> dict[str, str]:
    """The demo's environment for its api-server: a JWT secret of this run's own, and every
    visitor logged in as admin (Airflow's simple auth manager): a laptop demo, nothing more."""
    import secrets

    return {
        **os.environ,
        **env,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }


class _Stopped(Exception):
    """SIGTERM arrived: stop as on Ctrl-C."""


def serve_ui(env: dict[str, str], port: int, log_file: Path) -> int:
    """Serve Airflow's UI over the demo's night until interrupted: Ctrl-C or SIGTERM stop the
    api-server and everything it started (its own process group), never leaving it running."""

    def stop(_signum: int, _frame: Any) -> None:
        raise _Stopped

    with log_file.open("a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            ui_command(port), env=ui_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return proc.wait()
        except (KeyboardInterrupt, _Stopped):
            return _stop_group(proc)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if proc.poll() is None:  # any other way out
                _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> int:
    """SIGTERM to the process group, SIGKILL after 30 s; its exit code."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def _runner(night: date, dag_ids: list[str]) -> int:
    """Inside the child process: dag.test() each DAG in order, stop at the first failure."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        print(f"DAG import errors in: {sorted(bag.import_errors)}", flush=True)
        return 2
    logical = datetime.combine(night + timedelta(days=1), time(2, 0))
    from airflow.sdk import timezone

    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        run = dag.test(logical_date=timezone.coerce_datetime(logical))
        state = str(getattr(run, "state", "unknown"))
        print(f"childindex demo: {dag_id} finished: {state}", flush=True)
        if "success" not in state:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_runner(date.fromisoformat(sys.argv[1]), sys.argv[2:]))
