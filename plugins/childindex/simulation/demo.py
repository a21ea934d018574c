"""The demo: one synthetic night through the real DAGs, on embedded defaults.

``childindex demo`` prepares a data directory (drop folders, local key files of mode
0600, a SQLite index, a SQLite Airflow metadata database), writes a configuration file
that every later command run in the same folder reads, generates a night of synthetic
extracts, migrates both databases and runs every DAG with Airflow's own runner
(``dag.test()``) in a child process. Airflow reads its configuration from the environment at
import, so the runner is a separate process; its output goes to a log file, each task's
share of it to that task's log in Airflow's log folder too (the UI shows it), and a line per
task reaches the console as the task finishes. ``serve`` runs Airflow's api-server,
scheduler and dag-processor over a demo's data folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from childindex.errors import TerminalError, UsageError
from childindex.keyfiles import create_key_file
from childindex.settings import (
    CONFIG_FILE_NAME,
    config_file,
    environment_for,
    load_settings,
    private_dir,
    without_config_file,
)

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


# The first line of every configuration file the demo writes: it rewrites only such a file.
CONFIG_MARK = "# Written by 'childindex demo'"


def is_demo_config(path: Path | None) -> bool:
    """Whether ``path`` is a configuration file the demo wrote (and may rewrite)."""
    try:
        return path is not None and path.read_text(encoding="utf-8").startswith(CONFIG_MARK)
    except OSError:
        return False


def _configured() -> AbstractContextManager[None]:
    """Settings as configured by the user: a previous demo's file is not configuration (its
    folders and keys are that demo's), any other file is."""
    return without_config_file() if is_demo_config(config_file()) else nullcontext()


def demo_settings(paths: DemoPaths) -> dict[str, Any]:
    """The settings the demo runs with (as overrides of the configured ones): its own data
    directory and ground truth, no retries (fail fast), and a key file of its own unless a
    key is configured already."""
    values: dict[str, Any] = {"data_dir": paths.data_dir, "ground_truth_dir": paths.truth_dir, "task_retries": 0}
    with _configured():
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


def config_target(paths: DemoPaths, folder: Path | None = None) -> Path:
    """Where the demo's configuration file goes: ``childindex.toml`` in ``folder`` (the working
    directory), where every command run there finds it; in the data folder instead when
    ``folder`` holds a childindex.toml the demo did not write (never overwritten)."""
    target = (folder or Path.cwd()) / CONFIG_FILE_NAME
    if target.exists() and not is_demo_config(target):
        return paths.data_dir / CONFIG_FILE_NAME
    return target


def write_config(target: Path, values: dict[str, Any]) -> Path:
    """Write the demo's settings as a configuration file (the settings' own TOML format) for
    every later command: its data folder, index and key files. Never a key itself: a key given
    as a value (CHILDINDEX_PSEUDONYMISATION_KEY) stays where it was given, and so does an index
    URL with a password in it."""
    with _configured():
        settings = load_settings(**values)
    lines = [
        f"{CONFIG_MARK} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: every childindex command run in this",
        "# folder reads it (doctor, review, summary, report...), so they work on the demo's data.",
        "# CHILDINDEX_* environment variables win over it; CHILDINDEX_CONFIG_FILE names another file",
        "# instead (set it empty to read none). The demo rewrites it; delete it with the data folder.",
        "# No key is written here: the key files named below hold keys the demo generated (mode 0600,",
        "# inside the data folder, which git ignores). A real installation's keys are never in a",
        "# repository or a configuration file (docs/keys.md).",
    ]
    entries: dict[str, Any] = {
        "data_dir": settings.data_dir,
        "ground_truth_dir": settings.ground_truth_dir,
        "task_retries": settings.task_retries,
    }
    default_index = f"sqlite:///{settings.data_dir / 'index.sqlite'}"
    if settings.index_url == default_index:  # not written: it follows data_dir wherever that is set
        lines.append(f"# index_url: {default_index} (the default under data_dir)")
    elif make_url(settings.index_url).password is None:
        entries["index_url"] = settings.index_url
    else:
        lines.append("# index_url: as configured in the environment (not copied: it holds a password)")
    for name in ("pseudonymisation", "reference"):
        if isinstance(getattr(settings, f"{name}_key"), SecretStr):
            lines.append(f"# {name} key: as configured in the environment (CHILDINDEX_{name.upper()}_KEY)")
        else:
            entries[f"{name}_key_file"] = getattr(settings, f"{name}_key_file")
    entries["organisations_file"] = settings.organisations_file  # the registry its data was made for
    lines += [f"{name} = {_toml(value)}" for name, value in entries.items() if value is not None]
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_text("\n".join(lines) + "\n", encoding="utf-8")
    part.replace(target)
    return target


