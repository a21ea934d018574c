"""`childindex demo --serve`: SIGTERM stops the api-server as Ctrl-C does (issue 18, small holes:
on SIGTERM the demo died and left the api-server running; this failed on the code before)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Stands in for `airflow api-server`: a server that starts a worker of its own and runs until stopped.
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
demo.ui_command = lambda port: [sys.executable, "-c", sys.argv[2], sys.argv[1]]
demo.ui_env = lambda env: dict(env)
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
    demo = subprocess.Popen([sys.executable, "-c", DEMO, str(pids), SERVER, str(tmp_path / "log")])
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip().count(" ") == 1):
        assert time.monotonic() < deadline and demo.poll() is None, "the stand-in server did not start"
        time.sleep(0.1)
    server, worker = (int(p) for p in pids.read_text().split())
    demo.send_signal(sig)
    demo.wait(timeout=60)
    deadline = time.monotonic() + 30
    while (_alive(server) or _alive(worker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server) and not _alive(worker), "the api-server (or its worker) outlived the demo"
