"""No password, client secret or token ever appears on stdout or stderr: the real commands, run as subprocesses
against the real Dovecot and SMTP servers, with --debug, --json and --log-format json, when everything works and
when it fails (wrong password, rejected token, no identity provider, servers down)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SmtpServerFactory
from servers import DovecotServer, SmtpServer, free_port
from sqlmodel import Session

from registry.config import load_registry
from registry.db import open_registry
from registry.models import OutboundMail
from registry.paths import config_dir

pytestmark = pytest.mark.slow

WRONG_IMAP_PASSWORD = "fel-imaplösen-31"
WRONG_SMTP_PASSWORD = "fel-smtplösen-77"
CLIENT_SECRET = "klienthemlighet~Qx7.9vTzR2"
REJECTED_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.utgangen-token-4d1"
DB_PASSWORD = "db-hemlis-5Kp"
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)

# `mailbot` with the identity provider replaced by a token we chose (the one Dovecot accepts, or one it rejects),
# so the XOAUTH2 login runs for real without asking Microsoft.
FIXED_TOKEN_MAILBOT = """
import os, sys
import mailbot.imap_auth as auth
auth.OAuthTokenProvider.token = lambda self: os.environ["TEST_IMAP_TOKEN"]
sys.argv[0] = "mailbot"
from mailbot.cli import main
main()
"""


def leaked_forms(secret: str, users: list[str]) -> set[str]:
    """The secret as it could leak: as is, JSON- or bytes-escaped, base64 alone or inside a SASL exchange."""
    forms = {secret, json.dumps(secret)[1:-1], repr(secret.encode())[2:-1], b64(secret)}
    for user in users:
        forms |= {b64(f"\0{user}\0{secret}"), b64(f"{user}\0{user}\0{secret}"), b64(f"user={user}\1auth=Bearer {secret}\1\1")}  # fmt: skip
    return forms


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Scenario:
    name: str
    auth: str  # password, password_file, xoauth2 (no identity provider reachable), fixed_token
    wrong: bool = False  # wrong password / rejected token, IMAP and SMTP
    down: str = ""  # "", "imap", or "both"


SCENARIOS = [
    Scenario("password", "password"),
    Scenario("wrong-password", "password", wrong=True),
    Scenario("imap-down", "password", down="imap"),
    Scenario("both-down", "password", down="both"),
    Scenario("password-file", "password_file"),
    Scenario("wrong-password-file", "password_file", wrong=True),
    Scenario("xoauth2-no-identity-provider", "xoauth2"),
    Scenario("xoauth2-token", "fixed_token"),
    Scenario("xoauth2-rejected-token", "fixed_token", wrong=True),
]


@dataclass
class Setup:
    config: Path
    cwd: Path
    env: dict[str, str]
    fixed_token: bool
    smtp: SmtpServer
    forbidden: dict[str, set[str]]  # what it is -> the forms it must never take on screen


def base_env() -> dict[str, str]:
    """No MAILBOT_ variable of the developer's, and every HTTPS request (MSAL's) to a closed local port: the
    tests never ask Microsoft for anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_") and k.lower() not in ("no_proxy",)}
    closed = f"http://127.0.0.1:{free_port()}"
    env.update(HTTPS_PROXY=closed, https_proxy=closed, HTTP_PROXY=closed, http_proxy=closed, NO_PROXY="", no_proxy="")
    return env


def prepare(tmp_path: Path, dovecot: DovecotServer, smtp_server: SmtpServerFactory, scenario: Scenario) -> Setup:
    smtp = smtp_server("auth")
    imap: dict[str, Any] = {"host": dovecot.host, "port": dovecot.port, "ssl": False, "starttls": False,
                            "user": dovecot.user, "connect_timeout": 5.0, "read_timeout": 10.0}  # fmt: skip
    env = base_env()
    if scenario.auth == "password":
        imap["password"] = WRONG_IMAP_PASSWORD if scenario.wrong else dovecot.password
    elif scenario.auth == "password_file":
        secret_file = tmp_path / "imap-password"
        secret_file.write_text((WRONG_IMAP_PASSWORD if scenario.wrong else dovecot.password) + "\n", encoding="utf-8")
        imap["password_file"] = secret_file
    else:
        imap.update(auth="xoauth2", oauth_tenant="skaraborg.onmicrosoft.com", oauth_client_id="app-1234",
                    oauth_client_secret=CLIENT_SECRET)  # fmt: skip
        env["TEST_IMAP_TOKEN"] = REJECTED_TOKEN if scenario.wrong else dovecot.oauth_token
    # SQLite only: these scenarios are about the mailbox and SMTP secrets; a PostgreSQL URL's password has its own
    # test below, with the server up and down.
    database = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    config = write_config(tmp_path / "mailbot.toml", {
        "imap": imap,
        "smtp": {"host": smtp.host, "port": smtp.port, "ssl": False, "starttls": False, "user": smtp.user,
                 "password": WRONG_SMTP_PASSWORD if scenario.wrong else smtp.password, "timeout": 10.0},
        "database": {"url": database},
        "schedule": {"failures_before_alert": 1},  # a failed pass mails the admin at once: SMTP is used then too
    })  # fmt: skip
    # Something waiting in the outbox, so every poll logs in to SMTP.
    engine = open_registry(database, load_registry(config_dir()))
    with Session(engine) as session:
        session.add(OutboundMail(dedup_key="waiting", kind="alert", recipients="utbildning@skaraborg.se",
                                 subject="Test", body_text="Väntar i utkorgen.", message_id="<waiting@mailbot>",
                                 created=T0))  # fmt: skip
        session.commit()
    engine.dispose()
    if scenario.down in ("imap", "both"):
        dovecot.stop()
    if scenario.down == "both":
        smtp.stop()
    users = [dovecot.user, smtp.user]
    forbidden = {
        "IMAP password": leaked_forms(dovecot.password, users),
        "wrong IMAP password": leaked_forms(WRONG_IMAP_PASSWORD, users),
        "SMTP password": leaked_forms(smtp.password, users),
        "wrong SMTP password": leaked_forms(WRONG_SMTP_PASSWORD, users),
        "client secret": leaked_forms(CLIENT_SECRET, users),
        "token": leaked_forms(dovecot.oauth_token, users),
        "rejected token": leaked_forms(REJECTED_TOKEN, users),
    }
    return Setup(config, tmp_path, env, scenario.auth == "fixed_token", smtp, forbidden)


