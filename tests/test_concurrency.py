"""The admin's commands and the worker's pass at the same time (issue 15, point 3), on SQLite and PostgreSQL.

Everything runs through the installed console scripts in subprocesses, against a real Dovecot: the admin's
write commands in a loop while a real `mailbot poll` reads the sample mailbox (and a few hundred more mails,
so that the pass lasts); every command and the pass exit 0, and no mail is recorded twice. Two `mailbot`
processes starting on a brand-new database at once migrate it once, and both exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from test_failover import TZ, failover_mails

from registry.db import head_revision

if TYPE_CHECKING:
    from servers import DovecotServer

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "maildir"
BIN = Path(sys.executable).parent
# People of the sample mailbox the admin erases while the pass may be recording their mails.
FORGOTTEN = ["sofia.andersson@mariestad.se", "anna.svensson@skovde.se"]


def sample_mails() -> list[bytes]:
    return [path.read_bytes() for part in ("cur", "new") for path in sorted((SAMPLE / part).iterdir())]


def cli_env(dovecot: DovecotServer, tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(dovecot.imap_env())
    env.update(
        MAILBOT_DATABASE__URL=database_url,
        MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"),
        MAILBOT_IMAP__BATCH_SIZE="25",
        MAILBOT_RECEIPTS__PER_SENDER_PER_HOUR="100000",
    )
    return env


def run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def admin_round(env: dict[str, str], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """One round of the admin's write commands, each on what the registry holds at that moment."""
    done = [run(env, cwd, "registry", "forget", address, "--yes") for address in FORGOTTEN]
    done.append(run(env, cwd, "registry", "purge-raw-mail", "--older-than-days", "30", "--yes"))
    listed = run(env, cwd, "registry", "review", "--json")
    done.append(listed)
    if listed.returncode == 0 and (items := json.loads(listed.stdout)):
        done.append(run(env, cwd, "registry", "review", "--resolve", str(items[0]["id"]), "--dismiss",
                        "--note", "test_concurrency"))  # fmt: skip
    done.append(run(env, cwd, "registry", "publish", "--approve-all"))
    done.append(run(env, cwd, "registry", "status"))
    return done


def gone(done: subprocess.CompletedProcess[str]) -> bool:
    """A review item listed a moment before can be gone when it is resolved: a `forget` purged the mail, or the
    pass re-examined it. The command then says so (exit 1): the right answer, not a lost race for the lock."""
    return "--resolve" in done.args and done.stderr.startswith("error: no mail ") and "waiting in review" in done.stderr


def test_admin_writes_during_a_poll_wait_for_each_other_and_nothing_is_recorded_twice(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    env = cli_env(dovecot, tmp_path, database_url)
    first = run(env, tmp_path, "mailbot", "poll")  # an empty mailbox: the registry exists for the admin
    assert first.returncode == 0, first.stderr
    mails = sample_mails() + failover_mails(240, 0, datetime.now(TZ))
    with dovecot.client() as client:
        for raw in mails:
            client.append("INBOX", raw)

    with (tmp_path / "poll.log").open("w") as log:
        poll = subprocess.Popen([str(BIN / "mailbot"), "poll", "--json"], env=env, cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
        commands: list[subprocess.CompletedProcess[str]] = []
        during = 0  # commands that finished while the pass was still running
        try:
            while poll.poll() is None:
                for done in admin_round(env, tmp_path):
                    commands.append(done)
                    during += poll.poll() is None
        finally:
            poll.wait(timeout=600)
    commands += admin_round(env, tmp_path)  # and once more on the finished pass

    output = (tmp_path / "poll.log").read_text()
    assert poll.returncode == 0, output[-5000:]
    assert "database is locked" not in output
    failed = [(c.args, c.returncode, c.stderr[-2000:]) for c in commands if c.returncode != 0 and not gone(c)]
    assert failed == []
    assert during >= len(FORGOTTEN) + 1, "the pass ended before the admin's commands could overlap it"
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            message_ids = Counter(connection.execute(text("SELECT message_id FROM inbound_mail")).scalars())
            receipts = Counter(connection.execute(
                text("SELECT related_mail_id FROM outbound_mail WHERE kind = 'receipt'")).scalars())  # fmt: skip
    finally:
        engine.dispose()
    assert [m for m, n in message_ids.items() if n > 1] == []
    assert [m for m, n in receipts.items() if n > 1] == []


@pytest.fixture(params=["sqlite", "postgres"])
def new_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that has never been opened: a SQLite file that does not exist, or an empty PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'registry.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


def test_two_workers_starting_on_a_new_database_migrate_it_once(tmp_path: Path, new_database_url: str) -> None:
    maildir = tmp_path / "Maildir"
    for part in ("cur", "new", "tmp"):
        (maildir / part).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(MAILBOT_DATABASE__URL=new_database_url, MAILBOT_MAILDIR=str(maildir),
               MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"))  # fmt: skip
    starts = [subprocess.Popen([str(BIN / "mailbot"), "poll"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    outcomes = [process.communicate(timeout=300) for process in starts]

    assert [p.returncode for p in starts] == [0, 0, 0], [err[-3000:] for _out, err in outcomes]
    engine = create_engine(new_database_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            networks = Counter(connection.execute(text("SELECT key FROM network")).scalars())
    finally:
        engine.dispose()
    assert versions == [head_revision()]
    assert networks and set(networks.values()) == {1}
