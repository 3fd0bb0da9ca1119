"""Issue 14: mails are read in parallel on the reader's worker processes and recorded in UID order as if read one
by one: a mail read beside a member list that makes its sender a member is read again on the new list; a
mail that was being read when the service died is read with no other in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select
from test_reader_budget import small_mail
from test_reexamine import NEW, mail, skis_list

from mailbot.intake import Intake, PassReport
from mailbot.reader import QUEUED_BYTES, QUEUED_JOBS, BudgetedReader, ReadJob, _Worker
from mailbot.settings import Settings
from mailbot.sources import RawMail
from mailbot.understand.pipeline import Context
from registry.config import load_registry
from registry.db import open_registry
from registry.models import InboundMail, MailboxState
from registry.models_ops import MailAttempt
from registry.paths import config_dir

TZ = ZoneInfo("Europe/Stockholm")


class CountingReader(BudgetedReader):
    """A real BudgetedReader that notes, at each job it sends, how many jobs were already sent and not answered
    (being read, or waiting in a worker's pipe)."""

    def __init__(self, workers: int) -> None:
        super().__init__(timeout_seconds=60, memory_mb=512, workers=workers)
        self.in_flight_at_submit: list[tuple[str, int]] = []
        self._busy = 0

    def _send(self, worker: _Worker, job: ReadJob) -> _Worker:
        self.in_flight_at_submit.append((job.raw.split(b"Subject: ")[1].split(b"\r")[0].decode(), self._busy))
        self._busy += 1
        return super()._send(worker, job)

    def _answer(self, worker, pending):  # type: ignore[no-untyped-def]
        self._busy -= 1
        return super()._answer(worker, pending)

    def _expired(self, pending):  # type: ignore[no-untyped-def]
        self._busy -= 1
        return super()._expired(pending)


@pytest.fixture(scope="module")
def context() -> Context:
    registry = load_registry(config_dir())
    return Context(registry=registry, municipalities=registry.municipality_index(), memberships={},
                   networks_with_list=frozenset(), own_domain="mailbot.skaraborg.se")  # fmt: skip


def test_jobs_are_read_two_at_a_time_in_order_and_a_suspect_alone(context: Context) -> None:
    reader = CountingReader(workers=2)
    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    suspects = {3}
    jobs = [(n, ReadJob(small_mail(n), context, now, alone=n in suspects)) for n in range(1, 7)]
    try:
        results = list(reader.read_many(jobs))
    finally:
        reader.close()
    assert [tag for tag, _ in results] == [1, 2, 3, 4, 5, 6], "yielded in the order of the jobs"
    assert all(outcome is not None and outcome.understanding is not None for _, outcome in results)
    busy = dict(reader.in_flight_at_submit)
    assert busy["Fråga 2"] == 1, "the second job is read while the first is"
    assert busy["Fråga 3"] == 0, "the suspect waits until nothing else is in flight"
    assert busy["Fråga 4"] == 0, "and nothing is read beside it"
    assert busy["Fråga 5"] == 1


def test_a_worker_holds_a_few_mails_in_its_pipe_and_a_big_one_only_when_idle(context: Context) -> None:
    """One worker: while it reads a mail, up to QUEUED_JOBS more wait in its pipe (it goes on while the main
    process is busy with a FETCH or a commit), a mail with a 60 kB attachment among them; a mail over QUEUED_BYTES
    is sent only to an idle worker, so that the main process can never block sending while the worker blocks
    answering."""
    reader = CountingReader(workers=1)
    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)

    def padded(number: int, size: int) -> bytes:
        return small_mail(number).replace(b"\r\n\r\n", b"\r\n\r\n" + b"Bilaga i text.\r\n" * (size // 16 + 1), 1)

    sized = {3: padded(3, 60 * 1024), 6: padded(6, QUEUED_BYTES)}
    assert len(sized[6]) > QUEUED_BYTES
    jobs = [(n, ReadJob(sized.get(n) or small_mail(n), context, now)) for n in range(1, 11)]
    try:
        results = list(reader.read_many(jobs))
    finally:
        reader.close()
    assert [tag for tag, _ in results] == list(range(1, 11))
    assert all(outcome is not None and outcome.understanding is not None for _, outcome in results)
    busy = [count for _, count in reader.in_flight_at_submit]
    assert busy[:4] == [0, 1, 2, 3], "three mails wait beside the one being read, the 60 kB one too"
    assert max(busy) == QUEUED_JOBS
    assert busy[5] == 0, "the big mail waits until the worker is idle"


def test_a_mail_read_beside_the_list_that_makes_its_sender_a_member_is_read_again_on_that_list(
    database_url: str,
) -> None:
    registry = load_registry(config_dir())
    engine = open_registry(database_url, registry)
    intake = Intake(engine=engine, settings=Settings(), registry=registry, tz=TZ)
    reader = CountingReader(workers=2)
    intake._reader = reader
    secretary = "Johan Lindberg <johan.lindberg@falkoping.se>"
    day = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    minutes_day = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
    raws = [
        mail(secretary, "Förteckning SKIS 2025", skis_list(True), day, "list-1"),
        mail(f"{NEW[0]} <{NEW[1]}>", "Minnesanteckningar SKIS 2025-03-14",
             "Minnesanteckningar SKIS 2025-03-14\r\n\r\nNärvarande: Nils Holm (Hjo), Anna Svensson (Skövde)\r\n\r\n"
             "§ 1 Mötets öppnande", minutes_day, "minutes-1"),
    ]  # fmt: skip
    batch = [RawMail(folder="INBOX", uidvalidity=1, uid=uid, raw=raw, size=len(raw), internal_date=None, flags=())
             for uid, raw in enumerate(raws, start=1)]  # fmt: skip
    try:
        statuses = list(intake.record_mails(batch, 1, minutes_day + timedelta(hours=1), PassReport(folder="INBOX")))
        assert reader.in_flight_at_submit[1] == ("Minnesanteckningar SKIS 2025-03-14", 1), "read in parallel"
        assert statuses == ["registered", "registered"]
        with Session(engine) as session:
            minutes = session.exec(select(InboundMail).where(InboundMail.uid == 2)).one()
            assert minutes.status == "registered"
            assert not (minutes.reason or "").startswith("re-examined"), "registered on its own reading"
    finally:
        reader.close()
        engine.dispose()


def test_the_same_mail_twice_in_one_window_is_recorded_once(database_url: str) -> None:
    registry = load_registry(config_dir())
    engine = open_registry(database_url, registry)
    intake = Intake(engine=engine, settings=Settings(), registry=registry, tz=TZ)
    reader = CountingReader(workers=2)
    intake._reader = reader
    raw = small_mail(7)
    batch = [RawMail(folder="INBOX", uidvalidity=1, uid=uid, raw=raw, size=len(raw), internal_date=None, flags=())
             for uid in (1, 2, 3)]  # fmt: skip
    report = PassReport(folder="INBOX")
    try:
        statuses = list(intake.record_mails(batch, 1, datetime(2025, 3, 14, 12, 0, tzinfo=UTC), report))
        assert len(set(statuses)) == 1 and report.new == 1 and report.already_recorded == 2
        assert len(reader.in_flight_at_submit) == 1, "read once"
        with Session(engine) as session:
            assert len(session.exec(select(InboundMail)).all()) == 1
            state = session.get(MailboxState, "INBOX")
            assert state is not None and state.last_uid == 3
            assert session.exec(select(MailAttempt)).all() == [], "no reading left unfinished"
    finally:
        reader.close()
        engine.dispose()


def test_the_shared_context_goes_to_a_worker_once_and_again_when_it_changes(context: Context) -> None:
    """The configuration, the lists in force and the meetings are sent to a worker only when they differ from what
    it holds; what the worker rebuilds is the context the job was made with."""
    import dataclasses
    import pickle

    from mailbot.reader import _pack, _unpack

    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    sent: dict[str, object] = {}
    shared: dict[str, object] = {}
    first = ReadJob(small_mail(1), context, now)
    message = _pack(first, sent)
    full = len(pickle.dumps(message))
    assert set(message[1]) >= {"registry", "municipalities", "authentication"}
    assert same(_unpack(pickle.loads(pickle.dumps(message)), shared), first)

    second = ReadJob(small_mail(2), dataclasses.replace(context, own_networks={"<x@y>": "skis"}), now)
    message = _pack(second, sent)
    assert message[1] == {}, "nothing shared changed"
    assert len(pickle.dumps(message)) < full / 3
    assert same(_unpack(pickle.loads(pickle.dumps(message)), shared), second)

    meetings = {"skis": ()}
    third = ReadJob(small_mail(3), dataclasses.replace(context, meetings=meetings), now)
    message = _pack(third, sent)
    assert message[1] == {"meetings": meetings}
    assert same(_unpack(pickle.loads(pickle.dumps(message)), shared), third)


def same(rebuilt: ReadJob, job: ReadJob) -> bool:
    """Field by field; the configuration objects (no __eq__ of their own) by what they hold."""
    import dataclasses

    for field in dataclasses.fields(Context):
        a, b = getattr(rebuilt.context, field.name), getattr(job.context, field.name)
        if field.name == "registry":
            if [(n.key, n.name) for n in a.networks] != [(n.key, n.name) for n in b.networks]:
                return False
        elif field.name == "municipalities":
            if (a.names, a.federation_domains) != (b.names, b.federation_domains):
                return False
        elif a != b:
            return False
    return (rebuilt.raw, rebuilt.arrival, rebuilt.alone) == (job.raw, job.arrival, job.alone)