def run(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    program, *rest = args
    if program == "mailbot" and setup.fixed_token:
        argv = [sys.executable, "-c", FIXED_TOKEN_MAILBOT, "--config", str(setup.config), *rest]
    else:
        module = "mailbot.cli" if program == "mailbot" else "registry.cli"
        argv = [sys.executable, "-m", module, "--config", str(setup.config), *rest]
    return subprocess.run(argv, cwd=setup.cwd, env=setup.env, capture_output=True, text=True, timeout=180)


def assert_nothing_secret(setup: Setup, command: str, result: subprocess.CompletedProcess[str]) -> None:
    shown = result.stdout + result.stderr
    for what, forms in setup.forbidden.items():
        for form in forms:
            assert form not in shown, f"{command}: the {what} appears in its output:\n{shown}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_no_secret_on_screen(
    tmp_path: Path, dovecot: DovecotServer, smtp_server: SmtpServerFactory, scenario: Scenario
) -> None:
    setup = prepare(tmp_path, dovecot, smtp_server, scenario)
    works = not scenario.wrong and not scenario.down and scenario.auth != "xoauth2"
    commands = [
        ("mailbot", "--debug", "poll", "--json"),
        ("mailbot", "--log-format", "json", "poll"),
        ("mailbot", "--debug", "check", "--json"),
        ("mailbot", "check"),
    ]
    results = {}
    for command in commands:
        result = run(setup, *command)
        assert_nothing_secret(setup, " ".join(command), result)
        results[command[1:]] = result
    # The runs did what the scenario says (so the secrets really were used, and the failures really failed).
    poll = results[("--debug", "poll", "--json")]
    assert poll.returncode == (0 if works else 1), poll.stderr
    checks = {c["name"]: c for c in json.loads(results[("--debug", "check", "--json")].stdout)["checks"]}
    assert checks["mailbox"]["ok"] is works, checks["mailbox"]
    assert checks["smtp"]["ok"] is (not scenario.wrong and scenario.down != "both"), checks["smtp"]
    if works:
        assert json.loads(poll.stdout)["sent"] == 1 and len(setup.smtp.messages) == 1
    if scenario.down == "imap":  # the failed pass mailed the admin; the mail quotes the error, no secret
        assert len(setup.smtp.messages) == 2
    sent = "\n".join(message.raw.decode("utf-8", "replace") for message in setup.smtp.messages)
    for what, forms in setup.forbidden.items():
        assert not any(form in sent for form in forms), f"the {what} is in a mail sent"


def test_registry_status_shows_no_database_password(
    tmp_path: Path, postgres_server: Any, request: pytest.FixtureRequest
) -> None:
    """The database URL's password (trust authentication ignores it) never shows, working or not."""
    name = postgres_server.copy_of(request.getfixturevalue("postgres_registry_template"))  # a registry, not empty
    try:
        env = base_env()
        good = f"postgresql+psycopg://{postgres_server.superuser}:{DB_PASSWORD}@{postgres_server.host}:{postgres_server.port}/{name}"
        down = f"postgresql+psycopg://{postgres_server.superuser}:{DB_PASSWORD}@127.0.0.1:{free_port()}/{name}"
        for url, ok in ((good, True), (down, False)):
            config = write_config(tmp_path / "mailbot.toml", {"database": {"url": url}})
            setup = Setup(config, tmp_path, env, False, None, {"database password": leaked_forms(DB_PASSWORD, [])})  # type: ignore[arg-type]
            for command in (
                ("registry", "status", "--json"),
                ("registry", "--debug", "status", "--json"),
                ("registry", "--log-format", "json", "status", "--json"),
                ("mailbot", "--debug", "check", "--json"),
            ):
                result = run(setup, *command)
                assert_nothing_secret(setup, " ".join(command), result)
                if command[1:3] == ("status", "--json"):
                    assert (result.returncode == 0) is ok, result.stderr
    finally:
        postgres_server.drop_database(name)
