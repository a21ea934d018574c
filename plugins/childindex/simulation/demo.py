"""The demo: one synthetic night through the real DAGs, on embedded defaults.

``childindex demo`` prepares a data directory (drop folders, a local key file of mode
0600, a SQLite index, a SQLite Airflow metadata database), generates a night of
synthetic extracts, migrates both databases and runs every DAG with Airflow's own runner
(``dag.test()``) in a child process whose output goes to a log file. Airflow reads its
configuration from the environment at import, so the runner is a separate process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

DEMO_ORDER = (
    "intake_education",
    "intake_health",
    "intake_social_care",
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
    def airflow_home(self) -> Path:
        return self.data_dir / "airflow"

    @property
    def truth_dir(self) -> Path:
        # Beside, never inside, the drop folders: agencies never see ground truth.
        return self.data_dir / "ground_truth"

    @property
    def log_file(self) -> Path:
        return self.airflow_home / "demo-run.log"


def dags_folder() -> Path:
    """The repository's dags/ folder (next to plugins/, where this package lives)."""
    return Path(__file__).resolve().parents[2] / "dags"


def airflow_env(home: Path) -> dict[str, str]:
    """Environment for an embedded Airflow: SQLite metadata, no examples, our DAGs."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        # Our package is installed; Airflow need not load plugins/ as plugin modules.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "CHILDINDEX_TASK_RETRIES": "0",
    }


def prepare(data_dir: Path) -> tuple[DemoPaths, dict[str, str]]:
    """Create the data directory and key; return the environment every step runs in."""
    from childindex.settings import create_key_file

    paths = DemoPaths(data_dir.absolute())
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    env = {"CHILDINDEX_DATA_DIR": str(paths.data_dir), "CHILDINDEX_GROUND_TRUTH_DIR": str(paths.truth_dir)}
    if not (
        os.environ.get("CHILDINDEX_PSEUDONYMISATION_KEY") or os.environ.get("CHILDINDEX_PSEUDONYMISATION_KEY_FILE")
    ):
        if not paths.key_file.exists():
            create_key_file(paths.key_file)
        env["CHILDINDEX_PSEUDONYMISATION_KEY_FILE"] = str(paths.key_file)
    env.update(airflow_env(paths.airflow_home))
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
                raise RuntimeError(f"'{' '.join(cmd[2:4])}' failed (exit {done.returncode}); see {log_file}")


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


def serve_ui(env: dict[str, str], port: int, log_file: Path) -> int:
    """Serve Airflow's UI over the demo's night until interrupted (Ctrl-C)."""
    with log_file.open("a", encoding="utf-8") as log:
        proc = subprocess.Popen(ui_command(port), env=ui_env(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait(timeout=30)


def _runner(night: date, dag_ids: list[str]) -> int:
    """Inside the child process: dag.test() each DAG in order, stop at the first failure."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder()))
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
