"""Issue 13: a mail is read on a worker process with a budget, and a mail that kills the service is quarantined.

The reader's own promises first (no database): a mail past its wall-clock or memory budget comes back as a
reason, the pool goes on with a fresh worker, results come back in the order of the jobs. Then through the
real `mailbot poll` against Dovecot on both engines: a mail past its budget is recorded in review with the
reason and the pass goes on (exit 0); a mail during whose reading the service is SIGKILLed twice is recorded
unread in review on the third pass, never read again.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from mailbot.reader import BudgetedReader, InProcessReader, ReadJob
from mailbot.understand.identity import read_identity
from mailbot.understand.pipeline import Context
from registry.config import load_registry
from registry.paths import config_dir

if TYPE_CHECKING:
    from servers import DovecotServer

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def small_mail(number: int) -> bytes:
    return (
        f"From: Anna Svensson <anna.svensson@skovde.se>\r\nTo: utbildning@skaraborg.se\r\n"
        f"Subject: Fråga {number}\r\nMessage-ID: <liten-{number}@skovde.se>\r\n"
        f"Date: Fri, 14 Mar 2025 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej! Fråga {number}.\r\n"
    ).encode()


def heavy_mail(megabytes: int = 15) -> bytes:
    """A mail with a large damaged PDF: reading it takes seconds and a few hundred MB (no bound refuses it)."""
    pdf = b"%PDF-1.4\n" + bytes((i * 7919 + 13) % 251 for i in range(1 << 16)) * (megabytes * 16)
    return (
        b"From: Bo Ek <bo.ek@hjo.se>\r\nTo: utbildning@skaraborg.se\r\nSubject: Protokoll SKIS\r\n"
        b"Message-ID: <tung@hjo.se>\r\nDate: Fri, 14 Mar 2025 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nProtokollet bifogas.\r\n"
        b"--BB\r\nContent-Type: application/pdf; name=protokoll.pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=protokoll.pdf\r\n\r\n" + base64.encodebytes(pdf) + b"--BB--\r\n"
    )


@pytest.fixture(scope="module")
def context() -> Context:
    registry = load_registry(config_dir())
    return Context(
        registry=registry,
        municipalities=registry.municipality_index(),
        memberships={},
        networks_with_list=frozenset(),
        own_domain="mailbot.skaraborg.se",
    )


def test_a_mail_past_its_wall_clock_is_stopped_and_the_next_is_read_on_a_fresh_worker(context: Context) -> None:
    reader = BudgetedReader(timeout_seconds=0.5, memory_mb=512)
    try:
        jobs = [(1, ReadJob(small_mail(1), context, NOW)), (2, ReadJob(heavy_mail(), context, NOW))]
        jobs += [(3, None), (4, ReadJob(small_mail(4), context, NOW))]
        # With one worker, mail 4 (small) waits in the worker's pipe behind the heavy one: when that worker is
        # stopped, mail 4 is sent again to the fresh one.
        results = list(reader.read_many(jobs))
    finally:
        reader.close()
    assert [tag for tag, _ in results] == [1, 2, 3, 4], "in the order of the jobs"
    assert reader.replaced == 1
    first, heavy, skipped, last = (outcome for _, outcome in results)
    assert first is not None and first.parsed is not None and first.parsed.subject == "Fråga 1"
    assert heavy is not None and heavy.parsed is None
    assert heavy.failure is not None and "could not be read within 0.5 s" in heavy.failure
    assert skipped is None
    assert last is not None and last.parsed is not None and last.parsed.message_id == "liten-4@skovde.se"


def test_a_mail_past_its_memory_budget_is_refused_with_the_budget_named(context: Context) -> None:
    reader = BudgetedReader(timeout_seconds=60, memory_mb=160)
    try:
        results = list(
            reader.read_many(
                [("heavy", ReadJob(heavy_mail(40), context, NOW)), ("next", ReadJob(small_mail(2), context, NOW))]
            )
        )
    finally:
        reader.close()
    (_, heavy), (_, after) = results
    assert heavy is not None and heavy.parsed is None and heavy.failure is not None
    assert "160 MB" in heavy.failure, heavy.failure
    assert after is not None and after.parsed is not None and after.parsed.subject == "Fråga 2"


def test_a_freed_worker_gets_its_next_mail_before_the_last_is_recorded_but_never_a_suspect(context: Context) -> None:
    """While the caller records a mail, the workers already read the next ones; a suspect (alone) waits until every
    mail read before it has been handed over and the caller asked for more, and is read with no other beside it."""
    pulled: list[int] = []

    def jobs():  # type: ignore[no-untyped-def]
        for number in range(1, 7):
            pulled.append(number)
            yield number, ReadJob(small_mail(number), context, NOW, alone=number == 4)

    reader = BudgetedReader(timeout_seconds=30, memory_mb=512, workers=2)
    try:
        results = reader.read_many(jobs())
        tag, first = next(results)
        # Mail 3 went to a worker before mail 1 is recorded.
        assert tag == 1 and pulled[:3] == [1, 2, 3]
        assert [tag for tag, _ in (next(results), next(results))] == [2, 3]
        # Mail 4 is a suspect: pulled, not started while mail 3 (read fine) is not yet recorded; nothing after it
        # is pulled before it is read.
        assert pulled == [1, 2, 3, 4] and len(reader.worker_pids()) == 2
        tag, _ = next(results)
        assert tag == 4
        rest = list(results)
    finally:
        reader.close()
    assert [t for t, _ in rest] == [5, 6]
    assert first is not None and first.parsed is not None and first.parsed.subject == "Fråga 1"
    assert all(o is not None and o.parsed is not None and o.parsed.subject == f"Fråga {t}" for t, o in rest)


def test_a_slow_mail_does_not_hold_up_the_mails_after_it(context: Context) -> None:
    """While one worker reads a mail that takes long, the other reads the mails after it (up to the look-ahead):
    the answers still come in the order of the jobs."""
    pulled: list[int] = []

    def jobs():  # type: ignore[no-untyped-def]
        for number in range(1, 14):
            pulled.append(number)
            yield number, ReadJob(heavy_mail() if number == 1 else small_mail(number), context, NOW)

    reader = BudgetedReader(timeout_seconds=2, memory_mb=512, workers=2)
    try:
        results = reader.read_many(jobs())
        tag, heavy = next(results)
        # Pulled while the heavy one was read: each is pulled when a worker is free for it, so the other worker
        # had read at least four by then.
        read_beside = len(pulled)
        rest = list(results)
    finally:
        reader.close()
    assert tag == 1 and heavy is not None  # read, or not within the 2 s: either way after the others
    assert read_beside >= 6, pulled
    assert [t for t, _ in rest] == list(range(2, 14))
    assert all(o is not None and o.parsed is not None and o.parsed.subject == f"Fråga {t}" for t, o in rest)


def test_a_mail_waiting_behind_a_worker_that_died_is_read_by_another(context: Context) -> None:
    """With one worker, mail 2 (small) is sent into the pipe of the worker reading mail 1; that worker is killed
    just before: mail 1 is reported with the reason, mail 2 and 3 are read on a fresh worker, none is lost."""
    import multiprocessing

    def jobs():  # type: ignore[no-untyped-def]
        yield 1, ReadJob(heavy_mail(), context, NOW)
        for process in multiprocessing.active_children():
            if process.name == "mailbot-reader":
                os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
                process.join(5)
        yield 2, ReadJob(small_mail(2), context, NOW)
        yield 3, ReadJob(small_mail(3), context, NOW)

    reader = BudgetedReader(timeout_seconds=30, memory_mb=512, workers=1)
    try:
        results = list(reader.read_many(jobs()))
    finally:
        reader.close()
    assert [tag for tag, _ in results] == [1, 2, 3]
    (_, first), *rest = results
    assert first is not None and first.failure is not None and "killed by signal 9" in first.failure, first
    assert all(o is not None and o.parsed is not None and o.parsed.subject == f"Fråga {t}" for t, o in rest)


def test_a_worker_started_for_a_reading_inside_another_is_not_kept_beside_the_others(context: Context) -> None:
    """The intake reads a mail again (inside its own read_many) while both workers are busy: that reading gets a
    worker of its own, which is stopped afterwards, so the pool never keeps more than `workers` processes."""
    reader = BudgetedReader(timeout_seconds=30, memory_mb=512, workers=2)
    try:
        jobs = [(1, ReadJob(small_mail(1), context, NOW)), (2, ReadJob(heavy_mail(), context, NOW)),
                (3, ReadJob(heavy_mail(), context, NOW))]  # fmt: skip
        outer = reader.read_many(jobs)
        tags = [next(outer)[0]]
        ((_, again),) = list(reader.read_many([(9, ReadJob(small_mail(9), context, NOW))]))
        tags += [tag for tag, _ in outer]
        kept = reader.worker_pids()
    finally:
        reader.close()
    assert tags == [1, 2, 3]
    assert again is not None and again.parsed is not None and again.parsed.subject == "Fråga 9"
    assert len(kept) == 2


def test_a_worker_is_retired_after_its_share_of_jobs_and_the_next_read_on_a_fresh_one(context: Context) -> None:
    """What a worker's heap keeps of the mails it read stays bounded: after `recycle_after` jobs it is retired (not
    a failure) and the next job goes to a fresh worker; nothing is lost or read twice."""
    reader = BudgetedReader(timeout_seconds=30, memory_mb=512, workers=1, recycle_after=3)
    try:
        results = list(reader.read_many((n, ReadJob(small_mail(n), context, NOW)) for n in range(1, 8)))
    finally:
        reader.close()
    assert [tag for tag, _ in results] == list(range(1, 8))
    assert all(o is not None and o.parsed is not None and o.parsed.subject == f"Fråga {t}" for t, o in results)
    assert reader.recycled == 2 and reader.replaced == 0


def test_in_process_reader_reads_the_same() -> None:
    registry = load_registry(config_dir())
    ctx = Context(registry, registry.municipality_index(), {}, frozenset(), "mailbot.skaraborg.se")
    ((_, outcome),) = InProcessReader().read_many([(0, ReadJob(small_mail(7), ctx, NOW))])
    assert outcome is not None and outcome.understanding is not None and outcome.parsed is not None
    assert outcome.parsed.sender_email == "anna.svensson@skovde.se"


def test_a_worker_answers_with_the_understanding_and_without_the_attachments_bytes() -> None:
    """The main process records the understanding (which holds the minutes document) and the raw mail: the parsed
    mail comes back from a worker without its attachments, so a 57 kB PDF does not travel back with every answer."""
    registry = load_registry(config_dir())
    ctx = Context(registry, registry.municipality_index(), {}, frozenset(), "mailbot.skaraborg.se")
    raw = (Path(__file__).parent / "fixtures" / "corpus" / "033_skis-minnesanteckningar-pdf.eml").read_bytes()
    job = ReadJob(raw, ctx, NOW)
    ((_, here),) = InProcessReader().read_many([(0, job)])
    reader = BudgetedReader(30, 512, 1)
    try:
        ((_, there),) = reader.read_many([(0, job)])
    finally:
        reader.close()
    assert here is not None and here.parsed is not None and here.parsed.attachments, "the fixture has its PDF"
    assert there is not None and there.parsed is not None and there.parsed.attachments == ()
    assert (there.parsed.subject, there.parsed.sender_email, there.parsed.body_text) == (
        here.parsed.subject, here.parsed.sender_email, here.parsed.body_text,
    )  # fmt: skip
    assert there.understanding == here.understanding


WORKER_OF_A_SCRIPT = """
import sys
import sqlalchemy  # what the `mailbot` console script's CLI imports at its top
from datetime import UTC, datetime
from mailbot.reader import BudgetedReader, ReadJob
from mailbot.understand.pipeline import Context
from registry.config import load_registry
from registry.paths import config_dir

