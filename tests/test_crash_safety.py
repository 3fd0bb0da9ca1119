"""Crash-safety of the intake (issue 4): SIGKILL `mailbot poll` at random moments, restart, and check
that every mail in the mailbox ends up recorded exactly once, none missing, none twice.

A real `mailbot poll --no-send` subprocess against a real Dovecot holding 500 mails; SQLite in tmp_path, then
PostgreSQL (conftest's database_url): the transactions are the database's, so both must keep the promise.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from servers import DovecotServer

MAILS = 2000  # a pass records several hundred of these mails a second: enough that the kills below land mid-pass
KILLS = 6
SEED = 20250414

SENDERS = [
    ("Åsa Öberg", "asa.oberg@falkoping.se"),
    ("Johan Lindberg", "johan.lindberg@skovde.se"),
    ("Märta Sjögren", "marta.sjogren@lidkoping.se"),
    ("Björn Ågren", "bjorn.agren@mariestad.se"),
    ("Emma Holmberg", "emma.holmberg@tidaholm.se"),
]
SUBJECTS = [
    "Fråga om nätverksträffen",
    "Angående lokal till mötet",
    "Frågor inför höstens träff",
    "Tack för senast",
    "Ändrad kontaktperson i kommunen",
]


def small_mail(number: int) -> bytes:
    name, address = SENDERS[number % len(SENDERS)]
    message = EmailMessage(policy=SMTP)
    message["From"] = f"{name} <{address}>"
    message["To"] = "Utbildning Skaraborg <utbildning@skaraborg.se>"
    message["Subject"] = f"{SUBJECTS[number % len(SUBJECTS)]} (ärende {number:04d})"
    message["Date"] = format_datetime(datetime(2025, 3, 3, 8, 0, tzinfo=UTC) + timedelta(minutes=7 * number))
    message["Message-ID"] = f"<krasch-{number:04d}.{SEED}@{address.split('@')[1]}>"
    message["Content-Language"] = "sv-SE"
    message.set_content(
        f"Hej!\n\nJag undrar över ärende nummer {number}: går det bra att vi ses i Skövde på torsdag?\n"
        "Vi är fyra från kommunen som vill delta.\n\nMed vänliga hälsningar\n" + name + "\n"
    )
    return message.as_bytes()


def cli_env(dovecot: DovecotServer, tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(
        MAILBOT_IMAP__HOST=dovecot.host,
        MAILBOT_IMAP__PORT=str(dovecot.port),
        MAILBOT_IMAP__USER=dovecot.user,
        MAILBOT_IMAP__PASSWORD=dovecot.password,
        MAILBOT_IMAP__SSL="false",
        MAILBOT_IMAP__STARTTLS="false",
        MAILBOT_IMAP__BATCH_SIZE="25",  # several batches, so a kill can fall between recording and marking
        MAILBOT_DATABASE__URL=database_url,
        MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"),
    )
    return env


def query(url: str, sql: str) -> list[tuple]:
    """The rows of `sql` in the registry at `url`, read by a connection of the test's own ([] when there is no
    registry yet: a SQLite file not created, or killed before the schema was complete)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return []
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    except DBAPIError:
        return []
    finally:
        engine.dispose()


def recorded_uids(url: str) -> list[int]:
    return [row[0] for row in query(url, "SELECT uid FROM inbound_mail ORDER BY uid")]


def last_uid(url: str) -> int:
    rows = query(url, "SELECT last_uid FROM mailbox_state WHERE folder = 'INBOX'")
    return int(rows[0][0]) if rows else 0


def kill_mid_pass(env: dict[str, str], cwd: Path, delay: float, after_first_mail: bool) -> int | None:
    """Start a poll and SIGKILL it `delay` seconds after it started (or after its first transaction of mails was
    committed: their log lines are written then).

    Returns the exit status: -SIGKILL when the kill landed, 0 when the pass had already finished.
    """
    process = subprocess.Popen(
        ["mailbot", "poll", "--no-send"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first_mail = threading.Event()
    errors: list[bytes] = []

    def drain() -> None:  # keeps the pipe from filling and notices the first recorded mail
        assert process.stderr is not None
        for line in process.stderr:
            if b"message-id=" not in line:
                errors.append(line)
            if b"message-id=" in line:
                first_mail.set()
        first_mail.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if after_first_mail:
        first_mail.wait(30)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    status = process.wait(10)
    reader.join(10)
    if status != -signal.SIGKILL:
        print(b"".join(errors).decode(errors="replace"))
    return status


@pytest.mark.slow
def test_sigkill_at_random_moments_then_restart_records_each_mail_exactly_once(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(SEED)
    appended: dict[str, int] = {}
    with dovecot.client() as client:
        for number in range(MAILS):
            raw = small_mail(number)
            client.append("INBOX", raw)
            appended[f"krasch-{number:04d}.{SEED}@{SENDERS[number % len(SENDERS)][1].split('@')[1]}"] = number
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
    assert len(uids) == MAILS
    env = cli_env(dovecot, tmp_path, database_url)
    database = database_url

    progress: list[int] = []
    statuses: list[int | None] = []
    for round_ in range(KILLS):
        # Odd rounds count from the start of the process (start-up, migrations, login, SEARCH);
        # even rounds from the first recorded mail, so most kills land in the middle of the pass.
        statuses.append(kill_mid_pass(env, tmp_path, rng.uniform(0.05, 0.6), after_first_mail=round_ % 2 == 0))
        done = recorded_uids(database)
        # A run of mails per transaction, and the position moves with it: what is recorded is a prefix of the UIDs.
        assert done == sorted(set(done)), f"round {round_}: a mail recorded twice"
        if done:
            assert done == uids[: len(done)], f"round {round_}: a gap in what was recorded"
            assert last_uid(database) == done[-1], f"round {round_}: position and recorded mails disagree"
        progress.append(len(done))
    # The kills must land mid-pass to prove anything: every process was killed, several while recording.
    assert statuses == [-signal.SIGKILL] * KILLS, statuses
    moved = [b for a, b in zip([0, *progress], progress, strict=False) if b > a]
    assert len(moved) >= 2 and progress[-1] < MAILS, f"mails recorded after each kill: {progress}"

    final = subprocess.run(
        ["mailbot", "poll", "--no-send", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["new"] == MAILS - progress[-1]

    listed = subprocess.run(
        ["registry", "mails", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    ids = [row["message_id"].strip("<>") for row in json.loads(listed.stdout)]
    assert len(ids) == MAILS, f"{len(ids)} recorded for {MAILS} mails (progress per kill: {progress})"
    assert set(ids) == set(appended), "exactly the mails in the mailbox"
    assert last_uid(database) == max(uids)

    flags = dovecot.flags_of_all()
    assert not [uid for uid, f in flags.items() if "\\Seen" in f]
    # A kill after a batch's mails were committed but before their STORE must not leave them unmarked:
    # the next pass catches up (mailbox_state.marked_uid).
    keywords = {"Registrerad", "Granskas", "Ignorerad"}
    unmarked = sorted(uid for uid, f in flags.items() if not (f & keywords))
    assert not unmarked, f"{len(unmarked)} recorded mails carry no keyword: {unmarked[:10]}"
