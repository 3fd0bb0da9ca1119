"""The worker lease: one holder at a time, takeover after expiry, renewal, and races (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from registry import lease
from registry.config import Registry, load_registry
from registry.db import open_registry
from registry.paths import config_dir

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture
def engine(database_url: str, registry: Registry) -> Iterator[Engine]:
    engine = open_registry(database_url, registry)
    yield engine
    engine.dispose()


def test_only_one_of_two_holders_gets_the_lease(engine: Engine) -> None:
    assert lease.acquire(engine, "worker", "a", T0, TTL)
    assert not lease.acquire(engine, "worker", "b", T0 + timedelta(minutes=1), TTL)
    held = lease.current(engine, "worker")
    assert held is not None and held.holder == "a" and held.expires_at == T0 + TTL
    # Another name is another lease.
    assert lease.acquire(engine, "other", "b", T0, TTL)


def test_the_other_takes_over_after_expiry(engine: Engine) -> None:
    assert lease.acquire(engine, "worker", "a", T0, TTL)
    assert not lease.acquire(engine, "worker", "b", T0 + TTL, TTL)  # not yet: expires_at is not < now
    later = T0 + TTL + timedelta(seconds=1)
    assert lease.acquire(engine, "worker", "b", later, TTL)
    held = lease.current(engine, "worker")
    assert held is not None and held.holder == "b" and held.acquired_at == later and held.expires_at == later + TTL
    # The old holder, back from the dead, is now the standby.
    assert not lease.acquire(engine, "worker", "a", later + timedelta(seconds=1), TTL)


def test_renewal_by_the_holder_extends_it(engine: Engine) -> None:
    assert lease.acquire(engine, "worker", "a", T0, TTL)
    renewed = T0 + timedelta(minutes=8)
    assert lease.acquire(engine, "worker", "a", renewed, TTL)
    held = lease.current(engine, "worker")
    assert held is not None and held.acquired_at == T0 and held.expires_at == renewed + TTL
    # Past the first expiry the renewed lease still keeps the other out.
    assert not lease.acquire(engine, "worker", "b", T0 + TTL + timedelta(minutes=1), TTL)
    # Even an expired lease is renewed by its own holder (nobody else took it meanwhile).
    assert lease.acquire(engine, "worker", "a", renewed + TTL + timedelta(hours=1), TTL)


def test_release_lets_the_other_take_it_at_once(engine: Engine) -> None:
    assert lease.acquire(engine, "worker", "a", T0, TTL)
    assert not lease.release(engine, "worker", "b")
    assert lease.release(engine, "worker", "a")
    assert lease.current(engine, "worker") is None
    assert lease.acquire(engine, "worker", "b", T0 + timedelta(seconds=1), TTL)


@pytest.mark.parametrize("existing", ["missing row", "expired row"])
def test_concurrent_acquire_has_exactly_one_winner(engine: Engine, existing: str) -> None:
    if existing == "expired row":
        assert lease.acquire(engine, "worker", "old", T0 - timedelta(hours=1), TTL)
    contenders = 8
    for round_number in range(5):
        name = f"race-{round_number}" if existing == "missing row" else "worker"
        now = T0 + timedelta(hours=round_number)  # each round the previous winner's lease has expired
        barrier = threading.Barrier(contenders)
        results: dict[str, bool] = {}
        errors: list[BaseException] = []

        def contend(holder: str, name: str = name, now: datetime = now, barrier: threading.Barrier = barrier,
                    results: dict[str, bool] = results, errors: list[BaseException] = errors) -> None:  # fmt: skip
            try:
                barrier.wait()
                results[holder] = lease.acquire(engine, name, holder, now, TTL)
            except BaseException as error:  # reported below, with the thread's result
                errors.append(error)

        threads = [threading.Thread(target=contend, args=(f"h{round_number}-{i}",)) for i in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        winners = [holder for holder, won in results.items() if won]
        assert len(results) == contenders
        assert len(winners) == 1, results
        held = lease.current(engine, name)
        assert held is not None and held.holder == winners[0]


def test_holder_ids_are_unique_per_call_and_name_the_process() -> None:
    first, second = lease.new_holder_id(), lease.new_holder_id()
    assert first != second
    host, pid, _ = first.split(":")
    import os
    import socket

    assert host == socket.gethostname() and pid == str(os.getpid())


def test_with_lease_for_the_worker_ticks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    from registry.runtime import Runtime

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    url = database_url
    active = Runtime(config_path=None, overrides={"database": {"url": url}})
    standby = Runtime(config_path=None, overrides={"database": {"url": url}})
    assert lease.with_lease(active, "worker", TTL)  # this process's own holder id
    assert lease.with_lease(active, "worker", TTL)  # renewed
    assert not lease.with_lease(standby, "worker", TTL, holder="standby-process")
    assert lease.release(active.engine(), "worker", lease.HOLDER)
    assert lease.with_lease(standby, "worker", TTL, holder="standby-process")
