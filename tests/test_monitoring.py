"""The dead-man's switch against a real local HTTP server: a good pass pings, a failed pass pings /fail, and an
unreachable or failing endpoint only logs a warning (issue 8)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mailbot.monitoring import fail_url, ping
from mailbot.settings import MonitoringSettings
from mailbot.worker import Worker
from registry.runtime import Runtime

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


@dataclass
class Ping:
    method: str
    path: str
    body: bytes


@dataclass
class PingServer:
    url: str
    pings: list[Ping] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def ping_server() -> Iterator[PingServer]:
    """A Healthchecks-like endpoint on loopback that records every request."""
    server_state = PingServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            server_state.pings.append(Ping(self.command, self.path, self.rfile.read(length)))
            self.send_response(server_state.status)
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _record  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence the default stderr log
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}/ping/5f3c1e2a-mailbot"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_success_ping_is_a_get_of_the_url(ping_server: PingServer) -> None:
    assert ping(MonitoringSettings(ping_url=ping_server.url))
    assert [(p.method, p.path) for p in ping_server.pings] == [("GET", "/ping/5f3c1e2a-mailbot")]


def test_failure_ping_posts_the_reason_to_fail(ping_server: PingServer) -> None:
    assert ping(MonitoringSettings(ping_url=ping_server.url), failure="IMAP server unreachable")
    assert [(p.method, p.path, p.body) for p in ping_server.pings] == [
        ("POST", "/ping/5f3c1e2a-mailbot/fail", b"IMAP server unreachable")
    ]


def test_no_url_no_ping() -> None:
    assert not ping(MonitoringSettings())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hc-ping.com/abc", "https://hc-ping.com/abc/fail"),
        ("https://hc-ping.com/abc/", "https://hc-ping.com/abc/fail"),
        ("https://example.org/ping?key=1", "https://example.org/ping/fail?key=1"),
    ],
)
def test_fail_url_appends_to_the_path(url: str, expected: str) -> None:
    assert fail_url(url) == expected


def test_unreachable_endpoint_only_logs_a_warning_without_the_secret_path(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ping/secret-uuid"
    with caplog.at_level(logging.WARNING, logger="mailbot.monitoring"):
        assert not ping(MonitoringSettings(ping_url=url, ping_timeout=2))
    assert len(caplog.records) == 1 and "cannot ping 127.0.0.1" in caplog.text
    assert "secret-uuid" not in caplog.text


def test_error_status_only_logs_a_warning(ping_server: PingServer, caplog: pytest.LogCaptureFixture) -> None:
    ping_server.status = 404
    with caplog.at_level(logging.WARNING, logger="mailbot.monitoring"):
        assert not ping(MonitoringSettings(ping_url=ping_server.url))
    assert "HTTP 404" in caplog.text


# --- the worker pings after its passes -----------------------------------------------------------------


def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, **overrides: object) -> Worker:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    for name in [n for n in os.environ if n.startswith("MAILBOT_")]:
        monkeypatch.delenv(name)
    settings = {
        "database": {"url": f"sqlite:///{tmp_path / 'registry.sqlite3'}"},
        "smtp": {"directory": str(tmp_path / "outbox")},
        "monitoring": {"ping_url": url, "ping_timeout": 2},
        "schedule": {"remind_hour": 23},
        **overrides,
    }
    return Worker(Runtime(config_path=None, overrides=settings))


def test_good_pass_pings_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ping_server: PingServer) -> None:
    maildir = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (maildir / folder).mkdir(parents=True)
    shutil.copy(CORPUS / "001_skis-medlemmar-xlsx-titelrad.eml", maildir / "new" / "1.eml")
    worker(tmp_path, monkeypatch, ping_server.url, maildir=str(maildir)).poll_tick()
    assert [(p.method, p.path) for p in ping_server.pings] == [("GET", "/ping/5f3c1e2a-mailbot")]


def test_failed_pass_pings_fail_and_the_tick_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ping_server: PingServer
) -> None:
    imap = {"host": "127.0.0.1", "port": closed_port(), "ssl": False, "starttls": False, "user": "u",
            "password": "p", "connect_timeout": 2}  # fmt: skip
    worker(tmp_path, monkeypatch, ping_server.url, imap=imap).poll_tick()
    assert [(p.method, p.path) for p in ping_server.pings] == [("POST", "/ping/5f3c1e2a-mailbot/fail")]
    assert b"poll failed" in ping_server.pings[0].body


def test_unreachable_ping_url_does_not_fail_the_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    maildir = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (maildir / folder).mkdir(parents=True)
    shutil.copy(CORPUS / "001_skis-medlemmar-xlsx-titelrad.eml", maildir / "new" / "1.eml")
    url = f"http://127.0.0.1:{closed_port()}/ping/x"
    active = worker(tmp_path, monkeypatch, url, maildir=str(maildir))
    active.poll_tick()
    from mailbot.jobs import last_runs

    assert last_runs(active.rt.engine())["poll"]["last_error"] is None