def _toml(value: Any) -> str:
    """A TOML value: an integer, or a basic string (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else json.dumps(str(value))


def prepare(data_dir: Path, dags_folder: Path = Path("dags")) -> tuple[DemoPaths, dict[str, str]]:
    """Create the data directory and key; return the environment Airflow's processes run in
    (the demo's settings as ``CHILDINDEX_*`` variables, and Airflow's own). ``dags_folder``:
    the repository's dags/ (the demo runs from a clone)."""
    folder = dags_folder.absolute()
    if not (folder / "link_and_publish.py").is_file():
        raise UsageError(f"{folder} holds no childindex DAGs: run the demo from the repository's root, or name it")
    paths = DemoPaths(data_dir.absolute())
    private_dir(paths.data_dir)  # 0750: children's data, even synthetic, is no other user's
    with _configured():
        own_file = config_file()  # a file of the user's: Airflow's processes read it too
    env = {
        **environment_for(demo_settings(paths)),
        # A previous demo's file is not read: the variables above say everything it would.
        "CHILDINDEX_CONFIG_FILE": str(own_file or ""),
        **airflow_env(paths.airflow_home, folder),
    }
    return paths, env


# A line the runner prints for the demo's console: this prefix, then one JSON object.
EVENT = "childindex-demo-event "
Progress = Callable[[dict[str, Any]], None]