if __name__ == "__main__":
    registry = load_registry(config_dir())
    ctx = Context(registry, registry.municipality_index(), {}, frozenset(), "mailbot.skaraborg.se")
    mail = b"From: Anna <anna.svensson@skovde.se>\\r\\nSubject: Fr\\xc3\\xa5ga\\r\\n\\r\\nHej!\\r\\n"
    reader = BudgetedReader(30, 512, 1)
    ((_, outcome),) = reader.read_many([(1, ReadJob(mail, ctx, datetime(2025, 3, 14, tzinfo=UTC)))])
    (pid,) = reader.worker_pids()
    with open(f"/proc/{pid}/maps") as maps:
        loaded = any("sqlalchemy" in line for line in maps)
    print(outcome.parsed.subject, loaded, sys.modules["__main__"].__file__ == __file__)
    reader.close()
"""


def test_a_reader_does_not_import_the_parent_script(tmp_path: Path) -> None:
    """multiprocessing would import the parent's __main__ (the console script, hence the whole CLI with SQLAlchemy)
    into every reader; the reader starts its workers without it, and the parent's __main__ is left as it was."""
    script = tmp_path / "console_script.py"
    script.write_text(WORKER_OF_A_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Read by a worker that has no SQLAlchemy mapped (its C extensions would be in /proc/<pid>/maps).
    assert done.stdout.split() == ["Fråga", "False", "True"], done.stdout


def test_identity_survives_2000_levels_of_mime_nesting() -> None:
    header = b"From: Eva <eva@tibro.se>\r\nSubject: Djup\r\nMessage-ID: <djup-2000@tibro.se>\r\nDate: Fri, 14 Mar 2025 10:00:00 +0100\r\n"
    body = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(2000))
    identity = read_identity(header + body + b"text\r\n")
    assert identity.message_id == "djup-2000@tibro.se"
    assert identity.sender_email == "eva@tibro.se" and identity.subject == "Djup"
    assert identity.date == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


