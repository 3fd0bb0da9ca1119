"""The intake end to end: the real `mailbot` and `registry` CLIs as subprocesses, a real Dovecot, and each test on
SQLite in tmp_path and on PostgreSQL (conftest's database_url).

Each test checks a promise of issue 4: every mail recorded exactly once, nothing \\Seen, our keywords set,
a poison mail goes to review without blocking the rest, UIDVALIDITY changes, outages and bad passwords.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers import DovecotServer

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
KEYWORDS = {"registered": "Registrerad", "review": "Granskas", "ignored": "Ignorerad"}
BROKEN_MESSAGE_ID = "<trasig-mime-1@falkoping.se>"


def broken_mime_mail() -> bytes:
    """A multipart mail whose boundary never occurs and whose body is binary garbage (NULs, invalid UTF-8)."""
    header = (
        "From: Johan Lindberg <johan.lindberg@falkoping.se>\r\n"
        "To: Utbildning Skaraborg <utbildning@skaraborg.se>\r\n"
        "Subject: =?utf-8?Q?Bilagor_fr=C3=A5n_m=C3=B6tet?=\r\n"
        "Date: Mon, 14 Apr 2025 09:05:00 +0000\r\n"
        f"Message-ID: {BROKEN_MESSAGE_ID}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=x\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode("ascii")
    garbage = bytes((index * 7919 + 13) % 256 for index in range(3000)).replace(b"\r", b"").replace(b"\n", b"")
    return header + b"--y\r\n" + garbage[:1500] + b"\r\n\xff\xfe\x00\x00--x--garbage\r\n" + garbage[1500:] + b"\r\n"


def corpus_mails() -> list[bytes]:
    """~30 realistic Outlook mails (member lists, minutes, auto-replies, bounces, the corpus's broken MIME)."""
    files = sorted(CORPUS.glob("*.eml"))
    chosen = files[:5] + [f for f in files if "038" <= f.name[:3] <= "067"]
    return [path.read_bytes() for path in chosen]


def message_id(raw: bytes) -> str:
    value = email.message_from_bytes(raw, policy=default_policy)["Message-ID"]
    assert value, "every test mail has a Message-ID"
    return str(value).strip().strip("<>")


def cli_env(dovecot: DovecotServer, tmp_path: Path, database_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(dovecot.imap_env())
    env.update(
        MAILBOT_DATABASE__URL=database_url,
        MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"),
    )
    env.update(overrides)
    return env


def run_cli(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def poll(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = run_cli(env, cwd, "mailbot", "poll", "--json", "--no-send")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def registry_json(env: dict[str, str], cwd: Path, command: str) -> list[dict[str, Any]]:
    done = run_cli(env, cwd, "registry", command, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the structured log lines (timestamped): what the user is told."""
    return [line for line in done.stderr.splitlines() if line.strip() and not line[:4].isdigit()]


# --- two passes over a realistic mailbox ----------------------------------------------------------


def test_first_poll_records_every_mail_once_and_second_is_idle(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    mails = corpus_mails()
    mails.insert(7, broken_mime_mail())  # a poison mail early on, mid-batch: the rest must still be read
    uids = {message_id(raw): dovecot.append(raw) for raw in mails}
    assert len(uids) == len(mails) >= 30
    env = cli_env(dovecot, tmp_path, database_url, MAILBOT_IMAP__BATCH_SIZE="4")

    first = poll(env, tmp_path)

    assert first["new"] == len(mails) and not first["idle"]
    assert first["registered"] + first["review"] + first["ignored"] == len(mails)
    recorded = registry_json(env, tmp_path, "mails")
    ids = [row["message_id"].strip("<>") for row in recorded]
    assert sorted(ids) == sorted(uids), "each Message-ID exactly once, none missing"
    assert {row["uid"] for row in recorded} == set(uids.values())
    assert {row["status"] for row in recorded} == set(KEYWORDS), "the corpus yields every outcome"

    second = poll(env, tmp_path)

    assert second["idle"] is True
    assert second["new"] == 0 and second["already_recorded"] == 0 and second["mails"] == []
    assert len(registry_json(env, tmp_path, "mails")) == len(mails)

    flags = dovecot.flags_of_all()
    assert set(flags) == set(uids.values())
    assert not [uid for uid, f in flags.items() if "\\Seen" in f], "reading must never set \\Seen"
    for row in recorded:
        # Only our keyword, and the one for what became of the mail.
        assert flags[row["uid"]] == {KEYWORDS[row["status"]]}, row

    review = {row["message_id"].strip("<>"): row for row in registry_json(env, tmp_path, "review")}
    broken_ids = [BROKEN_MESSAGE_ID.strip("<>"), message_id((CORPUS / "064_trasig-mime.eml").read_bytes())]
    for broken in broken_ids:
        assert broken in review, f"the broken mail {broken} is in the review queue"
        assert review[broken]["reason"], "with a reason"
    after = [mid for mid, uid in uids.items() if uid > uids[broken_ids[0]]]
    assert len(after) > 20
    assert set(after) <= set(ids), "the mails after the poison mail were recorded"


def test_uidvalidity_change_records_nothing_twice(dovecot: DovecotServer, tmp_path: Path, database_url: str) -> None:
    mails = corpus_mails()[:12]
    for raw in mails:
        dovecot.append(raw)
    env = cli_env(dovecot, tmp_path, database_url)
    assert poll(env, tmp_path)["new"] == 12
    before = registry_json(env, tmp_path, "mails")
    old_uidvalidity = dovecot.uidvalidity()

    assert dovecot.reset_mailbox() != old_uidvalidity
    for raw in mails:
        dovecot.append(raw)
    again = poll(env, tmp_path)

    assert again["new"] == 0 and again["already_recorded"] == 12, again
    after = registry_json(env, tmp_path, "mails")
    assert sorted(r["message_id"] for r in after) == sorted(r["message_id"] for r in before)
    flags = dovecot.flags_of_all()
    assert not [uid for uid, f in flags.items() if "\\Seen" in f]
    # The new copies carry the keyword again (they are the same mails, already recorded).
    statuses = {r["message_id"].strip("<>"): r["status"] for r in after}
    with dovecot.client() as client:
        client.select_folder("INBOX", readonly=True)
        headers = client.fetch(list(flags), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    for uid, data in headers.items():
        mid = message_id(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
        assert flags[uid] == {KEYWORDS[statuses[mid]]}

    assert poll(env, tmp_path)["idle"] is True


# --- outages and bad credentials ------------------------------------------------------------------


def test_server_down_exits_1_with_one_clear_line_then_recovers(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    first = corpus_mails()[:3]
    for raw in first:
        dovecot.append(raw)
    env = cli_env(dovecot, tmp_path, database_url)
    assert poll(env, tmp_path)["new"] == 3

    dovecot.stop()
    try:
        down = run_cli(env, tmp_path, "mailbot", "poll")
    finally:
        dovecot.start()

    assert down.returncode == 1
    assert "Traceback" not in down.stderr + down.stdout
    assert dovecot.password not in down.stderr + down.stdout
    lines = error_lines(down)
    assert len(lines) == 1, down.stderr
    assert str(dovecot.port) in lines[0] or dovecot.host in lines[0], lines[0]

    later = corpus_mails()[3:5]
    for raw in later:
        dovecot.append(raw)
    recovered = poll(env, tmp_path)
    assert recovered["new"] == 2, recovered
    assert len(registry_json(env, tmp_path, "mails")) == 5


def test_wrong_password_exits_1_without_showing_it(dovecot: DovecotServer, tmp_path: Path, database_url: str) -> None:
    dovecot.append(corpus_mails()[0])
    wrong = "fel-hemligt-4711"
    env = cli_env(dovecot, tmp_path, database_url, MAILBOT_IMAP__PASSWORD=wrong)

    done = run_cli(env, tmp_path, "mailbot", "poll", "--json")

    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert wrong not in output and dovecot.password not in output
    assert "Traceback" not in output
    lines = error_lines(done)
    assert len(lines) == 1 and "login" in lines[0].lower(), done.stderr
    assert list(dovecot.flags_of_all().values()) == [set()], "nothing read, nothing marked"


def test_flags_people_set_are_kept(dovecot: DovecotServer, tmp_path: Path, database_url: str) -> None:
    """A mail someone already read keeps \\Seen and gains only our keyword; an unread one stays unread."""
    stray = "\\Seen"
    read, unread = corpus_mails()[:2]
    read_uid = dovecot.append(read, flags=[stray, "\\Flagged"])
    unread_uid = dovecot.append(unread)
    env = cli_env(dovecot, tmp_path, database_url)

    assert poll(env, tmp_path)["new"] == 2

    flags = dovecot.flags_of_all()
    assert {stray, "\\Flagged"} <= flags[read_uid]
    assert "\\Seen" not in flags[unread_uid]
    assert len(flags[read_uid] - {stray, "\\Flagged"}) == 1 and len(flags[unread_uid]) == 1