def run_dags(
    env: dict[str, str],
    night: date,
    log_file: Path,
    dag_ids: tuple[str, ...] = DEMO_ORDER,
    progress: Progress | None = None,
) -> None:
    """Migrate Airflow's metadata and run the DAGs in a child process. Its output goes to
    ``log_file``, each task's share of it also to the task's log file in Airflow's log folder
    (where the UI reads it); ``progress`` gets each event (a DAG or task started or finished)."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}  # the events in order with the rest
    log_file.parent.mkdir(parents=True, exist_ok=True)
    task_logs = Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    with log_file.open("a", encoding="utf-8") as log:
        if progress:
            progress({"event": "migrating"})
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if migrated.returncode != 0:
            raise TerminalError(f"'airflow db' failed (exit {migrated.returncode}); see {log_file}", stage="demo")
        cmd = [sys.executable, "-m", "childindex.simulation.demo", night.isoformat(), *dag_ids]
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert proc.stdout is not None
        task_log: IO[str] | None = None
        before: list[str] = []  # since the last task ended: Airflow starting the next one
        try:
            for line in proc.stdout:
                log.write(line)
                if line.startswith(EVENT):
                    event = json.loads(line[len(EVENT) :])
                    if event["event"] == "task_started":
                        path = task_logs / event["log"]
                        path.parent.mkdir(parents=True, exist_ok=True)
                        task_log = path.open("a", encoding="utf-8")
                        task_log.writelines(before)
                    elif event["event"] == "task_finished" and task_log is not None:
                        task_log.close()
                        task_log = None
                    before.clear()
                    if progress:
                        progress(event)
                elif task_log is not None:
                    task_log.write(line)
                else:
                    before.append(line)
        finally:
            if task_log is not None:
                task_log.close()
            code = proc.wait()
        if code != 0:
            raise TerminalError(f"'childindex.simulation.demo' failed (exit {code}); see {log_file}", stage="demo")


def components(port: int) -> dict[str, list[str]]:
    """What serving the demo runs: Airflow's api-server (its UI, with childindex's plugin, on
    this machine only), the scheduler (its LocalExecutor runs what the UI triggers and writes
    each task's log) and the dag-processor (Airflow 3 parses DAG files only there). No
    triggerer: no childindex task defers. The scheduler serves no logs (a server on every
    interface): the api-server reads them from this machine's log folder."""
    airflow = [sys.executable, "-m", "airflow"]
    return {
        "api-server": ui_command(port),
        "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [*airflow, "dag-processor"],
    }


def ui_command(port: int) -> list[str]:
    """Airflow's api-server (its UI, with childindex's plugin), on this machine only."""
    return [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]


def ui_env(env: dict[str, str], port: int | None = None) -> dict[str, str]:
    """The demo's environment for its Airflow processes: a JWT secret of this run's own (the
    same for every process it starts: the scheduler's tasks sign in to the api-server with
    it), the api-server's execution API for those tasks, and every visitor logged in as
    admin (Airflow's simple auth manager): a laptop demo, nothing more."""
    import secrets

    served = {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"} if port else {}
    return {
        **os.environ,
        **env,
        **served,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }


class _Stopped(Exception):
    """SIGTERM arrived: stop as on Ctrl-C."""


def serve_ui(env: dict[str, str], port: int, log_file: Path) -> int:
    """Serve Airflow over the demo's data until interrupted: the api-server, scheduler and
    dag-processor (:func:`components`), each in a process group of its own, output to
    ``log_file``. Ctrl-C, SIGTERM or any of them exiting stops them all and everything they
    started, never leaving one running. Returns the first exit code that is not 0, else 0."""
    import time as clock

    def stop(_signum: int, _frame: Any) -> None:
        raise _Stopped

    shared = ui_env(env, port)
    procs: dict[str, subprocess.Popen] = {}
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with log_file.open("a", encoding="utf-8") as log:
            for name, cmd in components(port).items():
                procs[name] = subprocess.Popen(
                    cmd, env=shared, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            while all(p.poll() is None for p in procs.values()):
                clock.sleep(0.5)
            ended = [(name, p.returncode) for name, p in procs.items() if p.returncode is not None]
            log.write(f"childindex demo: {', '.join(f'{n} exited {c}' for n, c in ended)}; stopping the rest\n")
            code = next((c for _, c in ended if c), 0)
        _stop_all(procs)
        return code
    except (KeyboardInterrupt, _Stopped):
        return _stop_all(procs)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if any(p.poll() is None for p in procs.values()):  # any other way out
            _stop_all(procs)


def _stop_all(procs: dict[str, subprocess.Popen]) -> int:
    """Stop every process group (at once, then wait); the first exit code that is not 0 of a
    process that did not stop on our signal, else 0."""
    for proc in procs.values():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    codes = [_stop_group(proc) for proc in procs.values()]
    return next((c for c in codes if c not in (0, -signal.SIGTERM, -signal.SIGKILL)), 0)


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


def _emit(**event: Any) -> None:
    print(EVENT + json.dumps(event, default=str), flush=True)


class _TaskEvents:
    """An Airflow listener in the runner: an event as each task starts and finishes (its
    state and seconds, and where its log goes). Names, states and times only."""

    def running(self, previous_state: Any, task_instance: Any) -> None:
        ti = task_instance
        # Airflow's default log_filename_template (the demo does not change it).
        mapped = f"map_index={ti.map_index}/" if ti.map_index >= 0 else ""
        log = f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/{mapped}attempt={ti.try_number}.log"
        _emit(event="task_started", dag_id=ti.dag_id, task_id=ti.task_id, map_index=ti.map_index, log=log)

    def finished(self, task_instance: Any, state: str) -> None:
        ti = task_instance
        # From when Airflow started the task (its start_date), as the UI counts it.
        seconds = (datetime.now(UTC) - ti.start_date).total_seconds() if ti.start_date else 0.0
        _emit(
            event="task_finished",
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            map_index=ti.map_index,
            label=getattr(ti, "rendered_map_index", None),
            state=state,
            seconds=round(seconds, 2),
        )

    def hooks(self) -> Any:
        """The listener object Airflow's listener manager registers."""
        from airflow.listeners import hookimpl

        events = self

        class Listener:
            @hookimpl
            def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
                events.running(previous_state, task_instance)

            @hookimpl
            def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
                events.finished(task_instance, "success")

            @hookimpl
            def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
                events.finished(task_instance, "failed")

            @hookimpl
            def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
                events.finished(task_instance, "skipped")

        return Listener()


def _runner(night: date, dag_ids: list[str]) -> int:
    """Inside the child process: dag.test() each DAG in order, stop at the first failure."""
    import time as clock

    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager().add_listener(_TaskEvents().hooks())
    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        print(f"DAG import errors in: {sorted(bag.import_errors)}", flush=True)
        return 2
    logical = datetime.combine(night + timedelta(days=1), time(2, 0))
    from airflow.sdk import timezone

    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        _emit(event="dag_started", dag_id=dag_id)
        began, started = clock.monotonic(), timezone.utcnow()
        run = dag.test(logical_date=timezone.coerce_datetime(logical))
        _record_start(run, started)
        state = str(getattr(run, "state", "unknown"))
        print(f"childindex demo: {dag_id} finished: {state}", flush=True)
        _emit(event="dag_finished", dag_id=dag_id, state=state, seconds=round(clock.monotonic() - began, 2))
        if "success" not in state:
            return 1
    return 0


def _record_start(run: Any, started: datetime) -> None:
    """dag.test() records its run as started at the logical date (02:00 after the night), so
    the UI would show a run of days: record when it really started."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.id == run.id).values(start_date=started, queued_at=started))


if __name__ == "__main__":
    sys.exit(_runner(date.fromisoformat(sys.argv[1]), sys.argv[2:]))
