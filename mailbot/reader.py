"""Reading and understanding mail on a worker process with a budget: a poison mail never stops the intake.

The main process keeps the database, the mailbox and the exactly-once bookkeeping; a `Reader` turns a mail's raw
bytes and a plain `Context` into a `ParsedMail` and an `Understanding` (picklable values) on a worker process:

- wall clock: the parent waits `timeout` seconds; past it the worker is killed and replaced;
- memory: the worker runs under RLIMIT_AS = `memory_mb`; an allocation past it is a MemoryError in the worker
  (reported), and a worker that dies of it (or of anything else: a crash in a C extension) is replaced;
- whatever happens, `read_many` yields one `Outcome` per job, in the order of the jobs, with a reason an admin
  understands when the mail could not be read.

`read_many(items)` takes an iterable of (tag, job or None) and yields (tag, outcome or None) in the same order;
None passes through unread (a mail already recorded, an over-size one, a quarantined one). Up to `workers` jobs
are read in parallel, one per worker process, answers taken from whichever worker is done first; it pulls at most
`LOOK_AHEAD_PER_WORKER * workers` jobs ahead of the first it has not yielded, so a caller that prepares each job
lazily (its context from the registry as it is then) sees the registry of everything yielded before minus the
mails pulled before it and not yet yielded (the intake reads such a mail again when one of those changed what its
context holds). A job marked `alone` (a mail that was being read when the service died) is read
with no other in flight, so that a mail that kills the service is never blamed on the mails read beside it.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import multiprocessing
import os
import resource
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection, wait
from typing import Generic, Protocol, TypeVar

from mailbot.understand.context import Context, Understanding
from mailbot.understand.types import ParsedMail

log = logging.getLogger("mailbot.reader")
T = TypeVar("T")


@dataclass(frozen=True)
class ReadJob:
    raw: bytes
    context: Context
    arrival: datetime  # aware
    alone: bool = False  # read with no other job in flight (a suspect: it was being read when the service died)


@dataclass(frozen=True)
class Outcome:
    # From a worker process, without what the main process does not record from it (the attachments' bytes, the
    # calendar parts, attached mails, the quoted text: see _as_sent); the understanding holds what it needs of them.
    parsed: ParsedMail | None
    understanding: Understanding | None
    failure: str | None = None  # English, for an admin: why the mail could not be read
    seconds: float = 0.0


def _as_sent(outcome: Outcome) -> Outcome:
    """The outcome a worker sends: the parsed mail without its bulk (a 57 kB PDF came back to the main process with
    every mail that carried one, only to be thrown away). Small answers also keep a worker from blocking on a full
    pipe while the main process is busy recording."""
    parsed = outcome.parsed
    if parsed is None or not (parsed.attachments or parsed.calendar_parts or parsed.attached_mails or parsed.quoted_text):
        return outcome
    slim = dataclasses.replace(parsed, attachments=(), calendar_parts=(), attached_mails=(), quoted_text="")
    return dataclasses.replace(outcome, parsed=slim)


def read_mail(job: ReadJob) -> Outcome:
    """Parse and understand one mail (the worker's function; also the in-process path of the unit tests)."""
    from mailbot.understand.decode import parse_mail
    from mailbot.understand.pipeline import understand

    started = time.perf_counter()
    try:
        parsed = parse_mail(job.raw)
        understanding = understand(parsed, job.context, job.arrival)
        return Outcome(parsed, understanding, None, time.perf_counter() - started)
    except MemoryError:
        return Outcome(None, None, "memory", time.perf_counter() - started)
    except RecursionError:
        return Outcome(None, None, "internal error while processing: RecursionError: the mail is nested too deeply")
    except Exception as error:  # noqa: BLE001  (a bug on one mail: reported, the pass goes on)
        log.error("reader failed: %s", "".join(traceback.format_exception(error))[-4000:])
        return Outcome(None, None, f"internal error while processing: {type(error).__name__}: {error}"[:2000])


# Called by `read_many` when the caller may settle what it has done so far (the intake commits its open
# transaction): before it waits for a reading longer than SETTLE_AFTER seconds, and before a job read alone.
Settle = Callable[[], None]
SETTLE_AFTER = 0.2
# How many mails `read_many` may have pulled ahead of the first it has not yet yielded, per worker: a worker that is
# done goes on with the next mails while a slow one (a long PDF) is read beside it, instead of waiting for it.
LOOK_AHEAD_PER_WORKER = 8
# Mails may wait in a worker's pipe while the worker reads the one before it, up to QUEUED_JOBS of them and
# QUEUED_BYTES of raw mail together, so that the worker goes on at once while the main process is busy for a few
# milliseconds (a FETCH, a commit) instead of waiting for it to take an answer and send the next. What waits must fit
# in the socket's buffer (PIPE_BUFFER_BYTES, asked for; at most a quarter of what the system grants is used), or
# the main process, blocked sending, and the worker, blocked sending its answer, would wait for each other for ever.
# A bigger mail is sent only to an idle worker.
QUEUED_JOBS = 3
QUEUED_BYTES = 192 * 1024
PIPE_BUFFER_BYTES = 1024 * 1024


class Reader(Protocol):
    def start(self) -> None:
        """Get ready to read (the caller knows mail is coming), without waiting for it."""

    def read_many(
        self, items: Iterable[tuple[T, ReadJob | None]], settle: Settle | None = None
    ) -> Iterator[tuple[T, Outcome | None]]: ...


class InProcessReader:
    """No budget: for pure unit tests only (the intake of `mailbot poll`/`run`/`demo` uses BudgetedReader)."""

    def start(self) -> None:
        pass

    def read_many(
        self, items: Iterable[tuple[T, ReadJob | None]], settle: Settle | None = None
    ) -> Iterator[tuple[T, Outcome | None]]:
        for tag, job in items:
            if job is not None and job.alone and settle is not None:
                settle()
            yield tag, (read_mail(job) if job is not None else None)


def _limit_memory(memory_bytes: int) -> None:
    """The worker's whole address space is capped; it is niced below the main process."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        os.nice(5)
    except OSError:
        pass


# The parts of a job's Context that stay the same from one mail to the next (the configuration, the lists in force,
# the planned meetings): sent to a worker only when they differ from what that worker was sent last. Compared by
# identity: the intake builds each of them once and does not change it after.
_SHARED = ("registry", "municipalities", "memberships", "networks_with_list", "authentication", "meetings")


def _pack(job: ReadJob, sent: dict[str, object]) -> tuple[ReadJob, dict[str, object]]:
    """The job without its shared context parts, and those that changed since `sent` (updated)."""
    context = job.context
    changed = {}
    for name in _SHARED:
        value = getattr(context, name)
        if sent.get(name) is not value:
            changed[name] = sent[name] = value
    light = dataclasses.replace(context, **dict.fromkeys(_SHARED))  # type: ignore[arg-type]
    return dataclasses.replace(job, context=light), changed


def _unpack(message: tuple[ReadJob, dict[str, object]], shared: dict[str, object]) -> ReadJob:
    job, changed = message
    shared.update(changed)
    return dataclasses.replace(job, context=dataclasses.replace(job.context, **shared))  # type: ignore[arg-type]


def _serve(connection: Connection, memory_bytes: int) -> None:
    """The worker process: read jobs until the main process goes away (EOF, also when it was SIGKILLed)."""
    _limit_memory(memory_bytes)
    # A library's own warnings (pypdf's "EOF marker not found") must not reach stderr bare: the main process's logs
    # are the record, and the reader already turns what it could not read into a reason.
    logging.getLogger().addHandler(logging.NullHandler())
    shared: dict[str, object] = {}  # the shared context parts as last sent (see _pack)
    while True:
        try:
            job = _unpack(connection.recv(), shared)
        except MemoryError:  # the job itself did not fit in the budget
            outcome = Outcome(None, None, "memory")
        except (EOFError, OSError):
            return
        else:
            outcome = _as_sent(read_mail(job))
            del job
        try:
            try:
                connection.send(outcome)
            except MemoryError:
                connection.send(Outcome(None, None, "memory"))
        except (OSError, ValueError):
            return


@contextmanager
def _parent_main_hidden() -> Iterator[None]:
    """multiprocessing prepares each new worker by importing the parent's __main__ again (a function it is to run
    might be defined there). The worker runs `_serve`, which lives here; the parent's __main__ is the `mailbot`
    console script, whose import of the CLI would load SQLAlchemy, SQLModel, typer and rich into every reader
    (about 30 MB each, never used). While a worker starts, __main__ names neither a file nor a module."""
    main = sys.modules["__main__"]
    file = main.__dict__.pop("__file__", None)
    spec = main.__dict__.get("__spec__")
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = spec
        if file is not None:
            main.__file__ = file


# What the forkserver imports before it forks the workers: the understanding and the libraries it loads when it first
# needs them (PDFium, lxml, the MIME parser's header classes). Imported once, not once per worker, and their pages
# are shared by the workers instead of each holding its own copy. A name that does not import is left out.
_PRELOAD = (
    "mailbot.reader",
    "mailbot.understand.pipeline",
    "mailbot.understand.decode",
    "mailbot.understand.html_text",
    "email.headerregistry",
    "email.contentmanager",
    "idna.uts46data",
    "tnefparse",
    "lxml.etree",
    "pypdfium2",
    "pypdfium2.raw",
)


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext, memory_bytes: int) -> None:
        parent, child = context.Pipe()
        self.queue_bytes = _widen_send_buffer(parent) // 4  # what may wait in its pipe (see QUEUED_BYTES)
        self.sent: dict[str, object] = {}  # the shared context parts this worker holds (see _pack)
        self.jobs: deque[_Pending[object]] = deque()  # sent to it, not yet answered, in order (the first is read)
        self.served = 0  # jobs sent to it
        self.dead = False  # found dead when a job was sent to it while it read another
        self.process = context.Process(target=_serve, args=(child, memory_bytes), name="mailbot-reader", daemon=True)
        with _parent_main_hidden():
            self.process.start()
        child.close()
        self.connection = parent

    def waiting_bytes(self) -> int:
        """Raw mail sent to it and not yet begun (the jobs behind the one it reads)."""
        return sum(len(pending.job.raw) for pending in list(self.jobs)[1:] if pending.job is not None)

    def holds_context_of(self, job: ReadJob) -> bool:
        """Whether `_pack` would send no shared context part with `job` (its message is then about its raw size)."""
        return all(self.sent.get(name) is getattr(job.context, name) for name in _SHARED)

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()


def _widen_send_buffer(connection: Connection) -> int:
    """Ask for PIPE_BUFFER_BYTES of send buffer on the main process's end of a worker's pipe; returns what the
    system granted (Linux caps the request at net.core.wmem_max and doubles it)."""
    import socket

    probe = socket.socket(fileno=os.dup(connection.fileno()))  # the same socket; closing the probe keeps it
    try:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER_BYTES)
        except OSError:
            pass  # the default buffer, then
        return int(probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    finally:
        probe.close()


@dataclass(eq=False)
class _Pending(Generic[T]):
    tag: T
    job: ReadJob | None  # None: not read (passed through)
    started: float = 0.0  # when its worker began it (as far as the main process knows)
    done: bool = False
    outcome: Outcome | None = None


class BudgetedReader:
    """Reads each mail on a worker process under a wall-clock and a memory budget; a small supervisor of its own
    (pebble's pool stops for good when a worker dies of MemoryError while it receives a task)."""

    def __init__(
        self, timeout_seconds: float = 60.0, memory_mb: int = 512, workers: int = 1, recycle_after: int = 500
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.workers = workers
        # A worker that has read this many jobs is retired when it is next idle and a fresh one forked when one is
        # needed: what a worker's heap (and PDFium's and lxml's) keeps of the mails it read stays bounded, in a pass
        # of 10,000 mails and in a `mailbot run` of months. A fork from the forkserver costs a few milliseconds.
        self.recycle_after = recycle_after
        # forkserver: workers are forked from a small clean process (never from the main one, which holds
        # database connections, the IMAP socket and threads), with the understanding already imported.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(_PRELOAD))
        self._idle: list[_Worker] = []
        self.replaced = 0  # workers killed or dead and replaced (for the benchmark and the tests)
        self.recycled = 0  # workers retired after `recycle_after` jobs
        self._in_use = 0  # workers reading for some read_many (one may run inside another: the intake's re-reading)

    def start(self) -> None:
        """Start the forkserver now, if it is not running: it imports the understanding and the libraries in
        _PRELOAD (about 0.3 s of its own), which the first worker's fork would otherwise wait for. Does not wait:
        the main process goes on (with its first fetch) meanwhile. A pass calls it once it knows there is mail."""
        from multiprocessing import forkserver

        with _parent_main_hidden():
            forkserver.ensure_running()

    def _worker(self) -> _Worker:
        return self._idle.pop() if self._idle else _Worker(self._context, self.memory_mb * 1024 * 1024)

    def close(self) -> None:
        for worker in self._idle:
            worker.stop()
        self._idle.clear()

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._idle if w.process.pid is not None]

    def _reason(self, failure: str) -> str:
        if failure == "memory":
            return (
                f"could not be read within the memory budget: reading it needed more than {self.memory_mb} MB "
                "(reader.memory_mb); kept verbatim, not read"
            )
        return failure

    def _send(self, worker: _Worker, job: ReadJob) -> _Worker:
        """Send `job` to `worker` (a fresh one instead when that one died while idle); returns the one sent to.
        OSError or ValueError when a worker that is reading died."""
        try:
            worker.connection.send(_pack(job, worker.sent))
        except (OSError, ValueError):
            if worker.jobs:
                raise  # its end is noticed where its answer is awaited
            # A worker that died while idle: one fresh try.
            worker.stop()
            worker = _Worker(self._context, self.memory_mb * 1024 * 1024)
            worker.connection.send(_pack(job, worker.sent))
        return worker

    def _answer(self, worker: _Worker, pending: _Pending[T]) -> tuple[Outcome, bool]:
        """The outcome of `pending`, the first job of `worker`, whose connection is ready (its answer, or its end);
        and whether the worker can go on (else it is stopped)."""
        elapsed = time.monotonic() - pending.started
        try:
            outcome: Outcome = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            code = worker.process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            return Outcome(
                None,
                None,
                f"the reader process died while reading this mail ({how}), most likely out of memory "
                f"(reader.memory_mb = {self.memory_mb}); kept verbatim, not read",
                elapsed,
            ), False
        # Past its memory budget, perhaps while it received the job (its shared context parts then differ from what
        # `sent` says, and the rest of that message may still be in the pipe): not reused.
        usable = outcome.failure != "memory"
        if outcome.failure is not None:
            return Outcome(None, None, self._reason(outcome.failure), elapsed), usable
        return Outcome(outcome.parsed, outcome.understanding, None, elapsed), usable

    def _expired(self, pending: _Pending[T]) -> Outcome:
        return Outcome(
            None,
            None,
            f"could not be read within {self.timeout_seconds:g} s (reader.timeout_seconds): the reader was "
            "stopped; kept verbatim, not read",
            time.monotonic() - pending.started,
        )

    def read_many(
        self, items: Iterable[tuple[T, ReadJob | None]], settle: Settle | None = None
    ) -> Iterator[tuple[T, Outcome | None]]:
        """See the module's docstring. Each worker reads one job at a time; beside it a worker may hold up to
        QUEUED_JOBS more jobs in its pipe (see QUEUED_BYTES), so that it goes on at once instead of waiting for the
        main process to take its answer and send the next. The wall clock of such a job starts when the main
        process takes the answer before it."""
        workers = max(self.workers, 1)
        window = workers * LOOK_AHEAD_PER_WORKER
        queue: deque[_Pending[T]] = deque()  # pulled and not yet yielded, in order
        order: dict[_Pending[T], int] = {}  # each pulled job's place in the order of the items
        active: list[_Worker] = []  # the workers reading this call's jobs
        again: list[_Pending[T]] = []  # jobs whose worker went away before it began them: sent again, in order
        source = iter(items)
        exhausted = False
        waiting: tuple[T, ReadJob | None] | None = None  # pulled, not yet in `queue` (a suspect waits its turn)
        alone = False  # a job read alone is in flight

        def worker_for(job: ReadJob) -> _Worker | None:
            if len(active) < workers:
                worker = self._worker()
                active.append(worker)
                self._in_use += 1
                return worker
            if job.alone:
                return None
            return next(
                (
                    w
                    for w in active
                    if 0 < len(w.jobs) <= QUEUED_JOBS and not w.dead and w.served < self.recycle_after
                    and w.waiting_bytes() + len(job.raw) <= min(QUEUED_BYTES, w.queue_bytes)
                    and w.holds_context_of(job)
                ),
                None,
            )

        def send(pending: _Pending[T], worker: _Worker) -> None:
            assert pending.job is not None
            try:
                sent_to = self._send(worker, pending.job)
            except (OSError, ValueError):  # it died while reading the job before: this one goes to another
                worker.dead = True
                again.append(pending)
                again.sort(key=order.__getitem__)
                return
            if sent_to is not worker:
                active[active.index(worker)] = worker = sent_to
            if not worker.jobs:
                pending.started = time.monotonic()
            worker.jobs.append(pending)  # type: ignore[arg-type]
            worker.served += 1

        def top_up(early: bool) -> None:
            """Give the workers the next jobs, up to `window` ahead of the first not yet yielded. `early`: while
            the caller is still to record a mail. A suspect is started only when every job before it is recorded
            (never early), so that a mail read fine is recorded before a suspect can kill the service."""
            nonlocal exhausted, waiting, alone
            while not alone:
                if again:
                    pending = again[0]
                    assert pending.job is not None
                    worker = worker_for(pending.job)
                    if worker is None:
                        return
                    again.pop(0)
                    send(pending, worker)
                    continue
                if exhausted or len(queue) >= window:
                    return
                if waiting is None:
                    try:
                        waiting = next(source)
                    except StopIteration:
                        exhausted = True
                        return
                tag, job = waiting
                if job is None:
                    waiting = None
                    queue.append(_Pending(tag, None, done=True))
                    continue
                if job.alone and (queue or early):
                    return  # after every job before it is recorded
                worker = worker_for(job)
                if worker is None:
                    return
                waiting = None
                if job.alone:
                    alone = True
                    if settle is not None:
                        settle()  # everything before a suspect is settled before it is read
                pending = _Pending(tag, job)
                order[pending] = len(order)
                queue.append(pending)
                send(pending, worker)

        def answered(worker: _Worker, outcome: Outcome, usable: bool) -> None:
            """Its first job is answered; a worker that cannot go on is stopped, and the jobs it held are sent again
            to another."""
            nonlocal alone
            pending = worker.jobs.popleft()
            pending.outcome, pending.done = outcome, True
            alone = alone and not (pending.job is not None and pending.job.alone)
            if not usable:
                worker.stop()
                self.replaced += 1
                again.extend(worker.jobs)  # type: ignore[arg-type]
                again.sort(key=order.__getitem__)
                worker.jobs.clear()
            elif worker.jobs:
                worker.jobs[0].started = time.monotonic()
                return
            active.remove(worker)
            self._in_use -= 1
            if not usable:
                return
            if worker.served >= self.recycle_after:
                worker.stop()
                self.recycled += 1
            elif len(self._idle) + self._in_use >= workers:
                # One more than `workers`: started for a read_many inside another (the intake reading a mail again
                # while the others' workers are busy); not kept beside them.
                worker.stop()
            else:
                self._idle.append(worker)

        try:
            while True:
                top_up(early=False)
                if not queue:
                    return
                head = queue[0]
                settled = settle is None
                waited_since = time.monotonic()
                while not head.done:
                    deadline = min(w.jobs[0].started for w in active) + self.timeout_seconds
                    if not settled:
                        deadline = min(deadline, waited_since + SETTLE_AFTER)
                    by_connection = {w.connection: w for w in active}
                    for connection in wait(list(by_connection), max(deadline - time.monotonic(), 0)):
                        worker = by_connection[connection]  # type: ignore[index]
                        answered(worker, *self._answer(worker, worker.jobs[0]))  # type: ignore[arg-type]
                    now = time.monotonic()
                    for worker in [w for w in active if now >= w.jobs[0].started + self.timeout_seconds]:
                        answered(worker, self._expired(worker.jobs[0]), usable=False)
                    if not settled and not head.done and now >= waited_since + SETTLE_AFTER:
                        settled = True
                        settle()  # type: ignore[misc]  # a slow mail: what was done before it does not wait for it
                    top_up(early=False)
                queue.popleft()
                order.pop(head, None)
                top_up(early=True)
                yield head.tag, head.outcome
        finally:
            self._in_use -= len(active)
            for worker in active:  # the caller stopped early (an error): workers with a job are not reusable
                worker.stop()


_readers: dict[tuple[float, int, int], BudgetedReader] = {}


def budgeted_reader(timeout_seconds: float, memory_mb: int, workers: int = 1) -> BudgetedReader:
    """One pool per budget for the life of the process (a long-running `mailbot run` reuses its workers)."""
    key = (timeout_seconds, memory_mb, workers)
    if key not in _readers:
        _readers[key] = BudgetedReader(timeout_seconds, memory_mb, workers)
    return _readers[key]


@atexit.register
def close_readers() -> None:
    """Stop every pool's workers (at exit, and when a one-shot command has no more mail to read)."""
    for reader in _readers.values():
        try:
            reader.close()
        except Exception:  # noqa: BLE001,S110  (exiting anyway)
            pass
    _readers.clear()