# --- through `mailbot poll` ------------------------------------------------------------------------


def cli_env(dovecot: DovecotServer, tmp_path: Path, database_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(dovecot.imap_env())
    env.update(MAILBOT_DATABASE__URL=database_url, MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"), **overrides)
    return env


def mails_by_id(env: dict[str, str], cwd: Path, command: str = "mails") -> dict[str, dict[str, object]]:
    done = subprocess.run(
        ["registry", command, "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {str(row["message_id"]).strip("<>"): row for row in json.loads(done.stdout)}


def test_poll_records_a_mail_past_its_budget_in_review_and_goes_on(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    for raw in (small_mail(1), heavy_mail(), small_mail(3)):
        dovecot.append(raw)
    env = cli_env(dovecot, tmp_path, database_url, MAILBOT_READER__TIMEOUT_SECONDS="1")
    done = subprocess.run(
        ["mailbot", "poll", "--no-send", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == 3
    recorded = mails_by_id(env, tmp_path)
    assert set(recorded) == {"liten-1@skovde.se", "tung@hjo.se", "liten-3@skovde.se"}
    review = mails_by_id(env, tmp_path, "review")
    assert "could not be read within 1 s" in str(review["tung@hjo.se"]["reason"])
    assert recorded["tung@hjo.se"]["subject"] == "Protokoll SKIS", "the identity is read from the header block"


def test_an_over_size_mail_keeps_its_identity_and_says_where_the_original_is(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    uid = dovecot.append(heavy_mail(2))
    env = cli_env(dovecot, tmp_path, database_url, MAILBOT_IMAP__MAX_MESSAGE_BYTES="1000000")
    done = subprocess.run(
        ["mailbot", "poll", "--no-send"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    row = mails_by_id(env, tmp_path, "review")["tung@hjo.se"]
    assert row["subject"] == "Protokoll SKIS"
    assert "over-size" in str(row["reason"]) and f"UID {uid}" in str(row["reason"]) and "'INBOX'" in str(row["reason"])


def attempts(database_url: str, uid: int | None = None) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT coalesce(sum(attempts), 0) FROM mail_attempt" + (f" WHERE uid = {uid}" if uid else ""))
                ).scalar()
                or 0
            )
    except Exception:  # noqa: BLE001  (the schema is not there yet)
        return 0
    finally:
        engine.dispose()


def kill_while_reading(env: dict[str, str], cwd: Path, database_url: str, uid: int, expected_attempts: int) -> None:
    """Start `mailbot poll` and SIGKILL it (the whole service, main and reader) while it reads the heavy mail."""
    process = subprocess.Popen(
        ["mailbot", "poll", "--no-send"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    for _ in range(2400):  # polls 50 ms apart: a hung pass fails the test instead of hanging it
        if attempts(database_url, uid) >= expected_attempts:
            break
        assert process.poll() is None, "the pass ended before its reading of the heavy mail was recorded"
        time.sleep(0.05)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the pass never counted its reading of the heavy mail")
    os.killpg(process.pid, signal.SIGKILL)  # like the OOM killer or a power cut: nothing gets to clean up
    assert process.wait(10) == -signal.SIGKILL


def test_a_mail_that_killed_the_service_twice_is_quarantined_unread(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    dovecot.append(small_mail(1))
    heavy = dovecot.append(heavy_mail())
    dovecot.append(small_mail(3))
    env = cli_env(dovecot, tmp_path, database_url)
    kill_while_reading(env, tmp_path, database_url, heavy, expected_attempts=1)
    kill_while_reading(env, tmp_path, database_url, heavy, expected_attempts=2)

    done = subprocess.run(
        ["mailbot", "poll", "--no-send", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )

    assert done.returncode == 0, done.stderr
    recorded = mails_by_id(env, tmp_path)
    assert set(recorded) == {"liten-1@skovde.se", "tung@hjo.se", "liten-3@skovde.se"}, "each mail once"
    reason = str(mails_by_id(env, tmp_path, "review")["tung@hjo.se"]["reason"])
    assert "quarantined" in reason and "2 times" in reason, reason
    assert attempts(database_url) == 0, "no reading is left unfinished"
