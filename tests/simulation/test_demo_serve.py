"""`childindex demo --serve`: SIGTERM stops the api-server, the scheduler and the dag-processor as
Ctrl-C does (issue 18, small holes: on SIGTERM the demo died and left the api-server running;
this failed on the code before). The real processes: tests/system/test_end_to_end.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Stands in for each of Airflow's processes: a server that starts a worker of its own and runs until stopped.
SERVER = """
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {worker.pid}")
time.sleep(600)
"""
DEMO = """
import sys
from pathlib import Path
from childindex.simulation import demo
demo.components = lambda port: {
    name: [sys.executable, "-c", sys.argv[2], f"{sys.argv[1]}.{name}"] for name in ("api-server", "scheduler")
}
demo.ui_env = lambda env, port: dict(env)
sys.exit(demo.serve_ui({"PATH": "/usr/bin:/bin"}, 0, Path(sys.argv[3])))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_server_stops_with_everything_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    pids = tmp_path / "pids"
    files = [Path(f"{pids}.{name}") for name in ("api-server", "scheduler")]
    demo = subprocess.Popen([sys.executable, "-c", DEMO, str(pids), SERVER, str(tmp_path / "log")])
    deadline = time.monotonic() + 60
    while not all(f.exists() and f.read_text().strip().count(" ") == 1 for f in files):
        assert time.monotonic() < deadline and demo.poll() is None, "the stand-in servers did not start"
        time.sleep(0.1)
    started = [int(p) for f in files for p in f.read_text().split()]
    assert len(set(started)) == 4 and all(_alive(p) for p in started)
    demo.send_signal(sig)
    assert demo.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in started), "a server (or its worker) outlived the demo"


def test_when_one_process_dies_the_others_are_stopped(tmp_path: Path) -> None:
    """The scheduler crashing must not leave an api-server whose triggers never run."""
    pids = tmp_path / "pids"
    crash = "import sys, time; time.sleep(3); sys.exit(3)"  # after the api-server is up
    code = DEMO.replace('for name in ("api-server", "scheduler")', 'for name in ("api-server",)').replace(
        "\nsys.exit(demo.serve_ui",
        f"\ndemo_parts = demo.components\ndemo.components = lambda port: "
        f"{{**demo_parts(port), 'scheduler': [sys.executable, '-c', {crash!r}]}}\nsys.exit(demo.serve_ui",
    )
    demo = subprocess.Popen([sys.executable, "-c", code, str(pids), SERVER, str(tmp_path / "log")])
    assert demo.wait(timeout=60) == 3, "the crashed process's exit code"
    server, worker = (int(p) for p in Path(f"{pids}.api-server").read_text().split())
    deadline = time.monotonic() + 30
    while (_alive(server) or _alive(worker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server) and not _alive(worker)
    assert "scheduler exited 3; stopping the rest" in (tmp_path / "log").read_text()
