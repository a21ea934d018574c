"""Failure notifications: off by default; when on, identifiers only, to a real local server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from childindex.orchestration.notifiers import FailureWebhookNotifier, failure_message, post_json

CANARY = "Zqnotifycanary"


@pytest.fixture()
def server():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook", received
    httpd.shutdown()
    httpd.server_close()


def _context() -> dict:
    ti = SimpleNamespace(dag_id="intake_health", task_id="process", run_id="scheduled__2026-11-25", try_number=3,
                         map_index=0, log_url="http://airflow/log")  # fmt: skip
    return {"task_instance": ti, "exception": ValueError(f"bad value {CANARY} in row 7")}


def test_the_message_names_the_task_never_the_exception_text() -> None:
    message = failure_message(_context())
    assert message["dag_id"] == "intake_health" and message["try_number"] == 3
    assert message["exception_type"] == "ValueError"
    assert CANARY not in json.dumps(message)


def test_the_notifier_posts_to_its_connection(server, monkeypatch) -> None:
    url, received = server
    assert post_json(url, {"ping": 1}) == 204
    monkeypatch.setenv("AIRFLOW_CONN_CHILDINDEX_ALERTS", url)
    FailureWebhookNotifier("childindex_alerts").notify(_context())
    assert received[-1]["task_id"] == "process" and CANARY not in json.dumps(received)


def test_an_unreachable_hook_does_not_hide_the_failure(monkeypatch, caplog) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHILDINDEX_ALERTS", "http://127.0.0.1:9/hook")
    FailureWebhookNotifier("childindex_alerts").notify(_context())  # no exception
    assert "failure notification to connection childindex_alerts failed" in caplog.text


def test_notifications_are_off_unless_configured(monkeypatch) -> None:
    from childindex.orchestration import default_args
    from childindex.settings import load_settings

    assert "on_failure_callback" not in default_args(load_settings())
    monkeypatch.setenv("CHILDINDEX_FAILURE_WEBHOOK_CONN", "childindex_alerts")
    (notifier,) = default_args(load_settings())["on_failure_callback"]
    assert isinstance(notifier, FailureWebhookNotifier) and notifier.conn_id == "childindex_alerts"
